"""The public functions over tensors, and the operators and methods of :class:`Tensor`.

Everything here is a thin front over the primitives of the registry; this is where Python
operators, NumPy-style keyword arguments and Tensor methods meet them.
"""
from __future__ import annotations


import numpy as np

from ..core.tensor import Tensor
from ..errors import GraphError
from . import composite, elementwise as ew, linalg, reduction as red, shape as sh
from .losses import binary_cross_entropy, cross_entropy, hinge_loss, mse_loss
from .conv import conv2d
from .pooling import avg_pool2d, max_pool2d
from .normalization import batch_norm, group_norm, layer_norm
from .dropout import dropout
from .embedding import embedding
from .linear import linear   # nn.Linear's x @ W.T, weight (out, in): see linear.py
from .namespace import T
from .registry import REGISTRY, Primitive, apply, primitive

# -- functions ---------------------------------------------------------------------------------
exp, log, sqrt, tanh = ew.exp, ew.log, ew.sqrt, ew.tanh
sigmoid, relu, abs = ew.sigmoid, ew.relu, ew.abs
maximum, minimum, matmul = ew.maximum, ew.minimum, linalg.matmul


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def sum(x, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all by default), like ``np.sum``."""
    return red.sum(x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all by default), like ``np.mean``."""
    return red.mean(x, axis=_axis(axis), keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:
    """Largest element over ``axis``; the gradient goes to the winner (ties split evenly)."""
    return red.max(x, axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims: bool = False) -> Tensor:
    """Smallest element over ``axis``; the gradient goes to the winner (ties split evenly)."""
    return red.min(x, axis=_axis(axis), keepdims=keepdims)


def reshape(x, *shape) -> Tensor:
    """``x`` with a new shape (one entry may be -1), like ``np.reshape``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return sh.reshape(x, shape=tuple(int(n) for n in shape))


def transpose(x, axes=None) -> Tensor:
    """Axes permuted (reversed by default), like ``np.transpose``."""
    return sh.transpose(x, axes=None if axes is None else tuple(int(a) for a in axes))


def concatenate(xs, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return sh.concatenate(*xs, axis=axis)


def stack(xs, axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    return sh.stack(*xs, axis=axis)


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``; the condition carries no gradient."""
    return ew.where(condition, x, y)


def clip(x, a_min=None, a_max=None) -> Tensor:
    """Values limited to ``[a_min, a_max]``; the gradient passes where nothing was clipped."""
    if a_min is None and a_max is None:
        raise ValueError("clip needs a_min or a_max")
    return ew.clip(x, lo=a_min, hi=a_max)


def softmax(x, axis: int = -1) -> Tensor:
    """Normalised exponentials along ``axis``, computed stably."""
    return composite.softmax(x, axis=axis)


def log_softmax(x, axis: int = -1) -> Tensor:
    """``log(softmax(x))`` along ``axis``, computed stably."""
    return composite.log_softmax(x, axis=axis)


def astype(x, dtype) -> Tensor:
    """A copy cast to ``dtype`` (the gradient is cast back)."""
    return ew.cast(x, dtype=np.dtype(dtype))


# -- the op namespace of backward rules on tensors (see namespace.py) ------------------------
T.__dict__.update(
    exp=ew.exp, log=ew.log, clip=lambda x, lo, hi: ew.clip(x, lo=lo, hi=hi), sqrt=ew.sqrt, tanh=ew.tanh, sign=ew.sign, where=ew.where,
    sum=lambda x, axis=None, keepdims=False: red.sum(x, axis=axis, keepdims=keepdims),
    expand_dims=lambda x, axis: sh.expand_dims(x, axis=axis),
    broadcast_like=red.broadcast_like,
    sum_to=lambda x, shape: red.sum_to(x, shape=tuple(shape)),
    reshape_like=sh.reshape_like,
    transpose=lambda x, axes=None: sh.transpose(x, axes=axes),
    mT=lambda x: sh.transpose(x, axes=tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)),
    matmul=linalg.matmul,
    getitem=lambda x, index: sh.getitem(x, index=index),
    scatter_add=lambda g, like, index: sh.scatter_add(g, like, index=index),
    pick=sh.pick, unpick=sh.unpick, one_hot=sh.one_hot,
    softmax=lambda x, axis=-1: composite.softmax(x, axis=axis),
    softmax_minus_onehot=composite.softmax_minus_onehot,
    count=lambda x, axis=None: red.count(x, axis=axis),
    cast=lambda x, dtype: ew.cast(x, dtype=np.dtype(dtype)),
)


# -- Tensor operators and methods --------------------------------------------------------------
def _index(index):
    # tensors used as indices are read as arrays: indices carry no gradient
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, Tensor):
        if index.data is None:
            raise GraphError("indexing with a symbolic tensor is not supported; "
                             "use cr.cross_entropy / cr.hinge_loss for per-row label picks")
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _pow(x, p):
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        return ew.powc(x, p=p)
    return ew.pow(x, p)


def _T(x):
    return sh.transpose(x, axes=None)


def _binary(prim: Primitive, reflected: bool = False):
    # operators call apply directly: one Python call less on the hottest path of eager mode
    if reflected:
        def op(x, y):
            return apply(prim, (y, x))
    else:
        def op(x, y):
            return apply(prim, (x, y))
    op.__name__ = prim.name
    return op


def _unary(prim: Primitive):
    def op(x):
        return apply(prim, (x,))
    op.__name__ = prim.name
    op.__doc__ = f"Elementwise {prim.name} (see chainrule.{prim.name})."
    return op


_methods = dict(
    __add__=_binary(ew.add), __radd__=_binary(ew.add, True),
    __sub__=_binary(ew.sub), __rsub__=_binary(ew.sub, True),
    __mul__=_binary(ew.mul), __rmul__=_binary(ew.mul, True),
    __truediv__=_binary(ew.div), __rtruediv__=_binary(ew.div, True),
    __pow__=_pow, __rpow__=_binary(ew.pow, True),
    __matmul__=_binary(linalg.matmul), __rmatmul__=_binary(linalg.matmul, True),
    __neg__=_unary(ew.neg), __pos__=lambda x: x, __abs__=_unary(ew.abs),
    __getitem__=lambda x, index: sh.getitem(x, index=_index(index)),
    __lt__=_binary(ew.lt), __le__=_binary(ew.le), __gt__=_binary(ew.gt), __ge__=_binary(ew.ge),
    __eq__=_binary(ew.eq), __ne__=_binary(ew.ne),
    exp=_unary(ew.exp), log=_unary(ew.log), sqrt=_unary(ew.sqrt), tanh=_unary(ew.tanh),
    sigmoid=_unary(ew.sigmoid), relu=_unary(ew.relu), abs=_unary(ew.abs),
    sum=sum, mean=mean, max=max, min=min, reshape=reshape, transpose=transpose,
    clip=clip, softmax=softmax, log_softmax=log_softmax, astype=astype,
    matmul=_binary(linalg.matmul), T=property(_T),
)
for _name, _fn in _methods.items():
    setattr(Tensor, _name, _fn)

__all__ = [
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sum", "mean", "max", "min",
    "maximum", "minimum", "matmul", "reshape", "transpose", "concatenate", "stack", "where",
    "clip", "softmax", "log_softmax", "astype", "mse_loss", "binary_cross_entropy",
    "cross_entropy", "hinge_loss", "REGISTRY", "Primitive", "primitive", "apply",
]
