"""Ops that add, remove, merge, swap or pad axes: squeeze, unsqueeze (expand_dims), flatten,
swapaxes and pad, with PyTorch's semantics (``dim`` is ``axis`` here).

``squeeze``, ``flatten`` and ``pad`` are primitives because their result shape is read from
the input's run-time shape: a ``None`` (free) dimension of a symbolic graph is known only
then, so they cannot be a ``reshape`` to a shape fixed at build time. Their gradients are
``reshape_like`` and ``pad`` again, so they are differentiable to any order.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from . import shape as sh
from .registry import primitive


def _axis_arg(axis, dim, op: str):
    """``axis``, or PyTorch's ``dim`` under its own name (not both)."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give axis or dim, not both")
        return dim
    return axis


def _norm_axis(axis: int, ndim: int, op: str, extra: int = 0) -> int:
    """One axis as a non-negative int; ``extra`` = 1 for ops that insert an axis."""
    n = ndim + extra
    a = int(axis)
    if not -max(n, 1) <= a < max(n, 1):
        raise ShapeError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dims")
    return a % n if n else 0


def _tensor(x) -> Tensor:
    from .registry import lift

    return x if isinstance(x, Tensor) else lift(x, None)


# -- squeeze / unsqueeze -----------------------------------------------------------------------
# the axes are fixed when the op is built, so a free dim never changes the result's rank
squeeze_p = primitive(
    "squeeze", lambda x, *, axis: x.reshape([n for i, n in enumerate(x.shape) if i not in axis]),
    (lambda F, g, out, x, *, axis: F.reshape_like(g, x),),
    lambda a, p, node: f"np.squeeze({a[0]}, axis={p['axis']!r})", "squeeze", fresh=False)


def squeeze(x, axis=None, *, dim=None) -> Tensor:
    """Remove size-1 axes: all of them, or those in ``axis`` (an int or tuple).

    As PyTorch, an axis whose size is not 1 is left alone (NumPy would raise). A free
    (``None``) dimension of a placeholder is never squeezed by ``axis=None``.

    >>> import chainrule as cr
    >>> cr.squeeze(cr.zeros(2, 1, 3)).shape
    (2, 3)
    >>> cr.squeeze(cr.zeros(2, 1, 3), axis=0).shape
    (2, 1, 3)
    """
    x = _tensor(x)
    axis = _axis_arg(axis, dim, "squeeze")
    shape = x.shape
    if axis is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    else:
        picked = (axis,) if isinstance(axis, int) else tuple(axis)
        normed = sorted({_norm_axis(a, len(shape), "squeeze") for a in picked}) if shape else []
        for a in normed:
            if shape[a] is None:
                raise ShapeError(f"squeeze: axis {a} is a free (None) dimension; its size is "
                                 f"known only at run time")
        axes = tuple(a for a in normed if shape[a] == 1)
    if not axes:
        return x
    return squeeze_p(x, axis=axes)


def unsqueeze(x, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Insert a size-1 axis at position ``axis`` (negative counts from the end of the
    result), as ``torch.unsqueeze`` and ``np.expand_dims``.

    >>> import chainrule as cr
    >>> cr.unsqueeze(cr.zeros(2, 3), -1).shape
    (2, 3, 1)
    """
    axis = _axis_arg(axis, dim, "unsqueeze")
    if axis is None:
        raise TypeError("unsqueeze: missing the axis to insert")
    x = _tensor(x)
    if isinstance(axis, (tuple, list)):      # NumPy's expand_dims takes several
        out = x
        for a in sorted(_norm_axis(a, x.ndim + len(axis) - 1, "unsqueeze", 1) for a in axis):
            out = sh.expand_dims(out, axis=a)
        return out
    return sh.expand_dims(x, axis=_norm_axis(axis, x.ndim, "unsqueeze", 1))


def expand_dims(x, axis) -> Tensor:
    """NumPy's name for :func:`unsqueeze` (``axis`` may be a tuple).

    >>> import chainrule as cr
    >>> cr.expand_dims(cr.zeros(3), (0, 2)).shape
    (1, 3, 1)
    """
    return unsqueeze(x, axis)


# -- flatten -----------------------------------------------------------------------------------
def _flatten(x, *, start: int, end: int):
    shape = x.shape
    merged = math.prod(shape[start:end + 1])
    return x.reshape(shape[:start] + (merged,) + shape[end + 1:])


def _flatten_code(a, p, node) -> str:
    x, shape = a[0], node.inputs[0].shape
    start, end = p["start"], p["end"]
    inner = shape[start:end + 1]
    if None not in shape:
        return f"{x}.reshape({_flatten_shape(shape, start, end)!r})"
    if None not in inner:
        merged = str(math.prod(inner))
    elif start == 0 and end == len(shape) - 1:
        merged = "-1"
    else:               # -1 cannot be solved for an empty array: the product, at run time
        merged = f"int(np.prod({x}.shape[{start}:{end + 1}]))"
    parts = [str(n) if n is not None else f"{x}.shape[{i}]" for i, n in enumerate(shape[:start])]
    parts.append(merged)
    parts += [str(n) if n is not None else f"{x}.shape[{i}]"
              for i, n in enumerate(shape[end + 1:], end + 1)]
    return f"{x}.reshape(({', '.join(parts)},))" if len(parts) == 1 else \
        f"{x}.reshape(({', '.join(parts)}))"


def _flatten_shape(shape, start, end) -> tuple:
    return tuple(shape[:start]) + (math.prod(shape[start:end + 1]),) + tuple(shape[end + 1:])


flatten_p = primitive("flatten", _flatten, (lambda F, g, out, x, **p: F.reshape_like(g, x),),
                      _flatten_code, "flatten", fresh=False)


def flatten(x, start_axis: int = 0, end_axis: int = -1, *, start_dim: int | None = None,
            end_dim: int | None = None) -> Tensor:
    """Merge axes ``start_axis..end_axis`` (inclusive) into one, as ``torch.flatten``
    (``start_dim``/``end_dim`` are accepted too). A 0-d tensor becomes shape ``(1,)``.

    >>> import chainrule as cr
    >>> cr.flatten(cr.zeros(2, 3, 4), 1).shape
    (2, 12)
    """
    start = start_axis if start_dim is None else start_dim
    end = end_axis if end_dim is None else end_dim
    x = _tensor(x)
    if x.ndim == 0:
        _norm_axis(start, 0, "flatten")
        _norm_axis(end, 0, "flatten")
        return sh.reshape(x, shape=(1,))
    s, e = _norm_axis(start, x.ndim, "flatten"), _norm_axis(end, x.ndim, "flatten")
    if s > e:
        raise ShapeError(f"flatten: start axis {start} comes after end axis {end} for a tensor "
                         f"with {x.ndim} dims")
    if s == e:
        return x
    return flatten_p(x, start=s, end=e)


# -- swapaxes ----------------------------------------------------------------------------------
def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes, as ``np.swapaxes`` and ``torch.swapaxes``/``transpose(x, d0, d1)``.

    A composition: a transpose by the permutation that swaps them (which only needs the rank,
    known even for placeholders).

    >>> import chainrule as cr
    >>> cr.swapaxes(cr.zeros(2, 3, 4), 0, -1).shape
    (4, 3, 2)
    """
    x = _tensor(x)
    a, b = _norm_axis(axis1, x.ndim, "swapaxes"), _norm_axis(axis2, x.ndim, "swapaxes")
    if a == b or x.ndim < 2:
        return x
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return sh.transpose(x, axes=tuple(perm))


# -- pad ---------------------------------------------------------------------------------------
def _pad(x, *, widths: tuple, value=0.0):
    if any(lo < 0 or hi < 0 for lo, hi in widths):        # negative widths crop, as PyTorch
        x = x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(widths, x.shape))]
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
    if any(lo or hi for lo, hi in grow):
        x = np.pad(x, grow, constant_values=value)
    return x


def _pad_code(a, p, node) -> str:
    widths, value = p["widths"], p.get("value", 0.0)
    x = a[0]
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        parts = []
        for lo, hi in widths:
            start, stop = max(-lo, 0), max(-hi, 0)
            parts.append(f"{start or ''}:{-stop if stop else ''}")
        x = f"{x}[{', '.join(parts)}]"
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
    if not any(lo or hi for lo, hi in grow):
        return x
    fill = "" if value == 0 else f", constant_values={value!r}"
    return f"np.pad({x}, {grow!r}{fill})"


# d pad = the same widths cropped away (pad by the negated widths), and the other way round
pad_p = primitive(
    "pad", _pad,
    (lambda F, g, out, x, *, widths, value=0.0:
        F.pad(g, tuple((-lo, -hi) for lo, hi in widths)),),
    _pad_code, "pad", fresh=False)


def pad(x, pad: tuple, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with ``value``, as ``torch.nn.functional.pad`` in constant mode: ``pad`` lists
    (before, after) pairs starting from the last axis, ``(left, right, top, bottom, ...)``;
    negative widths crop.

    >>> import chainrule as cr
    >>> cr.pad(cr.ones(2, 3), (1, 0, 0, 2)).shape
    (4, 4)
    """
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    x = _tensor(x)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: a pad of length {len(pad)} needs an even length of at most "
                         f"2 * {x.ndim} for a tensor of shape {x.shape}")
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    widths = ((0, 0),) * (x.ndim - len(pairs)) + tuple(reversed(pairs))
    for (lo, hi), n in zip(widths, x.shape):
        if n is not None and n + lo + hi < 0:
            raise ShapeError(f"pad: widths {pad} crop more than the shape {x.shape} holds")
    if not any(lo or hi for lo, hi in widths):
        return x
    return pad_p(x, widths=widths, value=float(value))
