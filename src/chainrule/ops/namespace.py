"""The two namespaces a backward rule is read in.

A VJP rule is written once, against ``F``. In an ordinary ``backward()`` the engine passes
:data:`A`, plain NumPy on arrays, so the backward pass runs at NumPy speed and records
nothing. With ``create_graph=True`` or on a symbolic graph it passes :data:`T`, the same
functions as chainrule ops on tensors, so the gradient is itself a graph: differentiable again,
drawable and compilable. A CuPy backend is a third namespace of the same shape.
"""
from __future__ import annotations

import numpy as np

from . import kernels


def norm_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim if ndim else 0 for a in axis))


def sum_to_axes(shape_from: tuple, shape_to: tuple) -> tuple[int, tuple]:
    """How to reduce a broadcast result back to an operand's shape: (leading dims, kept axes)."""
    lead = len(shape_from) - len(shape_to)
    keep = tuple(lead + i for i, n in enumerate(shape_to)
                 if n == 1 and shape_from[lead + i] != 1)
    return lead, keep


def _sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    lead, keep = sum_to_axes(g.shape, shape)
    if keep:
        g = g.sum(axis=tuple(range(lead)) + keep, keepdims=True)
        return g.reshape(g.shape[lead:]) if lead else g
    return g.sum(axis=tuple(range(lead))) if lead else g


def _pick(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return x[np.arange(len(labels)), labels]


def _count(x: np.ndarray, axis) -> int:
    if axis is None:
        return x.size
    return int(np.prod([x.shape[a] for a in norm_axes(axis, x.ndim)]))


class _Namespace:
    """Attribute bag; see the module docstring."""

    def __init__(self, **fns):
        self.__dict__.update(fns)


# NumPy on arrays: the eager backward.
A = _Namespace(
    exp=np.exp, log=np.log, clip=np.clip, sqrt=np.sqrt, tanh=np.tanh, sign=np.sign, where=np.where,
    sum=lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    expand_dims=np.expand_dims,
    broadcast_like=lambda x, like: np.broadcast_to(x, like.shape),
    sum_to=_sum_to,
    reshape_like=lambda x, like: x.reshape(like.shape),
    transpose=np.transpose,
    mT=lambda x: np.swapaxes(x, -1, -2),
    matmul=np.matmul,
    getitem=lambda x, index: x[index],
    scatter_add=kernels.scatter_add,
    pick=_pick, unpick=kernels.unpick, one_hot=kernels.one_hot,
    softmax=kernels.softmax, softmax_minus_onehot=kernels.softmax_minus_onehot,
    count=_count,
    cast=lambda x, dtype: x.astype(dtype, copy=False),
)

# chainrule ops on tensors: filled in by chainrule.ops once every primitive is registered.
T = _Namespace()
