"""The op table: one row per public op and operator of chainrule.

Each row says how to call the op on chainrule tensors, on NumPy arrays (the forward reference)
and on torch tensors, how many differentiable inputs it takes, which values it may be fed
(``domain``: away from poles, kinks and ties, which have rows of their own in the textbook and
engine tests), which shapes (a hypothesis strategy drawing the input shapes and the op's static
arguments), its tolerance, and whether its gradient is claimed differentiable again.

``tests/test_ops.py`` runs every check over every row; adding an op means adding a row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr

MAX_SIDE = 4  # every dimension stays small so finite differences are cheap
MAX_DIMS = 3


# -- values ------------------------------------------------------------------------------------
def _values(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Values for one input, drawn where the op is smooth (see the module docstring)."""
    n = int(np.prod(shape, dtype=np.int64))
    if domain == "real":
        v = rng.uniform(-2.0, 2.0, n)
    elif domain == "with_zeros":              # smooth ops that must stay finite at exact 0
        v = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(-2.0, 2.0, n))
    elif domain == "positive":                # log, sqrt, pow base, denominators' sign
        v = rng.uniform(0.5, 2.0, n)
    elif domain == "unit":                    # probabilities, away from 0 and 1
        v = rng.uniform(0.1, 0.9, n)
    elif domain == "nonzero":                 # abs, relu, denominators: away from the kink at 0
        v = rng.uniform(0.3, 2.0, n) * rng.choice([-1.0, 1.0], n)
    elif domain == "odd":                     # odd multiples of 0.1: never equal to an "even"
        v = (2 * rng.integers(-10, 10, n) + 1) * 0.1
    elif domain == "even":                    # ... so maximum(odd, even) has no ties
        v = 2 * rng.integers(-10, 11, n) * 0.1
    elif domain == "distinct":                # all elements differ by >= 0.3: max/min no ties
        v = rng.permutation(n) * 0.3 - 0.15 * n + rng.uniform(0, 0.01)
    elif domain == "grid":                    # multiples of 0.3: s_j - s_y + 1 is never 0
        v = rng.integers(-6, 7, n) * 0.3
    elif domain == "clip":                    # away from the clip bounds -0.5 and 0.5
        v = np.where(rng.random(n) < 0.5, rng.uniform(-0.4, 0.4, n),
                     rng.uniform(0.6, 2.0, n) * rng.choice([-1.0, 1.0], n))
    elif domain in ("even_low", "even_high"):   # clip bounds: lo < hi, never equal to "odd"
        v = 2 * rng.integers(-10, -1, n) * 0.1 if domain == "even_low" else \
            2 * rng.integers(1, 11, n) * 0.1
    else:
        raise ValueError(domain)
    return np.asarray(v, dtype=np.float64).reshape(shape)


@dataclass(frozen=True)
class Op:
    name: str
    cr: Callable                 # (*tensors, **kw) -> Tensor
    np: Callable                 # (*arrays, **kw) -> ndarray: the forward reference
    torch: Optional[Callable]    # (*torch tensors, **kw) -> torch tensor; None: no equivalent
    arity: int                   # differentiable inputs
    shapes: st.SearchStrategy    # -> (tuple of input shapes, dict of static arguments)
    domain: tuple                # one domain per input
    atol: float = 1e-5
    rtol: float = 1e-3
    second_order: bool = False   # gradient claimed differentiable again (create_graph)
    symbolic: bool = True        # runs on placeholders (labels are fed as constants)
    # known library bugs: check name ("*" for every check) -> reason; such checks are
    # strict xfails, so the fix turns them into failures until the entry is removed
    bugs: dict = field(default_factory=dict)

    def inputs(self, shapes: tuple, seed: int, dtype=np.float64) -> list:
        rng = np.random.default_rng(seed)
        return [_values(d, s, rng).astype(dtype) for d, s in zip(self.domain, shapes)]

    def __repr__(self) -> str:
        return self.name


def rows(check: str, ops=None) -> list:
    """``ops`` as pytest params for ``check``, known bugs marked as strict xfails."""
    import pytest

    out = []
    for op in OPS if ops is None else ops:
        reason = op.bugs.get(check) or op.bugs.get("*")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(op, id=op.name, marks=marks))
    return out


# -- shape strategies --------------------------------------------------------------------------
def _no_kw(shapes):
    return st.just((tuple(shapes), {}))


unary = hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE).map(
    lambda s: ((s,), {}))


def broadcast(n: int) -> st.SearchStrategy:
    """``n`` mutually broadcastable shapes, 0-d and size-1 axes included."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE
    ).map(lambda b: (tuple(b.input_shapes), {}))


@st.composite
def reduction(draw, min_dims=0):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=MAX_DIMS, min_side=1,
                                  max_side=MAX_SIDE))
    nd = len(shape)
    choices = [st.none()]
    if nd:
        choices += [st.integers(-nd, nd - 1),
                    hnp.valid_tuple_axes(nd, min_size=1)]
    axis = draw(st.one_of(*choices))
    keepdims = draw(st.booleans())
    return (shape,), {"axis": axis, "keepdims": keepdims}


@st.composite
def matmul_shapes(draw):
    kind = draw(st.sampled_from(["vv", "vm", "mv", "mm", "batched", "batched_v"]))
    m, k, n = (draw(st.integers(1, MAX_SIDE)) for _ in range(3))
    if kind == "vv":
        return ((k,), (k,)), {}
    if kind == "vm":
        return ((k,), (k, n)), {}
    if kind == "mv":
        return ((m, k), (k,)), {}
    if kind == "mm":
        return ((m, k), (k, n)), {}
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                   min_side=1, max_side=3))
    bx, by = batch.input_shapes
    if kind == "batched_v":                   # batched matrix @ vector
        return ((*bx, m, k), (k,)), {}
    if not bx and not by:
        bx = (2,)
    return ((*bx, m, k), (*by, k, n)), {}


@st.composite
def reshape_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    size = int(np.prod(shape, dtype=np.int64))
    targets = [(size,), (-1,), (1, size), shape[::-1], (size, 1, 1), ()]
    targets = [t for t in targets if t != () or size == 1]
    if size % 2 == 0:
        targets += [(2, -1), (size // 2, 1, 2)]
    return (shape,), {"newshape": draw(st.sampled_from(targets))}


@st.composite
def transpose_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    axes = draw(st.one_of(st.none(), st.permutations(range(len(shape))).map(tuple)))
    return (shape,), {"axes": axes}


@st.composite
def basic_index(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return (shape,), {"index": index}


@st.composite
def integer_index(draw):
    """Integer-array indices, always with a repeated index (gradients must add up)."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    kind = draw(st.sampled_from(["first", "second", "pair", "2d"]))
    if kind == "second" and len(shape) < 2 or kind == "pair" and len(shape) < 2:
        kind = "first"

    def idx(n, size):
        # the first entry is repeated: gradients of repeated indices must add up
        vals = draw(st.lists(st.integers(-n, n - 1), min_size=size - 1, max_size=size - 1))
        return np.array([vals[0]] + vals, np.int64)

    if kind == "first":
        i = idx(shape[0], draw(st.integers(2, 4)))
        return (shape,), {"index": i}
    if kind == "second":
        i = idx(shape[1], draw(st.integers(2, 4)))
        return (shape,), {"index": (slice(None), i)}
    if kind == "pair":
        size = draw(st.integers(2, 4))
        return (shape,), {"index": (idx(shape[0], size), idx(shape[1], size))}
    i = idx(shape[0], 4).reshape(2, 2)
    return (shape,), {"index": i}


@st.composite
def concat_shapes(draw):
    base = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    axis = draw(st.integers(-len(base), len(base) - 1))
    shapes = []
    for _ in range(3):
        s = list(base)
        s[axis] = draw(st.integers(1, 3))
        shapes.append(tuple(s))
    return tuple(shapes), {"axis": axis}


@st.composite
def stack_shapes(draw):
    base = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    axis = draw(st.integers(-len(base) - 1, len(base)))
    return (base, base, base), {"axis": axis}


@st.composite
def where_shapes(draw):
    b = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=MAX_DIMS,
                                               min_side=1, max_side=MAX_SIDE))
    c, x, y = b.input_shapes
    cond = draw(hnp.arrays(np.bool_, c))
    return (x, y), {"cond": cond}


@st.composite
def clip_shapes(draw):
    (shape,), _ = draw(unary)
    lo, hi = draw(st.sampled_from([(-0.5, 0.5), (-0.5, None), (None, 0.5)]))
    return (shape,), {"lo": lo, "hi": hi}


@st.composite
def axis_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    return (shape,), {"axis": draw(st.integers(-len(shape), len(shape) - 1))}


reductions = st.sampled_from(["mean", "sum", "none"])


@st.composite
def same_shapes(draw):
    (shape,), _ = draw(unary)
    return (shape, shape), {"reduction": draw(reductions)}


@st.composite
def labelled(draw):
    n, c = draw(st.integers(1, MAX_SIDE)), draw(st.integers(2, MAX_SIDE))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), np.int64)
    return ((n, c),), {"labels": labels, "reduction": draw(reductions)}


# -- NumPy references --------------------------------------------------------------------------
def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_reduce(per, reduction):
    return {"mean": np.mean, "sum": np.sum}.get(reduction, lambda v: v)(per)


def _np_ce(x, *, labels, reduction):
    logp = np.log(_np_softmax(x, axis=1))
    return _np_reduce(-logp[np.arange(len(labels)), labels], reduction)


def _np_hinge(s, *, labels, reduction, margin=1.0):
    n = np.arange(len(labels))
    m = np.maximum(0.0, s - s[n, labels][:, None] + margin)
    m[n, labels] = 0.0
    return _np_reduce(m.sum(axis=1), reduction)


def _np_bce(p, t, *, reduction):
    per = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
    return _np_reduce(per, reduction)


# -- torch equivalents (torch is imported by the tests, never here) ----------------------------
def _t():
    import torch

    return torch


def _t_reduce(per, reduction):
    return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per


def _t_getitem(x, *, index):
    # torch has no negative-step slices: index through an array of flat positions instead
    pos = np.arange(max(x.numel(), 1)).reshape(tuple(x.shape))[index]
    return x.reshape(-1)[_t().as_tensor(np.array(pos, copy=True))]


def _t_sum(x, *, axis, keepdims, fn="sum"):
    if x.dim() == 0:
        return getattr(_t(), fn)(x)
    dim = tuple(range(x.dim())) if axis is None else axis
    return getattr(_t(), fn)(x, dim=dim, keepdim=keepdims)


def _t_matmul(x, y):
    return _t().matmul(x, y)


def _t_ce(x, *, labels, reduction):
    return _t().nn.functional.cross_entropy(x, _t().as_tensor(labels), reduction=reduction)


def _t_hinge(s, *, labels, reduction, margin=1.0):
    torch = _t()
    lab = torch.as_tensor(labels)
    n = torch.arange(len(labels))
    m = torch.clamp(s - s[n, lab][:, None] + margin, min=0.0)
    mask = torch.ones_like(s)
    mask[n, lab] = 0.0
    return _t_reduce((m * mask).sum(dim=1), reduction)


def _t_bce(p, t, *, reduction):
    torch = _t()
    per = -(t * torch.clamp(torch.log(p), min=-100) + (1 - t) * torch.clamp(torch.log(1 - p),
                                                                           min=-100))
    return _t_reduce(per, reduction)


def _t_where(x, y, *, cond):
    torch = _t()
    return torch.where(torch.as_tensor(cond), x, y)


def _t_clip(x, *, lo, hi):
    return _t().clamp(x, min=lo, max=hi)


def _t_reshape(x, *, newshape):
    return x.reshape(newshape)


def _t_transpose(x, *, axes):
    return x.permute(tuple(axes) if axes is not None else tuple(reversed(range(x.dim()))))


def _np_transpose(x, *, axes):
    return np.transpose(x, axes)


def _cr_transpose(x, *, axes):
    return cr.transpose(x, axes) if axes is not None else x.T


# -- PyTorch-habit ops (issue 9): shapes, NumPy references and torch equivalents ---------------
@st.composite
def reduction_with(draw, extra: dict, min_dims=0):
    """``reduction()`` plus one drawn value for each static argument in ``extra``."""
    (shape,), kw = draw(reduction(min_dims=min_dims))
    for k, choices in extra.items():
        kw[k] = draw(st.sampled_from(choices))
    return (shape,), kw


@st.composite
def one_axis_or_none(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    return (shape,), {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def squeeze_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=3))
    nd = len(shape)
    choices = [st.none()]
    if nd:
        choices += [st.integers(-nd, nd - 1), hnp.valid_tuple_axes(nd, min_size=1)]
    return (shape,), {"axis": draw(st.one_of(*choices))}


@st.composite
def unsqueeze_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    return (shape,), {"axis": draw(st.integers(-len(shape) - 1, len(shape)))}


@st.composite
def expand_dims_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=MAX_SIDE))
    axes = draw(hnp.valid_tuple_axes(len(shape) + 2, min_size=2, max_size=2))
    return (shape,), {"axis": axes}


@st.composite
def flatten_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    nd = max(len(shape), 1)
    a, b = sorted(draw(st.lists(st.integers(0, nd - 1), min_size=2, max_size=2)))
    # either end may be written from the right
    a = a - nd if draw(st.booleans()) else a
    b = b - nd if draw(st.booleans()) else b
    return (shape,), {"start_axis": a, "end_axis": b}


@st.composite
def swapaxes_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    nd = len(shape)
    return (shape,), {"axis1": draw(st.integers(-nd, nd - 1)),
                      "axis2": draw(st.integers(-nd, nd - 1))}


@st.composite
def pad_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    k = draw(st.integers(1, len(shape)))
    pad = []
    for n in reversed(shape[-k:]):         # last axis first, as PyTorch
        lo = draw(st.integers(-(n // 2), 2))
        hi = draw(st.integers(-(n - max(-lo, 0) - 1) // 2 if n > 1 else 0, 2))
        pad += [lo, hi]
    return (shape,), {"pad": tuple(pad), "value": draw(st.sampled_from([0.0, -1.5]))}


@st.composite
def take_shapes(draw, torch_gather: bool = False):
    """A shape, an axis and integer indices along it (the first one repeated, so gradients
    must add up); for gather, indices no larger than the tensor on the other axes."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE))
    nd = len(shape)
    axis = draw(st.integers(-nd, nd - 1))
    ishape = [draw(st.integers(1, n)) if torch_gather else draw(st.sampled_from([1, n]))
              for n in shape]
    ishape[axis] = draw(st.integers(2, 5))
    n = shape[axis]
    flat = draw(st.lists(st.integers(0, n - 1), min_size=int(np.prod(ishape)),
                         max_size=int(np.prod(ishape))))
    idx = np.array(flat, np.int64).reshape(ishape)
    first = [slice(None)] * nd
    first[axis] = slice(0, 2)
    idx[tuple(first)] = np.take(idx, [0], axis=axis)   # a repeated index on every line
    return (shape,), {"axis": axis, "index": idx}


EINSUM_ONE = [("ij->ji", [(2, 3)]), ("ij->", [(3, 4)]), ("ii->", [(3, 3)]),
              ("ii->i", [(4, 4)]), ("ijk->j", [(2, 3, 4)]), ("ij", [(2, 3)]),
              ("...i->...", [(2, 3, 4)]), ("i->", [(0,)])]
EINSUM_TWO = [("ij,jk->ik", [(2, 3), (3, 4)]), ("i,i->", [(4,), (4,)]),
              ("i,j->ij", [(2,), (3,)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
              ("...i,...i->...", [(2, 3, 4), (4,)]), ("ij,ij->ij", [(1, 3), (4, 3)]),
              ("ij,jk", [(2, 3), (3, 1)]), ("ii,ij->j", [(3, 3), (3, 2)]),
              ("ijk,k->ij", [(2, 3, 4), (4,)])]
EINSUM_THREE = [("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("i,i,i->", [(3,), (3,), (3,)]),
                ("bi,bj,ij->b", [(2, 3), (2, 4), (3, 4)])]


def einsum_cases(cases):
    return st.sampled_from(cases).map(lambda c: (tuple(c[1]), {"subscripts": c[0]}))


@st.composite
def clip_tensor_shapes(draw):
    b = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=MAX_DIMS,
                                               min_side=1, max_side=MAX_SIDE))
    return tuple(b.input_shapes), {}


def _spread(case) -> bool:
    """More than one element on every reduced axis: a variance of one value (0 with
    ``correction=0``, 0/0 with 1) has a square-root kink or no value; tests of its own."""
    (shape,), kw = case
    axis = kw["axis"]
    axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return len(shape) > 0 and all(shape[a] > 1 for a in axes)


def _np_squeeze(x, *, axis):
    if axis is None:
        return np.squeeze(x)
    axes = (axis,) if isinstance(axis, int) else axis
    return np.squeeze(x, tuple(a for a in axes if x.shape[a] == 1))


def _np_flatten(x, *, start_axis, end_axis):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_axis % x.ndim, end_axis % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.size else \
        x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def _np_pad(x, *, pad, value):
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + list(reversed(pairs))
    x = x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(widths, x.shape))]
    return np.pad(x, [(max(lo, 0), max(hi, 0)) for lo, hi in widths], constant_values=value)


def _np_var(x, *, axis, keepdims, correction):
    with np.errstate(all="ignore"):
        return np.var(x, axis=axis, keepdims=keepdims, ddof=correction)


def _np_logsumexp(x, *, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True) if x.size else 0.0
    return np.log(np.sum(np.exp(x - m), axis=axis, keepdims=keepdims)) + (
        m if keepdims or not x.size else np.squeeze(m, axis=axis))


def _np_norm(x, *, axis, keepdims, ord):
    a = np.abs(x)
    if ord is None:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return np.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return np.sum(a != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    return np.sum(a ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _np_gelu(x, *, approximate):
    import math

    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2)))


def _np_arg_pick(fn):
    def pick(x, *, axis, keepdims):
        if axis is None:
            flat = x.reshape(-1)
            return flat[getattr(np, fn)(flat)]
        i = getattr(np, fn)(x, axis=axis, keepdims=True)
        got = np.take_along_axis(x, i, axis)
        return got if keepdims else np.squeeze(got, axis)
    return pick


def _cr_arg_pick(fn):
    # the index through take_along_axis: the values at argmax are the max, so the row checks
    # argmax's indices by value, and every check of the table runs through it
    def pick(x, *, axis, keepdims):
        if axis is None:
            flat = x.reshape(-1)
            return cr.take_along_axis(flat, cr.unsqueeze(getattr(cr, fn)(flat), 0), 0)[0]
        i = getattr(cr, fn)(x, axis=axis, keepdims=True)
        got = cr.take_along_axis(x, i, axis)
        return got if keepdims else cr.squeeze(got, axis)
    return pick


def _t_arg_pick(fn):
    def pick(x, *, axis, keepdims):
        torch = _t()
        if axis is None:
            flat = x.reshape(-1)
            return flat[getattr(torch, fn)(flat)]
        i = getattr(torch, fn)(x, dim=axis, keepdim=True)
        got = torch.take_along_dim(x, i, dim=axis)
        return got if keepdims else got.squeeze(axis)
    return pick


def _t_dims(x, axis):
    return tuple(range(x.dim())) if axis is None else axis


def _t_var(x, *, axis, keepdims, correction, fn="var"):
    return getattr(_t(), fn)(x, dim=None if axis is None else axis, correction=correction,
                             keepdim=keepdims)


def _t_logsumexp(x, *, axis, keepdims):
    return _t().logsumexp(x, dim=_t_dims(x, axis), keepdim=keepdims)


def _t_norm(x, *, axis, keepdims, ord):
    return _t().linalg.vector_norm(x, ord=2 if ord is None else ord, dim=axis, keepdim=keepdims)


def _t_squeeze(x, *, axis):
    return x.squeeze() if axis is None else x.squeeze(axis)


def _t_expand_dims(x, *, axis):
    nd = x.dim() + len(axis)
    for a in sorted(a % nd for a in axis):
        x = x.unsqueeze(a)
    return x


def _t_pad(x, *, pad, value):
    return _t().nn.functional.pad(x, pad, value=value)


def _t_take(x, *, axis, index):
    torch = _t()
    idx = torch.as_tensor(index)
    shape = torch.broadcast_shapes(
        tuple(1 if i == axis % x.dim() else n for i, n in enumerate(x.shape)),
        tuple(1 if i == axis % x.dim() else n for i, n in enumerate(idx.shape)))
    xs = [n if i == axis % x.dim() else shape[i] for i, n in enumerate(x.shape)]
    js = [n if i == axis % x.dim() else shape[i] for i, n in enumerate(idx.shape)]
    return torch.gather(x.expand(*xs), axis, idx.expand(*js))


def _t_gather(x, *, axis, index):
    return _t().gather(x, axis, _t().as_tensor(index))


def _np_gather(x, *, axis, index):
    crop = tuple(slice(None) if i == axis % x.ndim else slice(0, k)
                 for i, k in enumerate(index.shape))
    return np.take_along_axis(x[crop], index, axis)


# -- the rows ----------------------------------------------------------------------------------
R, P, U, NZ = "real", "positive", "unit", "nonzero"
# eager backward of max/min calls F.cast, which the NumPy namespace A lacks
SMOOTH = dict(second_order=True)

OPS: list[Op] = [
    # operators
    Op("add", lambda x, y: x + y, np.add, lambda x, y: x + y, 2, broadcast(2), (R, R), **SMOOTH),
    Op("sub", lambda x, y: x - y, np.subtract, lambda x, y: x - y, 2, broadcast(2), (R, R),
       **SMOOTH),
    Op("mul", lambda x, y: x * y, np.multiply, lambda x, y: x * y, 2, broadcast(2), (R, R),
       **SMOOTH),
    Op("div", lambda x, y: x / y, np.divide, lambda x, y: x / y, 2, broadcast(2), (R, NZ),
       **SMOOTH),
    Op("pow", lambda x, y: x ** y, np.power, lambda x, y: x ** y, 2, broadcast(2), (P, R),
       **SMOOTH),
    Op("neg", lambda x: -x, np.negative, lambda x: -x, 1, unary, (R,), **SMOOTH),
    Op("pos", lambda x: +x, lambda x: +x, lambda x: +x, 1, unary, (R,)),
    Op("abs_operator", lambda x: abs(x), np.abs, lambda x: abs(x), 1, unary, (NZ,)),
    Op("square", lambda x: x ** 2, np.square, lambda x: x ** 2, 1, unary, (R,), **SMOOTH),
    Op("cube", lambda x: x ** 3, lambda x: x ** 3, lambda x: x ** 3, 1, unary, (R,), **SMOOTH),
    # constant exponents 0 and 1 at exact zeros: 0 * 0^-1 must not make a NaN gradient
    Op("pow_zero", lambda x: x ** 0, lambda x: x ** 0, lambda x: x ** 0, 1, unary,
       ("with_zeros",), **SMOOTH),
    Op("pow_one", lambda x: x ** 1, lambda x: x ** 1, lambda x: x ** 1, 1, unary,
       ("with_zeros",), **SMOOTH),
    Op("pow_half", lambda x: x ** 0.5, np.sqrt, lambda x: x ** 0.5, 1, unary, (P,), **SMOOTH),
    Op("pow_minus_one", lambda x: x ** -1, lambda x: 1 / x, lambda x: x ** -1, 1, unary, (NZ,),
       **SMOOTH),
    Op("rpow_scalar", lambda x: 2.0 ** x, lambda x: 2.0 ** x, lambda x: 2.0 ** x, 1, unary,
       (R,), **SMOOTH),
    Op("radd_scalar", lambda x: 1.5 + x, lambda x: 1.5 + x, lambda x: 1.5 + x, 1, unary, (R,)),
    Op("rsub_scalar", lambda x: 1.5 - x, lambda x: 1.5 - x, lambda x: 1.5 - x, 1, unary, (R,)),
    Op("rmul_scalar", lambda x: 1.5 * x, lambda x: 1.5 * x, lambda x: 1.5 * x, 1, unary, (R,)),
    Op("rdiv_scalar", lambda x: 1.5 / x, lambda x: 1.5 / x, lambda x: 1.5 / x, 1, unary, (NZ,),
       **SMOOTH),
    Op("matmul", lambda x, y: x @ y, np.matmul, _t_matmul, 2, matmul_shapes(), (R, R), **SMOOTH),
    Op("getitem_basic", lambda x, *, index: x[index], lambda x, *, index: x[index], _t_getitem,
       1, basic_index(), (R,)),
    Op("getitem_int_array", lambda x, *, index: x[index], lambda x, *, index: x[index],
       _t_getitem, 1, integer_index(), (R,), symbolic=True),
    # elementwise functions
    Op("exp", cr.exp, np.exp, lambda x: x.exp(), 1, unary, (R,), **SMOOTH),
    Op("log", cr.log, np.log, lambda x: x.log(), 1, unary, (P,), **SMOOTH),
    Op("sqrt", cr.sqrt, np.sqrt, lambda x: x.sqrt(), 1, unary, (P,), **SMOOTH),
    Op("tanh", cr.tanh, np.tanh, lambda x: x.tanh(), 1, unary, (R,), **SMOOTH),
    Op("sigmoid", cr.sigmoid, _np_sigmoid, lambda x: x.sigmoid(), 1, unary, (R,), **SMOOTH),
    Op("relu", cr.relu, lambda x: np.maximum(x, 0), lambda x: x.relu(), 1, unary, (NZ,)),
    Op("abs", cr.abs, np.abs, lambda x: x.abs(), 1, unary, (NZ,)),
    Op("maximum", cr.maximum, np.maximum, lambda x, y: _t().maximum(x, y), 2, broadcast(2),
       ("odd", "even")),
    Op("minimum", cr.minimum, np.minimum, lambda x, y: _t().minimum(x, y), 2, broadcast(2),
       ("odd", "even")),
    Op("where", lambda x, y, *, cond: cr.where(cond, x, y),
       lambda x, y, *, cond: np.where(cond, x, y), _t_where, 2, where_shapes(), (R, R)),
    Op("clip", lambda x, *, lo, hi: cr.clip(x, lo, hi), lambda x, *, lo, hi: np.clip(x, lo, hi),
       _t_clip, 1, clip_shapes(), ("clip",)),
    # reductions
    Op("sum", lambda x, **kw: cr.sum(x, **kw), lambda x, **kw: np.sum(x, **kw),
       lambda x, **kw: _t_sum(x, **kw), 1, reduction(), (R,), **SMOOTH),
    Op("mean", lambda x, **kw: cr.mean(x, **kw), lambda x, **kw: np.mean(x, **kw),
       lambda x, **kw: _t_sum(x, fn="mean", **kw), 1, reduction(), (R,), **SMOOTH),
    Op("max", lambda x, **kw: cr.max(x, **kw), lambda x, **kw: np.max(x, **kw),
       lambda x, **kw: _t_sum(x, fn="amax", **kw), 1, reduction(), ("distinct",)),
    Op("min", lambda x, **kw: cr.min(x, **kw), lambda x, **kw: np.min(x, **kw),
       lambda x, **kw: _t_sum(x, fn="amin", **kw), 1, reduction(), ("distinct",)),
    Op("sum_method", lambda x, **kw: x.sum(**kw), lambda x, **kw: np.sum(x, **kw),
       lambda x, **kw: _t_sum(x, **kw), 1, reduction(), (R,)),
    Op("mean_method", lambda x, **kw: x.mean(**kw), lambda x, **kw: np.mean(x, **kw),
       lambda x, **kw: _t_sum(x, fn="mean", **kw), 1, reduction(), (R,)),
    # shape
    Op("reshape", lambda x, *, newshape: cr.reshape(x, newshape),
       lambda x, *, newshape: np.reshape(x, newshape), _t_reshape, 1, reshape_shapes(), (R,)),
    Op("reshape_method", lambda x, *, newshape: x.reshape(*newshape),
       lambda x, *, newshape: np.reshape(x, newshape), _t_reshape, 1, reshape_shapes(), (R,)),
    Op("transpose", _cr_transpose, _np_transpose, _t_transpose, 1, transpose_shapes(), (R,)),
    Op("concatenate", lambda *xs, axis: cr.concatenate(xs, axis=axis),
       lambda *xs, axis: np.concatenate(xs, axis=axis),
       lambda *xs, axis: _t().cat(xs, dim=axis), 3, concat_shapes(), (R, R, R)),
    Op("stack", lambda *xs, axis: cr.stack(xs, axis=axis),
       lambda *xs, axis: np.stack(xs, axis=axis),
       lambda *xs, axis: _t().stack(xs, dim=axis), 3, stack_shapes(), (R, R, R)),
    # normalisations
    Op("softmax", lambda x, *, axis: cr.softmax(x, axis=axis), _np_softmax,
       lambda x, *, axis: x.softmax(dim=axis), 1, axis_shapes(), (R,), **SMOOTH),
    Op("log_softmax", lambda x, *, axis: cr.log_softmax(x, axis=axis),
       lambda x, *, axis: np.log(_np_softmax(x, axis)),
       lambda x, *, axis: x.log_softmax(dim=axis), 1, axis_shapes(), (R,), **SMOOTH),
    # losses
    Op("mse_loss", lambda x, y, *, reduction: cr.mse_loss(x, y, reduction=reduction),
       lambda x, y, *, reduction: _np_reduce((x - y) ** 2, reduction),
       lambda x, y, *, reduction: _t().nn.functional.mse_loss(x, y, reduction=reduction),
       2, same_shapes(), (R, R), **SMOOTH),
    Op("binary_cross_entropy",
       lambda p, t, *, reduction: cr.binary_cross_entropy(p, t, reduction=reduction),
       _np_bce, _t_bce, 2, same_shapes(), (U, U)),
    Op("cross_entropy", lambda x, *, labels, reduction: cr.cross_entropy(x, labels, reduction),
       _np_ce, _t_ce, 1, labelled(), (R,), second_order=True),
    Op("hinge_loss",
       lambda x, *, labels, reduction: cr.hinge_loss(x, labels, reduction=reduction),
       _np_hinge, _t_hinge, 1, labelled(), ("grid",)),
    # PyTorch habits (issue 9): elementwise math
    Op("sin", cr.sin, np.sin, lambda x: x.sin(), 1, unary, (R,), **SMOOTH),
    Op("cos", cr.cos, np.cos, lambda x: x.cos(), 1, unary, (R,), **SMOOTH),
    Op("log1p", cr.log1p, np.log1p, lambda x: x.log1p(), 1, unary, (P,), **SMOOTH),
    Op("expm1", cr.expm1, np.expm1, lambda x: x.expm1(), 1, unary, (R,), **SMOOTH),
    # sign carries no gradient (PyTorch's is zero): times x it gives |x|, whose gradient is
    # the sign again, so every check of the table reads sign's values
    Op("sign", lambda x: cr.sign(x) * x, lambda x: np.sign(x) * x,
       lambda x: _t().sign(x) * x, 1, unary, (NZ,), **SMOOTH),
    Op("gelu", lambda x, *, approximate: cr.gelu(x, approximate=approximate), _np_gelu,
       lambda x, *, approximate: _t().nn.functional.gelu(x, approximate=approximate), 1,
       unary.map(lambda c: (c[0], {})).flatmap(
           lambda c: st.sampled_from(["none", "tanh"]).map(
               lambda a: (c[0], {"approximate": a}))), (R,), **SMOOTH),
    Op("leaky_relu", lambda x, *, slope: cr.leaky_relu(x, slope),
       lambda x, *, slope: np.where(x > 0, x, x * slope),
       lambda x, *, slope: _t().nn.functional.leaky_relu(x, slope), 1,
       unary.flatmap(lambda c: st.sampled_from([0.01, 0.2, 1.5]).map(
           lambda s: (c[0], {"slope": s}))), (NZ,), **SMOOTH),
    Op("clip_tensor_bounds", lambda x, lo, hi: cr.clip(x, lo, hi), np.clip,
       lambda x, lo, hi: _t().clamp(*_t().broadcast_tensors(x, lo, hi)), 3, clip_tensor_shapes(),
       ("odd", "even_low", "even_high"), **SMOOTH),
    # statistics
    Op("argmax", _cr_arg_pick("argmax"), _np_arg_pick("argmax"), _t_arg_pick("argmax"), 1,
       one_axis_or_none(), ("distinct",)),
    Op("argmin", _cr_arg_pick("argmin"), _np_arg_pick("argmin"), _t_arg_pick("argmin"), 1,
       one_axis_or_none(), ("distinct",)),
    Op("var", lambda x, **kw: cr.var(x, **kw), _np_var, _t_var, 1,
       reduction_with({"correction": [0, 1]}).filter(_spread), (R,), **SMOOTH),
    Op("std", lambda x, **kw: cr.std(x, **kw),
       lambda x, **kw: np.sqrt(_np_var(x, **kw)), lambda x, **kw: _t_var(x, fn="std", **kw), 1,
       reduction_with({"correction": [0, 1]}, min_dims=1).filter(_spread), (R,), **SMOOTH,
       bugs={"zero_dim": "std of one element: sqrt's infinite slope at 0 times 0 is NaN; "
                         "PyTorch gives 0 (ops helper)"}),
    Op("logsumexp", lambda x, **kw: cr.logsumexp(x, **kw), _np_logsumexp, _t_logsumexp, 1,
       reduction(), (R,), **SMOOTH),
    Op("norm", lambda x, **kw: cr.norm(x, **kw), _np_norm, _t_norm, 1,
       reduction_with({"ord": [None, 3.0]}), (NZ,), **SMOOTH),
    Op("norm_ord", lambda x, **kw: cr.norm(x, **kw), _np_norm, _t_norm, 1,
       reduction_with({"ord": [1.0, np.inf, -np.inf]}), ("distinct",)),
    # axes
    Op("squeeze", lambda x, *, axis: cr.squeeze(x, axis), _np_squeeze, _t_squeeze, 1,
       squeeze_shapes(), (R,), **SMOOTH),
    Op("unsqueeze", lambda x, *, axis: cr.unsqueeze(x, axis),
       lambda x, *, axis: np.expand_dims(x, axis), lambda x, *, axis: x.unsqueeze(axis), 1,
       unsqueeze_shapes(), (R,), **SMOOTH),
    Op("expand_dims", lambda x, *, axis: cr.expand_dims(x, axis),
       lambda x, *, axis: np.expand_dims(x, axis), _t_expand_dims, 1, expand_dims_shapes(),
       (R,), **SMOOTH),
    Op("flatten", lambda x, **kw: cr.flatten(x, **kw), _np_flatten,
       lambda x, *, start_axis, end_axis: _t().flatten(x, start_axis, end_axis), 1,
       flatten_shapes(), (R,), **SMOOTH),
    Op("swapaxes", lambda x, **kw: cr.swapaxes(x, **kw),
       lambda x, **kw: np.swapaxes(x, **kw),
       lambda x, *, axis1, axis2: x.swapaxes(axis1, axis2), 1, swapaxes_shapes(), (R,),
       **SMOOTH),
    Op("pad", lambda x, **kw: cr.pad(x, **kw), _np_pad, _t_pad, 1, pad_shapes(), (R,),
       **SMOOTH),
    Op("cat", lambda *xs, axis: cr.cat(xs, dim=axis),
       lambda *xs, axis: np.concatenate(xs, axis=axis),
       lambda *xs, axis: _t().cat(xs, dim=axis), 3, concat_shapes(), (R, R, R), **SMOOTH),
    # indexing and contraction
    Op("take_along_axis", lambda x, *, axis, index: cr.take_along_axis(x, index, axis),
       lambda x, *, axis, index: np.take_along_axis(x, index, axis), _t_take, 1,
       take_shapes(), (R,), **SMOOTH),
    Op("gather", lambda x, *, axis, index: cr.gather(x, axis, index), _np_gather, _t_gather,
       1, take_shapes(torch_gather=True), (R,), **SMOOTH),
    Op("einsum_one", lambda x, *, subscripts: cr.einsum(subscripts, x),
       lambda x, *, subscripts: np.einsum(subscripts, x),
       lambda x, *, subscripts: _t().einsum(subscripts, x), 1, einsum_cases(EINSUM_ONE),
       (R,), **SMOOTH),
    Op("einsum", lambda *xs, subscripts: cr.einsum(subscripts, *xs),
       lambda *xs, subscripts: np.einsum(subscripts, *xs),
       lambda *xs, subscripts: _t().einsum(subscripts, *xs), 2, einsum_cases(EINSUM_TWO),
       (R, R), **SMOOTH),
    Op("einsum_three", lambda *xs, subscripts: cr.einsum(subscripts, *xs),
       lambda *xs, subscripts: np.einsum(subscripts, *xs),
       lambda *xs, subscripts: _t().einsum(subscripts, *xs), 3, einsum_cases(EINSUM_THREE),
       (R, R, R), **SMOOTH),
]


# -- convolution, pooling, normalisation, embedding (issue 8) ---------------------------------
def _np_conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Direct cross-correlation: one product per kernel offset, over channel groups."""
    sh_, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    o, cg, kh, kw = w.shape
    if padding == "valid":
        padding = 0
    if padding == "same":
        pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in ((kh, dh), (kw, dw))]
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        pads = [(ph, ph), (pw, pw)]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh_ + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    og = o // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                win = xp[:, g * cg:(g + 1) * cg, i * dh:i * dh + sh_ * (oh - 1) + 1:sh_,
                         j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", win,
                                                         w[g * og:(g + 1) * og, :, i, j])
    return out if b is None else out + b[:, None, None]


@st.composite
def conv_shapes(draw, bias=True):
    groups = draw(st.sampled_from([1, 1, 2]))
    # O >= 2 and W >= 2: no input is all size-1 axes (its strided view would be contiguous)
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1 if groups == 2 else 2, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.sampled_from([1, 2, (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([1, 1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 1, (1, 0), "valid"] + (["same"] if stride == 1 else [])))
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    p = (0, 0) if isinstance(padding, str) else (
        (padding, padding) if isinstance(padding, int) else padding)
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), d[0] * (kh - 1) + 3))
    w = draw(st.integers(max(2, d[1] * (kw - 1) + 1 - 2 * p[1]), d[1] * (kw - 1) + 3))
    n = draw(st.integers(1, 2))
    shapes = ((n, cg * groups, h, w), (og * groups, cg, kh, kw)) + (((og * groups,),) if bias else ())
    return shapes, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _t_conv2d(x, w, b=None, **kw):
    if x.shape[1] == 0:     # PyTorch answers (N, 0, OH, OW) whatever the weight's O
        raise ValueError("zero input channels")
    return _t().nn.functional.conv2d(x, w, b, **kw)


def _np_pool(x, *, kernel_size, stride, padding, fn):
    k = kernel_size
    s = k if stride is None else stride
    fill = -np.inf if fn is np.max else 0.0
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)],
                constant_values=fill)
    oh = (xp.shape[2] - k) // s + 1
    ow = (xp.shape[3] - k) // s + 1
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = fn(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


@st.composite
def pool_shapes(draw):
    k = draw(st.integers(1, 3))
    stride = draw(st.sampled_from([None, 1, 2]))
    padding = draw(st.integers(0, k // 2))
    h, w = draw(st.integers(max(k, 2), k + 3)), draw(st.integers(k, k + 3))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return ((n, c, h, w),), {"kernel_size": k, "stride": stride, "padding": padding}


def _np_batch_norm(x, w, b, *, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return xhat * w.reshape(shape) + b.reshape(shape)


@st.composite
def batch_norm_shapes(draw):
    c = draw(st.integers(2, 3))
    shape = draw(st.sampled_from([(draw(st.integers(3, 5)), c),
                                  (draw(st.integers(1, 2)), c, draw(st.integers(2, 3)),
                                   draw(st.integers(2, 3)))]))
    return (shape, (c,), (c,)), {}


@st.composite
def batch_norm_eval_shapes(draw):
    (shape, c1, c2), _ = draw(batch_norm_shapes())
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    return (shape, c1, c2), {"running_mean": rng.uniform(-1, 1, c1),
                             "running_var": rng.uniform(0.5, 2, c1)}


def _np_bn_eval(x, w, b, *, running_mean, running_var):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - running_mean.reshape(shape)) / np.sqrt(running_var.reshape(shape) + 1e-5) * \
        w.reshape(shape) + b.reshape(shape)


@st.composite
def layer_norm_shapes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=MAX_SIDE))
    k = draw(st.integers(1, len(shape)))
    return (shape, shape[-k:], shape[-k:]), {"normalized_shape": shape[-k:]}


def _np_layer_norm(x, w, b, *, normalized_shape):
    axes = tuple(range(-len(normalized_shape), 0))
    xc = x - x.mean(axis=axes, keepdims=True)
    return xc / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + 1e-5) * w + b


@st.composite
def group_norm_shapes(draw):
    groups = draw(st.integers(1, 2))
    per = draw(st.integers(3 - groups, 2))
    rest = draw(st.sampled_from([(), (2,), (2, 3)]))
    if per == 1 and not rest:
        per = 2           # at least two values per group
    c = groups * per
    return ((draw(st.integers(1, 2)), c) + rest, (c,), (c,)), {"num_groups": groups}


def _np_group_norm(x, w, b, *, num_groups):
    n = x.shape[0]
    g = x.reshape(n, num_groups, -1)
    gc = g - g.mean(axis=2, keepdims=True)
    out = (gc / np.sqrt((gc * gc).mean(axis=2, keepdims=True) + 1e-5)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return out * w.reshape(shape) + b.reshape(shape)


@st.composite
def embedding_shapes(draw):
    v, d = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    ishape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    idx = np.array(draw(st.lists(st.integers(0, v - 1), min_size=int(np.prod(ishape)),
                                 max_size=int(np.prod(ishape)))), np.int64).reshape(ishape)
    return ((v, d),), {"indices": idx}


@st.composite
def linear_shapes(draw):
    i, o = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    lead = draw(st.sampled_from([(), (2,), (3,), (2, 2)]))
    return (lead + (i,), (o, i), (o,)), {}


def _t_channels(x, w):
    if x.shape[1] != w.shape[0]:     # PyTorch does not check the weight when C is 0
        raise ValueError("weight does not match the channels")
    return x


def _t_groups(x):
    if x.numel() == 0:    # PyTorch's weight gradient is NaN there; a sum over nothing is 0
        raise ValueError("empty groups")
    return x


def _t_tensors(kw):
    return {k: _t().tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


OPS += [
    Op("conv2d", lambda x, w, b, **kw: cr.conv2d(x, w, b, **kw), _np_conv2d, _t_conv2d, 3,
       conv_shapes(), (R, R, R), **SMOOTH),
    Op("conv2d_no_bias", lambda x, w, **kw: cr.conv2d(x, w, **kw), _np_conv2d, _t_conv2d, 2,
       conv_shapes(bias=False), (R, R), **SMOOTH),
    Op("max_pool2d", lambda x, **kw: cr.max_pool2d(x, **kw),
       lambda x, **kw: _np_pool(x, fn=np.max, **kw),
       lambda x, **kw: _t().nn.functional.max_pool2d(x, **kw), 1, pool_shapes(), ("distinct",),
       **SMOOTH),
    Op("avg_pool2d", lambda x, **kw: cr.avg_pool2d(x, **kw),
       lambda x, **kw: _np_pool(x, fn=np.mean, **kw),
       lambda x, **kw: _t().nn.functional.avg_pool2d(x, **kw), 1, pool_shapes(), (R,),
       **SMOOTH),
    Op("batch_norm", lambda x, w, b: cr.batch_norm(x, None, None, w, b, training=True),
       _np_batch_norm,
       lambda x, w, b: _t().nn.functional.batch_norm(_t_channels(x, w), None, None, w, b,
                                                      training=True), 3,
       batch_norm_shapes(), (R, R, R), **SMOOTH),
    Op("batch_norm_eval", lambda x, w, b, **kw: cr.batch_norm(x, weight=w, bias=b, **kw),
       _np_bn_eval,
       lambda x, w, b, **kw: _t().nn.functional.batch_norm(_t_channels(x, w), weight=w, bias=b,
                                                           **_t_tensors(kw)),
       3, batch_norm_eval_shapes(), (R, R, R), **SMOOTH),
    Op("layer_norm", lambda x, w, b, **kw: cr.layer_norm(x, weight=w, bias=b, **kw),
       _np_layer_norm,
       lambda x, w, b, **kw: _t().nn.functional.layer_norm(x, weight=w, bias=b, **kw), 3,
       layer_norm_shapes(), (R, R, R), **SMOOTH),
    Op("group_norm", lambda x, w, b, **kw: cr.group_norm(x, weight=w, bias=b, **kw),
       _np_group_norm,
       lambda x, w, b, **kw: _t().nn.functional.group_norm(_t_groups(x), weight=w, bias=b, **kw),
       3,
       group_norm_shapes(), (R, R, R), **SMOOTH),
    Op("embedding", lambda w, *, indices: cr.embedding(indices, w),
       lambda w, *, indices: w[indices],
       lambda w, *, indices: _t().nn.functional.embedding(_t().tensor(indices), w), 1,
       embedding_shapes(), (R,), **SMOOTH),
    Op("linear", lambda x, w, b: cr.nn.functional.linear(x, w, b),
       lambda x, w, b: x @ w.T + b, lambda x, w, b: _t().nn.functional.linear(x, w, b), 3,
       linear_shapes(), (R, R, R), **SMOOTH),
]

@st.composite
def linear_layer_shapes(draw):
    """x (..., in) with 1-3 axes, weight (out, in): nn.Linear's primitive."""
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=MAX_SIDE))
    n_in, n_out = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    return (tuple(lead) + (n_in,), (n_out, n_in)), {}


# nn.Linear's primitive (chainrule/ops/linear.py): x @ W.T with W in PyTorch's (out, in) layout
OPS += [
    Op("linear_layer", lambda x, w: cr.ops.linear(x, w), lambda x, w: x @ w.T,
       lambda x, w: _t().nn.functional.linear(x, w), 2, linear_layer_shapes(), (R, R),
       **SMOOTH),
]

BY_NAME = {op.name: op for op in OPS}
SECOND_ORDER = [op for op in OPS if op.second_order]

# every public function of the API contract has a row (operators are rows by their own names)
PUBLIC_FUNCTIONS = (
    "exp log sqrt tanh sigmoid relu abs sum mean max min maximum minimum matmul reshape "
    "transpose concatenate stack where clip softmax log_softmax mse_loss binary_cross_entropy "
    "cross_entropy hinge_loss "
    "sin cos log1p expm1 sign gelu leaky_relu argmax argmin var std logsumexp norm squeeze "
    "unsqueeze expand_dims flatten swapaxes pad cat take_along_axis gather einsum "
    "conv2d max_pool2d avg_pool2d batch_norm layer_norm group_norm embedding".split())


def case(data, op: Op):
    """Draw one case of ``op``: (shapes, static arguments, seed for the values)."""
    shapes, kw = data.draw(op.shapes, label="shapes, kw")
    seed = data.draw(st.integers(0, 2 ** 16), label="seed")
    return shapes, kw, seed

