"""Reductions for statistics and distances: argmax, argmin, var, std, logsumexp, norm.

``var``/``std`` are compositions of mean, sum and count (the two-pass formula is as stable as
a rule of its own would be, its gradient ``2 (x - mean) / (n - correction)`` falls out, and so
does every higher derivative). ``logsumexp`` and the 2-norm are gates of their own: the first
for the max shift that keeps ``exp`` from overflowing, the second for PyTorch's gradient of 0
(not 0/0) at the zero vector.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from . import elementwise as ew
from . import reduction as red
from .axes import _axis_arg, _tensor
from .reduction import _kept, _kw
from .registry import primitive


def reduce_axes(axis, ndim: int, op: str):
    """``axis`` (None, int, tuple or list) checked against ``ndim``: None, one non-negative
    int, or a sorted tuple. On a 0-d tensor axis 0 / -1 means the whole tensor, as PyTorch."""
    if axis is None:
        return None
    items = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    if ndim == 0:
        if any(int(a) not in (0, -1) for a in items):
            raise ShapeError(f"{op}: axis {axis} is out of range for a 0-d tensor")
        return None
    out = []
    for a in items:
        if not -ndim <= int(a) < ndim:
            raise ShapeError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dims")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: axis {axis} repeats an axis")
    return out[0] if isinstance(axis, (int, np.integer)) else tuple(sorted(out))


def _numpy_defaults(op: str, dtype, out) -> None:
    # np.std(t) / np.argmax(t) call the method with dtype=None, out=None: accept those
    if out is not None:
        raise TypeError(f"{op}: out= is not supported on tensors (results are new tensors)")
    if dtype is not None:
        raise TypeError(f"{op}: dtype= is not supported; cast first with .astype(dtype)")


def _keep_arg(keepdims: bool, keepdim: bool | None) -> bool:
    return bool(keepdims if keepdim is None else keepdim)


# -- argmax / argmin: integer results, no gradient ---------------------------------------------
def _arg_code(fn):
    return lambda a, p, node: f"np.{fn}({a[0]}{_kw(p.get('axis'), p.get('keepdims'))})"


argmax_p = primitive(
    "argmax", lambda x, *, axis=None, keepdims=False: np.argmax(x, axis=axis, keepdims=keepdims),
    None, _arg_code("argmax"), "argmax")
argmin_p = primitive(
    "argmin", lambda x, *, axis=None, keepdims=False: np.argmin(x, axis=axis, keepdims=keepdims),
    None, _arg_code("argmin"), "argmin")


def _arg(p, x, axis, dim, keepdims, keepdim) -> Tensor:
    x = _tensor(x)
    axis = _axis_arg(axis, dim, p.name)
    if isinstance(axis, (tuple, list)):
        raise ShapeError(f"{p.name}: takes one axis (or None for the flattened tensor), "
                         f"got {axis}")
    if x.shape and any(n == 0 for n in x.shape) and axis is None:
        raise ShapeError(f"{p.name}: of an empty tensor of shape {x.shape}")
    return p(x, axis=reduce_axes(axis, x.ndim, p.name), keepdims=_keep_arg(keepdims, keepdim))


def argmax(x, axis: int | None = None, out=None, *, keepdims: bool = False, dim=None,
           keepdim=None) -> Tensor:
    """Index of the largest element along ``axis`` (of the flattened tensor by default), as
    ``np.argmax``/``torch.argmax``; the first one among ties. An int64 tensor: no gradient.

    >>> import chainrule as cr
    >>> cr.argmax(cr.tensor([[1.0, 5.0], [7.0, 2.0]]), axis=1).tolist()
    [1, 0]
    """
    _numpy_defaults("argmax", None, out)
    return _arg(argmax_p, x, axis, dim, keepdims, keepdim)


def argmin(x, axis: int | None = None, out=None, *, keepdims: bool = False, dim=None,
           keepdim=None) -> Tensor:
    """Index of the smallest element along ``axis``, as ``np.argmin``/``torch.argmin``.

    >>> import chainrule as cr
    >>> cr.argmin(cr.tensor([3.0, 1.0, 2.0])).item()
    1
    """
    _numpy_defaults("argmin", None, out)
    return _arg(argmin_p, x, axis, dim, keepdims, keepdim)


# -- var / std ---------------------------------------------------------------------------------
def _correction(ddof, correction, unbiased) -> float:
    given = [v for v in (ddof, correction, unbiased) if v is not None]
    if len(given) > 1:
        raise TypeError("var/std: give one of ddof, correction, unbiased")
    if ddof is not None:
        return ddof
    if correction is not None:
        return correction
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1             # PyTorch's default: the unbiased estimate


def var(x, axis=None, *, ddof=None, correction=None, keepdims: bool = False, dim=None,
        keepdim=None, unbiased=None, dtype=None, out=None) -> Tensor:
    """Variance over ``axis``: ``sum((x - mean)^2) / (n - correction)``.

    As PyTorch, the default is the unbiased estimate (``correction=1``); NumPy's ``np.var``
    default is ``ddof=0``: pass ``ddof=0`` (or ``correction=0``) for it.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 4.0], dtype="float64")
    >>> round(cr.var(x).item(), 4), round(cr.var(x, ddof=0).item(), 4)
    (2.3333, 1.5556)
    """
    _numpy_defaults("var", dtype, out)
    x = _tensor(x)
    c = _correction(ddof, correction, unbiased)
    ax = reduce_axes(_axis_arg(axis, dim, "var"), x.ndim, "var")
    keep = _keep_arg(keepdims, keepdim)
    d = x - red.mean(x, axis=ax, keepdims=True)
    if c == 0:
        return red.mean(d * d, axis=ax, keepdims=keep)
    # n - correction floored at 0, as PyTorch: fewer values than the correction give 0/0 = NaN
    return red.sum(d * d, axis=ax, keepdims=keep) / ew.maximum(red.count(x, axis=ax) - c, 0)


def std(x, axis=None, *, ddof=None, correction=None, keepdims: bool = False, dim=None,
        keepdim=None, unbiased=None, dtype=None, out=None) -> Tensor:
    """Standard deviation, ``sqrt(var(x, ...))``, with :func:`var`'s arguments (unbiased by
    default, as PyTorch).

    >>> import chainrule as cr
    >>> round(cr.std(cr.tensor([1.0, 3.0], dtype="float64")).item(), 4)
    1.4142
    """
    _numpy_defaults("std", dtype, out)
    return ew.sqrt(var(x, axis, ddof=ddof, correction=correction, keepdims=keepdims, dim=dim,
                       keepdim=keepdim, unbiased=unbiased))


# -- logsumexp ---------------------------------------------------------------------------------
LOGSUMEXP_SOURCE = '''\
def _logsumexp(x, axis, keepdims):
    m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)    # all -inf (or empty): nothing to shift by
    s = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)
'''
_ns: dict = {"np": np}
exec(compile(LOGSUMEXP_SOURCE, "<chainrule kernels>", "exec"), _ns)
_logsumexp = _ns["_logsumexp"]


# d logsumexp = softmax(x) dx = exp(x - out) dx, the reduced axes put back
logsumexp_p = primitive(
    "logsumexp", lambda x, *, axis=None, keepdims=False: _logsumexp(x, axis, keepdims),
    (lambda F, g, out, x, *, axis=None, keepdims=False:
        _kept(F, g, x, axis, keepdims) * F.exp(x - _kept(F, out, x, axis, keepdims)),),
    "_logsumexp({0}, {axis}, {keepdims})", "logsumexp", helper=LOGSUMEXP_SOURCE)


def logsumexp(x, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, computed stably, as ``torch.logsumexp``.

    >>> import chainrule as cr
    >>> round(cr.logsumexp(cr.tensor([1000.0, 1000.0], dtype="float64")).item(), 4)
    1000.6931
    """
    x = _tensor(x)
    ax = reduce_axes(_axis_arg(axis, dim, "logsumexp"), x.ndim, "logsumexp")
    return logsumexp_p(x, axis=ax, keepdims=_keep_arg(keepdims, keepdim))


# -- norm --------------------------------------------------------------------------------------
def _norm2(x, *, axis=None, keepdims=False):
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


def _norm2_vjp(F, g, out, x, *, axis=None, keepdims=False):
    # d ||x|| = x / ||x|| dx; at the zero vector x is all zeros, and so is the gradient there
    # (PyTorch's choice), where x / ||x|| would be 0/0
    n = _kept(F, out, x, axis, keepdims)
    return x * (_kept(F, g, x, axis, keepdims) / F.where(n == 0, 1, n))


norm2_p = primitive(
    "norm", _norm2, (_norm2_vjp,),
    lambda a, p, node: f"np.sqrt(np.sum({a[0]} * {a[0]}{_kw(p.get('axis'), p.get('keepdims'))}))",
    "norm")


def norm(x, ord=None, axis=None, keepdims: bool = False, *, p=None, dim=None,
         keepdim=None) -> Tensor:
    """Vector norm over ``axis`` (all elements by default), as ``torch.linalg.vector_norm``:
    ``ord`` (or PyTorch's ``p``) is 2 (default, also ``"fro"``), 1, ``inf``, ``-inf``, 0 or
    any other number (``sum(|x|^ord)^(1/ord)``). Matrix norms (NumPy's ``ord`` on two axes)
    are not provided. The gradient of the 2-norm at the zero vector is 0, as PyTorch's.

    >>> import chainrule as cr
    >>> cr.norm(cr.tensor([3.0, 4.0])).item()
    5.0
    """
    x = _tensor(x)
    if p is not None:
        if ord is not None:
            raise TypeError("norm: give ord or p, not both")
        ord = p
    ax = reduce_axes(_axis_arg(axis, dim, "norm"), x.ndim, "norm")
    keep = _keep_arg(keepdims, keepdim)
    if ord is None or ord == "fro" or ord == 2:
        return norm2_p(x, axis=ax, keepdims=keep)
    if isinstance(ord, str):
        raise NotImplementedError(f"norm: ord={ord!r} is a matrix norm; only vector norms are "
                                  f"provided")
    ord = float(ord)
    if ord == np.inf:
        return red.max(ew.abs(x), axis=ax, keepdims=keep)
    if ord == -np.inf:
        return red.min(ew.abs(x), axis=ax, keepdims=keep)
    if ord == 0:             # how many are non-zero: a count, with no gradient
        return red.sum(ew.cast(ew.ne(x, 0), dtype=x.dtype), axis=ax, keepdims=keep)
    if ord == 1:
        return red.sum(ew.abs(x), axis=ax, keepdims=keep)
    return ew.powc(red.sum(ew.powc(ew.abs(x), p=ord), axis=ax, keepdims=keep), p=1.0 / ord)
