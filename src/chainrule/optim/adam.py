"""Adam and AdamW (PyTorch's rules: bias-corrected moments, ``eps`` outside the root)."""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

import chainrule as cr

from .optimizer import Optimizer

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

    _state_names = ("step", "exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise cr.ChainruleError(f"betas must be in [0, 1), got {betas}")
        if eps < 0.0 or weight_decay < 0.0:
            raise cr.ChainruleError("eps and weight_decay must be >= 0")
        self.betas = (float(beta1), float(beta2))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        super().__init__(params, lr)

    def _hyperparameters(self) -> Mapping[str, Any]:
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

    def _step_eager(self, p: np.ndarray, g: np.ndarray, state: dict, lr: float) -> None:
        beta1, beta2 = self.betas
        state["step"] += 1.0
        t = float(state["step"])
        if self.weight_decay:
            if self._decoupled:
                p *= 1.0 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        step_size = lr / (1.0 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + self.eps
        p -= step_size * (m / denom)

    def _step_symbolic(self, p: Any, g: Any, state: dict, lr: Any) -> list[tuple]:
        beta1, beta2 = self.betas
        step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        # Every parameter of a compiled step advances together, so all read the first one's
        # counter: the bias corrections below are then one expression, which the compiler
        # computes once instead of once per parameter (ten scalar NumPy calls each).
        t = self.state[0]["step"] + 1.0
        base = p
        if self.weight_decay:
            if self._decoupled:
                base = p * (1.0 - lr * self.weight_decay)
            else:
                g = g + self.weight_decay * p
        new_m = beta1 * m + (1.0 - beta1) * g
        new_v = beta2 * v + (1.0 - beta2) * (g * g)
        # beta**t as exp(t log beta): the step counter is a tensor, and this needs no
        # reflected power operator from the engine.
        correction1 = 1.0 - cr.exp(t * math.log(beta1)) if beta1 > 0 else 1.0
        correction2 = 1.0 - cr.exp(t * math.log(beta2)) if beta2 > 0 else 1.0
        # The step counter and lr are float64 scalars; cast what they give to the parameter's
        # dtype, or every float32 moment below would be promoted to float64 (eager Adam uses
        # Python floats here, which NumPy keeps weak).
        root2 = cr.sqrt(correction2)
        step_size = lr / correction1
        if isinstance(root2, cr.Tensor):
            root2 = root2.astype(p.dtype)
        step_size = step_size.astype(p.dtype)
        denom = cr.sqrt(new_v) / root2 + self.eps
        new_p = base - step_size * (new_m / denom)
        return [(step, t), (m, new_m), (v, new_v), (p, new_p)]


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``): ``p *= 1 - lr * wd`` before
    the Adam step, instead of adding ``wd * p`` to the gradient.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> opt = cr.optim.AdamW([cr.Variable(np.zeros(1))])
    >>> opt.weight_decay
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
