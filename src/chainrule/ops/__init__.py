"""The public functions over tensors, and the operators and methods of :class:`Tensor`.

Everything here is a thin front over the primitives of the registry; this is where Python
operators, NumPy-style keyword arguments and Tensor methods meet them.
"""
from __future__ import annotations


import numpy as np

from ..core.tensor import Tensor, make_leaf
from ..errors import GraphError
from . import composite, elementwise as ew, linalg, reduction as red, shape as sh
from .losses import binary_cross_entropy, cross_entropy, hinge_loss, mse_loss
from .conv import conv2d
from .pooling import avg_pool2d, max_pool2d
from .normalization import batch_norm, group_norm, layer_norm
from .dropout import dropout
from .embedding import embedding
from .linear import linear   # nn.Linear's x @ W.T, weight (out, in): see linear.py
from .namespace import A, T
from .registry import REGISTRY, Primitive, _scalar_array, apply, primitive
# PyTorch habits (issue 9): creation, statistics, axes, indexing, activations, ufuncs
from .activations import gelu, leaky_relu
from .axes import expand_dims, flatten, pad, squeeze, swapaxes, unsqueeze
from .creation import (arange, eye, full, linspace, ones, ones_like, rand, randn, zeros,
                       zeros_like)
from .contraction import einsum
from .indexing import gather, take_along_axis
from .statistics import argmax, argmin, logsumexp, norm, std, var
from . import activations as _act, axes as _axes, contraction as _es, indexing as _ga, ufuncs as _uf

# -- functions ---------------------------------------------------------------------------------
exp, log, sqrt, tanh = ew.exp, ew.log, ew.sqrt, ew.tanh
sigmoid, relu, abs = ew.sigmoid, ew.relu, ew.abs
maximum, minimum, matmul = ew.maximum, ew.minimum, linalg.matmul
sin, cos, log1p, expm1, sign = ew.sin, ew.cos, ew.log1p, ew.expm1, ew.sign


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _numpy_kw(op: str, out, dtype) -> None:
    # np.sum(t) / np.mean(t) call t.sum(axis=..., out=None, dtype=None): accept the defaults
    if out is not None:
        raise TypeError(f"{op}: out= is not supported on tensors (results are new tensors)")
    raise TypeError(f"{op}: dtype= is not supported; cast first with .astype(dtype)")


def sum(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None, out=None,
        dtype=None) -> Tensor:
    """Sum over ``axis`` (all by default), like ``np.sum`` (``dim``/``keepdim`` as torch)."""
    if out is not None or dtype is not None:
        _numpy_kw("sum", out, dtype)
    return red.sum(x, axis=_axis(axis if dim is None else dim),
                   keepdims=keepdims if keepdim is None else keepdim)


def mean(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None, out=None,
         dtype=None) -> Tensor:
    """Mean over ``axis`` (all by default), like ``np.mean`` (``dim``/``keepdim`` as torch)."""
    if out is not None or dtype is not None:
        _numpy_kw("mean", out, dtype)
    return red.mean(x, axis=_axis(axis if dim is None else dim),
                    keepdims=keepdims if keepdim is None else keepdim)


def max(x, axis=None, keepdims: bool = False, *, out=None) -> Tensor:
    """Largest element over ``axis``; the gradient goes to the winner (ties split evenly)."""
    if out is not None:
        _numpy_kw("max", out, None)
    return red.max(x, axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims: bool = False, *, out=None) -> Tensor:
    """Smallest element over ``axis``; the gradient goes to the winner (ties split evenly)."""
    if out is not None:
        _numpy_kw("min", out, None)
    return red.min(x, axis=_axis(axis), keepdims=keepdims)


def reshape(x, *shape, order: str = "C") -> Tensor:
    """``x`` with a new shape (one entry may be -1), like ``np.reshape``."""
    if order != "C":         # np.reshape(t, shape) passes order="C"
        raise NotImplementedError(f"reshape: only order='C' is supported, got {order!r}")
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return sh.reshape(x, shape=tuple(int(n) for n in shape))


def transpose(x, axes=None) -> Tensor:
    """Axes permuted (reversed by default), like ``np.transpose``."""
    return sh.transpose(x, axes=None if axes is None else tuple(int(a) for a in axes))


def concatenate(xs, axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis (``cr.cat`` is the same, as ``torch.cat``)."""
    return sh.concatenate(*xs, axis=axis if dim is None else dim)


cat = concatenate


def stack(xs, axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    return sh.stack(*xs, axis=axis)


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``; the condition carries no gradient."""
    return ew.where(condition, x, y)


def clip(x, a_min=None, a_max=None, *, min=None, max=None, out=None) -> Tensor:
    """Values limited to ``[a_min, a_max]``; the gradient passes where nothing was clipped.

    Bounds may be tensors or arrays (PyTorch's ``min=``/``max=`` names work too); tensor
    bounds receive the gradient where they clip, as in ``torch.clamp``.

    >>> import chainrule as cr
    >>> x = cr.tensor([0.0, 2.0, 5.0], requires_grad=True)
    >>> hi = cr.tensor([1.0, 3.0, 4.0], requires_grad=True)
    >>> cr.clip(x, 0.5, hi).sum().backward()
    >>> x.grad.numpy().tolist(), hi.grad.numpy().tolist()
    ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    """
    if out is not None:      # np.clip(t, lo, hi) passes out=None
        _numpy_kw("clip", out, None)
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    if lo is None and hi is None:
        raise ValueError("clip needs a_min or a_max")
    if isinstance(lo, (Tensor, np.ndarray, list)) or isinstance(hi, (Tensor, np.ndarray, list)):
        # bounds that are tensors are inputs of the op (they get gradients); a missing one is
        # the infinite bound
        return ew.clamp(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return ew.clip(x, lo=lo, hi=hi)


def softmax(x, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """Normalised exponentials along ``axis`` (or PyTorch's ``dim``), computed stably."""
    return composite.softmax(x, axis=axis if dim is None else dim)


def log_softmax(x, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """``log(softmax(x))`` along ``axis`` (or PyTorch's ``dim``), computed stably."""
    return composite.log_softmax(x, axis=axis if dim is None else dim)


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
# the rules of the PyTorch-habit ops (issue 9), on tensors and on arrays
T.__dict__.update(
    sin=ew.sin, cos=ew.cos, erf=_act.erf,
    pad=lambda x, widths: _axes.pad_p(x, widths=widths, value=0.0),
    einsum=lambda spec, *xs: _es.einsum_p(*xs, spec=spec),
    take_along_axis=lambda x, index, axis: _ga.take_along_axis_p(x, index, axis=axis),
    scatter_along_axis=lambda g, like, index, axis: _ga.scatter_along_axis_p(
        g, like, index, axis=axis),
)
A.__dict__.update(
    sin=np.sin, cos=np.cos, erf=_act.erf_kernel,
    pad=lambda x, widths: _axes._pad(x, widths=widths),
    einsum=lambda spec, *xs: _es._einsum(*xs, spec=spec),
    take_along_axis=lambda x, index, axis: np.take_along_axis(x, index, axis=axis),
    scatter_along_axis=_ga._scatter_along_axis,
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
    # operators call apply directly: one Python call less on the hottest path of eager mode.
    # A Python number beside a tensor with a value (``x * 1.01``, the commonest operand) is
    # lifted here, where ``x`` is known to be the one tensor whose dtype it takes
    if reflected:
        def op(x, y):
            if (type(y) is float or type(y) is int) and x.data is not None:
                return apply(prim, (make_leaf(_scalar_array(y, x.data.dtype)), x))
            return apply(prim, (y, x))
    else:
        def op(x, y):
            if (type(y) is float or type(y) is int) and x.data is not None:
                return apply(prim, (x, make_leaf(_scalar_array(y, x.data.dtype))))
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
# PyTorch's method habits (issue 9); ``view`` is reshape (arrays here have no aliasing rules)
_methods.update(
    view=reshape, unsqueeze=unsqueeze, squeeze=squeeze, flatten=flatten, argmax=argmax,
    argmin=argmin, std=std, var=var, norm=norm, logsumexp=logsumexp, swapaxes=swapaxes,
    permute=lambda x, *axes: transpose(x, axes[0] if len(axes) == 1 and isinstance(
        axes[0], (tuple, list)) else axes),
    gather=lambda x, dim, index: gather(x, dim, index),
    sin=_unary(ew.sin), cos=_unary(ew.cos), log1p=_unary(ew.log1p), expm1=_unary(ew.expm1),
    sign=_unary(ew.sign), tolist=lambda x: x.numpy().tolist(),
    __array_ufunc__=_uf.array_ufunc,
)
for _name, _fn in _methods.items():
    setattr(Tensor, _name, _fn)

__all__ = [
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sum", "mean", "max", "min",
    "maximum", "minimum", "matmul", "reshape", "transpose", "concatenate", "stack", "where",
    "clip", "softmax", "log_softmax", "astype", "mse_loss", "binary_cross_entropy",
    "cross_entropy", "hinge_loss", "REGISTRY", "Primitive", "primitive", "apply",
    "sin", "cos", "log1p", "expm1", "sign", "cat", "gelu", "leaky_relu", "expand_dims",
    "flatten", "pad", "squeeze", "swapaxes", "unsqueeze", "arange", "eye", "full", "linspace",
    "ones", "ones_like", "rand", "randn", "zeros", "zeros_like", "einsum", "gather",
    "take_along_axis", "argmax", "argmin", "logsumexp", "norm", "std", "var",
]
