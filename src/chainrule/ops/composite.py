"""Gates with a rule of their own for numerical stability and speed: softmax, log-softmax,
softmax cross-entropy fused with its loss (its gradient is just ``softmax - onehot``), and
binary cross-entropy. Their NumPy kernels live in :mod:`kernels`, as source shared with the
compiled code."""
from __future__ import annotations

from . import kernels
from .kernels import SOURCE
from .registry import primitive

# d softmax: gx = y * (g - sum(g * y))
softmax = primitive(
    "softmax", lambda x, *, axis=-1: kernels.softmax(x, axis),
    (lambda F, g, out, x, *, axis=-1: out * (g - F.sum(g * out, axis=axis, keepdims=True)),),
    "_softmax({0}, axis={axis})", "softmax", helper=SOURCE["_softmax"], axes=("axis", 0))

# d log_softmax: gx = g - softmax(x) * sum(g), and softmax(x) = exp(out)
log_softmax = primitive(
    "log_softmax", lambda x, *, axis=-1: kernels.log_softmax(x, axis),
    (lambda F, g, out, x, *, axis=-1: g - F.exp(out) * F.sum(g, axis=axis, keepdims=True),),
    "_log_softmax({0}, axis={axis})", "log_softmax", helper=SOURCE["_log_softmax"],
    axes=("axis", 0))

# softmax(logits) - onehot(labels): the gradient of cross-entropy, one kernel (the textbook's
# ``p[range(N), y] -= 1``). Its own gradient is softmax's: the one-hot is a constant
softmax_minus_onehot = primitive(
    "softmax_minus_onehot", kernels.softmax_minus_onehot,
    (lambda F, g, out, logits, labels: F.softmax(logits, -1) * (
        g - F.sum(g * F.softmax(logits, -1), axis=-1, keepdims=True)), None),
    "_softmax_minus_onehot({0}, {1})", "softmax - onehot",
    helper=SOURCE["_softmax_minus_onehot"])


def _cross_entropy_vjp(F, g, out, logits, labels, *, reduction="mean"):
    # d CE / d logits = softmax(logits) - onehot(labels), per sample, times upstream
    delta = F.softmax_minus_onehot(logits, labels)
    if reduction == "none":
        return delta * F.expand_dims(g, 1)
    if reduction == "mean":
        g = g / F.count(logits, 0)
    return delta * g


cross_entropy = primitive(
    "cross_entropy", lambda logits, labels, *, reduction="mean":
        kernels.cross_entropy(logits, labels, reduction),
    (_cross_entropy_vjp, None),
    "_cross_entropy({0}, {1}, {reduction})", "cross_entropy", helper=SOURCE["_cross_entropy"])


# d/dp = (p - t) / (p (1 - p)), the denominator kept >= 1e-12 as in PyTorch
def _bce_dp(F, g, out, p, t):
    return g * (p - t) / F.clip(p * (1 - p), 1e-12, None)


# d/dt = log(1 - p) - log(p)
def _bce_dt(F, g, out, p, t):
    return g * (F.log(1 - p) - F.log(p))


# elementwise binary cross-entropy of probabilities: one gate, for the clamps and a gradient
# that reads as the textbook's (p - t) / (p (1 - p))
binary_cross_entropy = primitive(
    "binary_cross_entropy", kernels.bce, (_bce_dp, _bce_dt), "_bce({0}, {1})", "bce",
    helper=SOURCE["_bce"])
