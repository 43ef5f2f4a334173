"""Losses, composed from primitives (cross-entropy is one fused gate for stability)."""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from . import composite, elementwise as ew, reduction as red, shape as sh
from .registry import lift

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(per: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return red.mean(per)
    if reduction == "sum":
        return red.sum(per)
    return per


def _labels(labels, scores: Tensor) -> Tensor:
    t = labels if isinstance(labels, Tensor) else lift(np.asarray(labels), None)
    if t.dtype.kind not in "iu":
        raise ShapeError(f"class labels must be integers, got dtype {t.dtype}")
    if scores.ndim != 2 or t.ndim != 1:
        raise ShapeError(f"expected scores of shape (N, C) and labels of shape (N,), got "
                         f"{scores.shape} and {t.shape}")
    return t


def mse_loss(pred, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(pred - target)^2`` ("none" gives one value per element).

    >>> import chainrule as cr
    >>> cr.mse_loss(cr.tensor([1.0, 3.0]), cr.tensor([1.0, 1.0])).item()
    2.0
    """
    _check_reduction(reduction)
    return _reduce(ew.powc(ew.sub(pred, target), p=2), reduction)


def binary_cross_entropy(prob, target, reduction: str = "mean") -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))``, each log clamped at -100 as in PyTorch.

    >>> import chainrule as cr
    >>> round(cr.binary_cross_entropy(cr.tensor([0.5]), cr.tensor([1.0])).item(), 4)
    0.6931
    """
    _check_reduction(reduction)
    return _reduce(composite.binary_cross_entropy(prob, target), reduction)


def cross_entropy(logits, labels, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer ``labels`` (N,).

    Fused and stable: the log-sum-exp subtracts the row maximum, and the gradient is
    ``softmax(logits) - onehot(labels)``.

    >>> import chainrule as cr, numpy as np
    >>> round(cr.cross_entropy(cr.tensor([[0.0, 0.0]]), np.array([1])).item(), 4)
    0.6931
    """
    _check_reduction(reduction)
    logits = logits if isinstance(logits, Tensor) else lift(logits, None)
    return composite.cross_entropy(logits, _labels(labels, logits), reduction=reduction)


def hinge_loss(scores, labels, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Multiclass SVM loss: per sample, ``sum_{j != y} max(0, s_j - s_y + margin)``.

    >>> import chainrule as cr, numpy as np
    >>> s = cr.tensor([[3.2, 5.1, -1.7]])
    >>> round(cr.hinge_loss(s, np.array([0])).item(), 2)
    2.9
    """
    _check_reduction(reduction)
    scores = scores if isinstance(scores, Tensor) else lift(scores, None)
    labels = _labels(labels, scores)
    correct = sh.expand_dims(sh.pick(scores, labels), axis=1)
    margins = ew.maximum(ew.add(ew.sub(scores, correct), margin), 0.0)
    # the correct class never counts against itself
    wrong = ew.sub(1.0, sh.one_hot(labels, scores))
    per = red.sum(ew.mul(margins, wrong), axis=1)
    return _reduce(per, reduction)
