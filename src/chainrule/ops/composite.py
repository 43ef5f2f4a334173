"""Gates with a rule of their own for numerical stability and speed: softmax, log-softmax,
and softmax cross-entropy fused with its loss (its gradient is just ``softmax - onehot``)."""
from __future__ import annotations

import numpy as np

from .namespace import _softmax
from .registry import primitive

# d softmax: gx = y * (g - sum(g * y))
softmax = primitive(
    "softmax", lambda x, *, axis=-1: _softmax(x, axis),
    (lambda F, g, out, x, *, axis=-1: out * (g - F.sum(g * out, axis=axis, keepdims=True)),),
    "_softmax({0}, axis={axis})", "softmax", helper="""\
def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
""")


def _log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


# d log_softmax: gx = g - softmax(x) * sum(g), and softmax(x) = exp(out)
log_softmax = primitive(
    "log_softmax", lambda x, *, axis=-1: _log_softmax(x, axis),
    (lambda F, g, out, x, *, axis=-1: g - F.exp(out) * F.sum(g, axis=axis, keepdims=True),),
    "_log_softmax({0}, axis={axis})", "log_softmax", helper="""\
def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
""")


def _cross_entropy(logits, labels, *, reduction="mean"):
    z = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]
    if reduction == "mean":
        return nll.mean()
    return nll.sum() if reduction == "sum" else nll


def _cross_entropy_vjp(F, g, out, logits, labels, *, reduction="mean"):
    # d CE / d logits = softmax(logits) - onehot(labels), per sample, times upstream
    delta = F.softmax(logits, -1) - F.one_hot(labels, logits)
    if reduction == "none":
        return delta * F.expand_dims(g, 1)
    if reduction == "mean":
        g = g / F.count(logits, 0)
    return delta * g


cross_entropy = primitive(
    "cross_entropy", _cross_entropy, (_cross_entropy_vjp, None),
    "_cross_entropy({0}, {1}, {reduction})", "cross_entropy", helper="""\
def _cross_entropy(logits, labels, reduction):
    z = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]
    if reduction == "mean":
        return nll.mean()
    return nll.sum() if reduction == "sum" else nll
""", expand=None)


def _bce(p, t):
    # PyTorch clamps each log at -100 so that p = 0 or 1 gives a large finite loss, not inf
    with np.errstate(divide="ignore"):
        return -(t * np.maximum(np.log(p), -100.0) + (1 - t) * np.maximum(np.log1p(-p), -100.0))


# d/dp = (p - t) / (p (1 - p)), the denominator kept >= 1e-12 as in PyTorch
def _bce_dp(F, g, out, p, t):
    return g * (p - t) / F.clip(p * (1 - p), 1e-12, None)


# d/dt = log(1 - p) - log(p)
def _bce_dt(F, g, out, p, t):
    return g * (F.log(1 - p) - F.log(p))


# elementwise binary cross-entropy of probabilities: one gate, for the clamps and a gradient
# that reads as the textbook's (p - t) / (p (1 - p))
binary_cross_entropy = primitive(
    "binary_cross_entropy", _bce, (_bce_dp, _bce_dt), "_bce({0}, {1})", "bce", helper="""\
def _bce(p, t):
    return -(t * np.maximum(np.log(p), -100.0) + (1 - t) * np.maximum(np.log1p(-p), -100.0))
""")
