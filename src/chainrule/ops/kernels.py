"""NumPy kernels of more than one line, written once as source text.

Each is both the implementation the eager engine calls and the helper that compiled source
carries (``cr.function`` prints the text above the function that uses it), so the two can
never drift apart. Reductions call the ufunc's ``reduce`` directly: ``x.max()`` goes through a
Python wrapper that costs more than the arithmetic on small batches.
"""
from __future__ import annotations

import numpy as np

SOURCE = {
    "_softmax": '''\
def _softmax(x, axis):
    # initial=-inf: the max of an empty axis is -inf, so an empty softmax is empty, not an error
    e = np.exp(x - np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf))
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e
''',
    "_log_softmax": '''\
def _log_softmax(x, axis):
    z = x - np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)
    z -= np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True))
    return z
''',
    "_cross_entropy": '''\
def _cross_entropy(logits, labels, reduction):
    z = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
    nll = np.log(np.add.reduce(np.exp(z), axis=1))
    nll -= z[np.arange(len(labels)), labels]
    if reduction == "mean":
        return np.add.reduce(nll) / len(nll)
    return np.add.reduce(nll) if reduction == "sum" else nll
''',
    "_softmax_minus_onehot": '''\
def _softmax_minus_onehot(logits, labels):
    p = np.exp(logits - np.maximum.reduce(logits, axis=1, keepdims=True))
    p /= np.add.reduce(p, axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p
''',
    "_cross_entropy_with_grad": '''\
def _cross_entropy_with_grad(logits, labels, reduction):
    # the loss and softmax(logits) - onehot(labels) from one exp, as written by hand
    z = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
    p = np.exp(z)
    total = np.add.reduce(p, axis=1, keepdims=True)
    rows = np.arange(len(labels))
    nll = np.log(total[:, 0]) - z[rows, labels]
    p /= total
    p[rows, labels] -= 1
    if reduction == "mean":
        return np.add.reduce(nll) / len(nll), p
    return (np.add.reduce(nll) if reduction == "sum" else nll), p
''',
    "_sum_to_like": '''\
def _sum_to_like(g, like):
    # the reverse of broadcasting, to a shape known only at run time
    lead = g.ndim - like.ndim
    keep = tuple(lead + i for i, n in enumerate(like.shape) if n == 1 and g.shape[lead + i] != 1)
    if keep:
        g = np.add.reduce(g, axis=tuple(range(lead)) + keep, keepdims=True)
        return g.reshape(like.shape)
    return np.add.reduce(g, axis=tuple(range(lead))) if lead else g
''',
    "_one_hot": '''\
def _one_hot(labels, like):
    out = np.zeros(like.shape, dtype=like.dtype)
    out[np.arange(len(labels)), labels] = 1
    return out
''',
    "_unpick": '''\
def _unpick(g, like, labels):
    out = np.zeros(like.shape, dtype=g.dtype)
    out[np.arange(len(labels)), labels] = g
    return out
''',
    "_scatter_add": '''\
def _scatter_add(g, like, index):
    out = np.zeros(like.shape, dtype=g.dtype)
    np.add.at(out, index, g)  # repeated indices add up
    return out
''',
    "_bce": '''\
def _bce(p, t):
    with np.errstate(divide="ignore"):   # log(0) is clamped to -100 below, as in PyTorch
        return -(t * np.maximum(np.log(p), -100.0) + (1 - t) * np.maximum(np.log1p(-p), -100.0))
''',
}

_namespace: dict = {"np": np}
for _text in SOURCE.values():
    exec(compile(_text, "<chainrule kernels>", "exec"), _namespace)

softmax = _namespace["_softmax"]
log_softmax = _namespace["_log_softmax"]
cross_entropy = _namespace["_cross_entropy"]
softmax_minus_onehot = _namespace["_softmax_minus_onehot"]
one_hot = _namespace["_one_hot"]
sum_to_like = _namespace["_sum_to_like"]
unpick = _namespace["_unpick"]
bce = _namespace["_bce"]
_scatter_add_any = _namespace["_scatter_add"]


def scatter_add(g: np.ndarray, like: np.ndarray, index) -> np.ndarray:
    """``_scatter_add``, with plain assignment where the index cannot repeat an element."""
    items = index if isinstance(index, tuple) else (index,)
    if all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items):
        out = np.zeros(like.shape, dtype=g.dtype)
        out[index] = g
        return out
    return _scatter_add_any(g, like, index)
