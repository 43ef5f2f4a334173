"""Stochastic gradient descent with momentum, Nesterov and weight decay (PyTorch's rules)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import chainrule as cr

from .optimizer import Optimizer, Scalars

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD as in ``torch.optim.SGD`` (no dampening).

    ``g = grad + weight_decay * p``; with momentum ``v = momentum * v + g`` (the buffer starts
    at zero, so the first step gives ``v = g`` exactly as PyTorch's copy does) and
    ``g = v`` (or ``g + momentum * v`` with ``nesterov``); then ``p = p - lr * g``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.array([1.0, -2.0]))
    >>> opt = cr.optim.SGD([w], lr=0.5)
    >>> cr.sum(w * w).backward()
    >>> opt.step()
    >>> w.data
    array([0., 0.])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                      "nesterov": nesterov})

    def _check(self, group: Mapping[str, Any]) -> None:
        super()._check(group)
        if not (group["momentum"] >= 0.0 and group["weight_decay"] >= 0.0):
            raise cr.ChainruleError("momentum and weight_decay must be >= 0")
        if group["nesterov"] and not group["momentum"] > 0.0:
            raise cr.ChainruleError("Nesterov momentum needs momentum > 0")

    def _buffers(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] else ()

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict,
                    group: Mapping[str, Any]) -> None:
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            v = state["momentum_buffer"]
            v *= momentum
            v += g
            g = g + momentum * v if group["nesterov"] else v
        p -= lr * g

    def _step_symbolic(self, p: Any, g: Any, state: dict, h: Scalars) -> list[tuple]:
        pairs = []
        if h.group.uses("weight_decay"):
            g = g + h("weight_decay") * p
        if h.group.uses("momentum"):
            v = state["momentum_buffer"]
            new_v = h("momentum") * v + g
            pairs.append((v, new_v))
            g = g + h("momentum") * new_v if h.group["nesterov"] else new_v
        pairs.append((p, p - h("lr") * g))
        return pairs
