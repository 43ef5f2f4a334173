"""Adam and AdamW (PyTorch's rules: bias-corrected moments, ``eps`` outside the root)."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import chainrule as cr

from .optimizer import Optimizer, Scalars

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam as in ``torch.optim.Adam`` (``amsgrad=False``).

    Per parameter, with step counter ``t``::

        g = grad + weight_decay * p             # L2 penalty added to the gradient
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.array([1.0]))
    >>> opt = cr.optim.Adam([w], lr=0.1)
    >>> cr.sum(w * w).backward()
    >>> opt.step()
    >>> w.data.round(6)
    array([0.9])
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                      "weight_decay": weight_decay})

    def _check(self, group: Mapping[str, Any]) -> None:
        super()._check(group)
        beta1, beta2 = group["betas"]
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise cr.ChainruleError(f"betas must be in [0, 1), got {group['betas']}")
        if not (group["eps"] >= 0.0 and group["weight_decay"] >= 0.0):
            raise cr.ChainruleError("eps and weight_decay must be >= 0")

    def _buffers(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("step", "exp_avg", "exp_avg_sq")

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict,
                    group: Mapping[str, Any]) -> None:
        lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = float(state["step"])
        if weight_decay:
            if self._decoupled:
                p *= 1.0 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        step_size = lr / (1.0 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + eps
        p -= step_size * (m / denom)

    def _step_symbolic(self, p: Any, g: Any, state: dict, h: Scalars) -> list[tuple]:
        step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        # Every parameter of a compiled step advances together, so all parameters of a group
        # (and dtype) read the first one's counter: the bias corrections below are then
        # computed once per group instead of once per parameter (a dozen scalar NumPy calls).
        t = h.once("t", lambda: step + 1.0)
        beta1, beta2 = h("betas", 0), h("betas", 1)
        step_size = h.once("step_size", lambda: h("lr") / (1.0 - beta1 ** t))
        root2 = h.once("root2", lambda: cr.sqrt(1.0 - beta2 ** t))
        base = p
        if h.group.uses("weight_decay"):
            if self._decoupled:
                base = p * h.once("decay", lambda: 1.0 - h("lr") * h("weight_decay"))
            else:
                g = g + h("weight_decay") * p
        new_m = beta1 * m + h.once("1-beta1", lambda: 1.0 - beta1) * g
        new_v = beta2 * v + h.once("1-beta2", lambda: 1.0 - beta2) * (g * g)
        denom = cr.sqrt(new_v) / root2 + h("eps")
        new_p = base - step_size * (new_m / denom)
        return [(step, t), (m, new_m), (v, new_v), (p, new_p)]


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``): ``p *= 1 - lr * wd`` before
    the Adam step, instead of adding ``wd * p`` to the gradient.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> opt = cr.optim.AdamW([cr.Variable(np.zeros(1))])
    >>> opt.param_groups[0]["weight_decay"]
    0.01
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)
