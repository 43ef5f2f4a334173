"""Stochastic gradient descent with momentum, Nesterov and weight decay (PyTorch's rules)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

import chainrule as cr

from .optimizer import Optimizer

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
        if momentum < 0.0 or weight_decay < 0.0:
            raise cr.ChainruleError("momentum and weight_decay must be >= 0")
        if nesterov and momentum <= 0.0:
            raise cr.ChainruleError("Nesterov momentum needs momentum > 0")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        self._state_names = ("momentum_buffer",) if self.momentum else ()
        super().__init__(params, lr)

    def _hyperparameters(self) -> Mapping[str, Any]:
        return {"momentum": self.momentum, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov}

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict, lr: float) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = state["momentum_buffer"]
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        p -= lr * g

    def _step_symbolic(self, p: Any, g: Any, state: dict, lr: Any) -> list[tuple]:
        pairs = []
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = state["momentum_buffer"]
            new_v = self.momentum * v + g
            pairs.append((v, new_v))
            g = g + self.momentum * new_v if self.nesterov else new_v
        pairs.append((p, p - lr * g))
        return pairs
