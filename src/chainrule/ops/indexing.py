"""Picking elements along an axis by integer indices: ``take_along_axis`` (NumPy) and
``gather`` (PyTorch), with a scatter-add backward.

Two primitives that are each other's gradient, like ``pick``/``unpick``: the gradient of a
take is a scatter-add of ``g`` into zeros (an index picked twice receives both shares), and the
gradient of that scatter is the take again, so derivatives of any order stay in the registry.
The indices are an input (an integer tensor, a placeholder if you like) that carries no
gradient, never a parameter: a symbolic graph never indexes real data with stand-in shapes.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from . import shape as sh
from .axes import _axis_arg, _norm_axis, _tensor
from .registry import lift, primitive

SCATTER_SOURCE = '''\
def _scatter_along_axis(g, like, index, axis):
    shape = list(g.shape)
    shape[axis] = like.shape[axis]
    out = np.zeros(shape, dtype=g.dtype)
    where = list(np.ix_(*[np.arange(n) for n in g.shape]))
    where[axis] = np.broadcast_to(index, g.shape)
    np.add.at(out, tuple(where), g)     # an index picked twice receives both shares
    return out
'''
_ns: dict = {"np": np}
exec(compile(SCATTER_SOURCE, "<chainrule kernels>", "exec"), _ns)
_scatter_along_axis = _ns["_scatter_along_axis"]


def _broadcast_dim(a, b):
    if a == 1:
        return b
    if b == 1 or b is None:
        return a
    return b


def _take_infer(x, index, *, axis):
    if x.ndim != index.ndim:
        raise ShapeError(f"take_along_axis: indices of shape {index.shape} need as many dims as "
                         f"the tensor's {x.shape}")
    shape = tuple(index.shape[i] if i == axis else _broadcast_dim(x.shape[i], index.shape[i])
                  for i in range(x.ndim))
    return shape, x.dtype


def _scatter_infer(g, like, index, *, axis):
    shape = list(g.shape)
    shape[axis] = like.shape[axis]
    return tuple(shape), g.dtype


# d take(x, i) = scatter-add of g at i into zeros of x's (broadcast) shape
take_along_axis_p = primitive(
    "take_along_axis", lambda x, index, *, axis: np.take_along_axis(x, index, axis=axis),
    (lambda F, g, out, x, index, *, axis: F.scatter_along_axis(g, x, index, axis), None),
    "np.take_along_axis({0}, {1}, axis={axis})", "take", infer=_take_infer)
# d scatter(g, i) = take(dg, i)
scatter_along_axis_p = primitive(
    "scatter_along_axis", _scatter_along_axis,
    (lambda F, g, out, x, like, index, *, axis: F.take_along_axis(g, index, axis), None, None),
    "_scatter_along_axis({0}, {1}, {2}, {axis})", "scatter", infer=_scatter_infer,
    helper=SCATTER_SOURCE)


def _indices(index, op: str) -> Tensor:
    if not isinstance(index, Tensor):
        index = lift(np.asarray(index), None)
    if index.dtype.kind not in "iu":
        raise ShapeError(f"{op}: indices must be integers, got dtype {index.dtype}")
    return index


def take_along_axis(x, indices, axis: int = -1) -> Tensor:
    """Elements of ``x`` at ``indices`` along ``axis``, as ``np.take_along_axis``: the
    indices have ``x``'s number of dims and broadcast with it on the other axes.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    >>> cr.take_along_axis(x, np.array([[2], [0]]), axis=1).numpy().tolist()
    [[30.0], [40.0]]
    """
    x = _tensor(x)
    index = _indices(indices, "take_along_axis")
    if x.ndim != index.ndim or x.ndim == 0:
        raise ShapeError(f"take_along_axis: indices of shape {index.shape} need as many dims "
                         f"(at least 1) as the tensor's {x.shape}")
    return take_along_axis_p(x, index, axis=_norm_axis(axis, x.ndim, "take_along_axis"))


def gather(x, axis: int | None = None, index=None, *, dim: int | None = None) -> Tensor:
    """``out[i][j] = x[index[i][j]][j]`` for ``axis=0`` (and so on), as ``torch.gather(x,
    dim, index)``: ``index`` has ``x``'s number of dims and, on every other axis, a size no
    larger than ``x``'s; the result has ``index``'s shape.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> cr.gather(x, 1, np.array([[0, 0], [1, 0]])).numpy().tolist()
    [[1.0, 1.0], [4.0, 3.0]]
    """
    axis = _axis_arg(axis, dim, "gather")
    if axis is None or index is None:
        raise TypeError("gather: needs an axis (dim) and an index")
    x = _tensor(x)
    index = _indices(index, "gather")
    if x.ndim == 0 and index.ndim <= 1:      # PyTorch reads a 0-d tensor as one element
        _norm_axis(axis, 0, "gather")
        if index.ndim == 0:
            return sh.reshape(gather(sh.reshape(x, shape=(1,)), 0, sh.reshape(index, shape=(1,))),
                              shape=())
        return take_along_axis_p(sh.reshape(x, shape=(1,)), index, axis=0)
    if x.ndim != index.ndim:
        raise ShapeError(f"gather: index of shape {index.shape} needs as many dims as the "
                         f"tensor's {x.shape}")
    ax = _norm_axis(axis, x.ndim, "gather")
    crop = []
    for i, (n, k) in enumerate(zip(x.shape, index.shape)):
        if i != ax and n is not None and k is not None and k > n:
            raise ShapeError(f"gather: index of shape {index.shape} is larger than the tensor's "
                             f"{x.shape} on axis {i}")
        crop.append(slice(None) if i == ax or k is None or k == n else slice(0, k))
    if any(s != slice(None) for s in crop):     # PyTorch reads the leading block only
        x = x[tuple(crop)]
    if x.ndim == 0:
        raise ShapeError("gather: of a 0-d tensor")
    return take_along_axis_p(x, index, axis=ax)
