"""Adagrad (PyTorch's rules: learning-rate decay by step, ``eps`` outside the root)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import chainrule as cr

from .optimizer import Optimizer, Scalars

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad as in ``torch.optim.Adagrad``.

    Per parameter, with step counter ``t``::

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                     # s starts at initial_accumulator_value
        p = p - clr * g / (sqrt(s) + eps)

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.array([1.0]))
    >>> opt = cr.optim.Adagrad([w], lr=0.1)
    >>> cr.sum(w * w).backward()
    >>> opt.step()
    >>> w.data.round(6)
    array([0.9])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                      "initial_accumulator_value": initial_accumulator_value,
                                      "eps": eps})

    def _check(self, group: Mapping[str, Any]) -> None:
        super()._check(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            if not group[key] >= 0.0:
                raise cr.ChainruleError(f"Adagrad: {key} must be >= 0, got {group[key]}")

    def _buffers(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("step", "sum")

    def _initial(self, name: str, param: Any, group: Mapping[str, Any]) -> np.ndarray:
        if name == "sum":
            return np.full_like(param.data, group["initial_accumulator_value"])
        return super()._initial(name, param, group)

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict,
                    group: Mapping[str, Any]) -> None:
        lr, lr_decay, weight_decay = group["lr"], group["lr_decay"], group["weight_decay"]
        state["step"] += 1
        if weight_decay:
            g = g + weight_decay * p
        clr = lr / (1.0 + (float(state["step"]) - 1.0) * lr_decay)
        s = state["sum"]
        s += g * g
        p -= clr * (g / (np.sqrt(s) + group["eps"]))

    def _step_symbolic(self, p: Any, g: Any, state: dict, h: Scalars) -> list[tuple]:
        step, s = state["step"], state["sum"]
        # As Adam: the parameters of a group advance together, so they share one counter.
        t = h.once("t", lambda: step + 1.0)
        if h.group.uses("lr_decay"):
            clr = h.once("clr", lambda: h("lr") / (1.0 + (t - 1.0) * h("lr_decay")))
        else:
            clr = h("lr")
        if h.group.uses("weight_decay"):
            g = g + h("weight_decay") * p
        new_s = s + g * g
        new_p = p - clr * (g / (cr.sqrt(new_s) + h("eps")))
        return [(step, t), (s, new_s), (p, new_p)]
