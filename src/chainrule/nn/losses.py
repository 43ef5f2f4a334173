"""Loss modules: thin wrappers over the functional losses so models can hold them."""
from __future__ import annotations

from typing import Any

import chainrule as cr

from .module import Module

__all__ = ["BCELoss", "CrossEntropyLoss", "HingeLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise cr.ChainruleError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of ``logits`` (N, C) against integer ``labels`` (N,).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> loss = cr.nn.CrossEntropyLoss()(cr.tensor(np.zeros((2, 4))), np.array([0, 3]))
    >>> round(float(loss.item()), 4)
    1.3863
    """

    def forward(self, logits: Any, labels: Any) -> Any:
        return cr.cross_entropy(logits, labels, reduction=self.reduction)


class HingeLoss(_Loss):
    """Multiclass SVM loss: per sample, ``sum_{j != y} max(0, s_j - s_y + margin)``."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, scores: Any, labels: Any) -> Any:
        return cr.hinge_loss(scores, labels, margin=self.margin, reduction=self.reduction)

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        return f"margin={self.margin}" + (f", {extra}" if extra else "")


class MSELoss(_Loss):
    """Mean squared error between ``pred`` and ``target``."""

    def forward(self, pred: Any, target: Any) -> Any:
        return cr.mse_loss(pred, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities ``prob`` against 0/1 ``target``."""

    def forward(self, prob: Any, target: Any) -> Any:
        return cr.binary_cross_entropy(prob, target, reduction=self.reduction)
