"""RMSprop (PyTorch's rules: ``eps`` outside the root, optional momentum and centring)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import chainrule as cr

from .optimizer import Optimizer, Scalars

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop as in ``torch.optim.RMSprop``.

    Per parameter::

        g = grad + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g            # square_avg
        avg = sqrt(s) + eps                            # centered: sqrt(s - a * a) + eps,
                                                       #   a = alpha * a + (1 - alpha) * g
        p = p - lr * g / avg                           # momentum: b = momentum * b + g / avg,
                                                       #   p = p - lr * b

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.array([1.0]))
    >>> opt = cr.optim.RMSprop([w], lr=0.01)
    >>> cr.sum(w * w).backward()
    >>> opt.step()
    >>> w.data.round(6)   # the first step is lr / sqrt(1 - alpha)
    array([0.9])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "momentum": momentum,
                                      "weight_decay": weight_decay, "centered": centered})

    def _check(self, group: Mapping[str, Any]) -> None:
        super()._check(group)
        for key in ("alpha", "eps", "momentum", "weight_decay"):
            if not group[key] >= 0.0:
                raise cr.ChainruleError(f"RMSprop: {key} must be >= 0, got {group[key]}")

    def _buffers(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return (("square_avg",) + (("momentum_buffer",) if group["momentum"] else ())
                + (("grad_avg",) if group["centered"] else ()))

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict,
                    group: Mapping[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if weight_decay:
            g = g + weight_decay * p
        s = state["square_avg"]
        s *= alpha
        s += (1.0 - alpha) * (g * g)
        if group["centered"]:
            a = state["grad_avg"]
            a *= alpha
            a += (1.0 - alpha) * g
            avg = np.sqrt(s - a * a)
        else:
            avg = np.sqrt(s)
        avg += eps
        if momentum:
            b = state["momentum_buffer"]
            b *= momentum
            b += g / avg
            p -= lr * b
        else:
            p -= lr * (g / avg)

    def _step_symbolic(self, p: Any, g: Any, state: dict, h: Scalars) -> list[tuple]:
        pairs = []
        if h.group.uses("weight_decay"):
            g = g + h("weight_decay") * p
        alpha = h("alpha")
        rest = h.once("1-alpha", lambda: 1.0 - alpha)
        s = state["square_avg"]
        new_s = alpha * s + rest * (g * g)
        pairs.append((s, new_s))
        if h.group["centered"]:
            a = state["grad_avg"]
            new_a = alpha * a + rest * g
            pairs.append((a, new_a))
            avg = cr.sqrt(new_s - new_a * new_a) + h("eps")
        else:
            avg = cr.sqrt(new_s) + h("eps")
        if h.group.uses("momentum"):
            b = state["momentum_buffer"]
            new_b = h("momentum") * b + g / avg
            pairs.append((b, new_b))
            pairs.append((p, p - h("lr") * new_b))
        else:
            pairs.append((p, p - h("lr") * (g / avg)))
        return pairs
