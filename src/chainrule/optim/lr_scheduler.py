"""Learning-rate schedules stepped once per epoch, with PyTorch's semantics.

A scheduler writes ``optimizer.lr``, which lives in a 0-d array that compiled update
functions read at call time, so schedules apply to compiled training too.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR"]


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and sets the optimizer's ``lr``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> float:
        """The learning rate for ``self.last_epoch`` (subclasses define it)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and update the optimizer's learning rate."""
        self._step_count += 1
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()

    def get_last_lr(self) -> float:
        """The learning rate set by the last ``step()``."""
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers: ``base_lr``, ``last_epoch`` and the step count."""
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch,
                "step_count": self._step_count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (the lr itself is in the optimizer's state)."""
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        self._step_count = int(state["step_count"])


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> opt = cr.optim.SGD([cr.Variable(np.zeros(1))], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for _ in range(4):
    ...     lrs.append(opt.lr); sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        lr = self.optimizer.lr
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` epochs.

    Uses PyTorch's recursive form, so the sequence matches ``torch.optim.lr_scheduler``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> opt = cr.optim.SGD([cr.Variable(np.zeros(1))], lr=1.0)
    >>> sched = CosineAnnealingLR(opt, T_max=2)
    >>> sched.step(); round(opt.lr, 6)
    0.5
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        lr, epoch, t_max, eta_min = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min
        if epoch == 0:
            return self.base_lr
        if self._step_count == 1 and epoch > 0:
            return eta_min + (self.base_lr - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        return (
            (1 + math.cos(math.pi * epoch / t_max))
            / (1 + math.cos(math.pi * (epoch - 1) / t_max))
            * (lr - eta_min)
            + eta_min
        )
