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
]

BY_NAME = {op.name: op for op in OPS}
SECOND_ORDER = [op for op in OPS if op.second_order]

# every public function of the API contract has a row (operators are rows by their own names)
PUBLIC_FUNCTIONS = (
    "exp log sqrt tanh sigmoid relu abs sum mean max min maximum minimum matmul reshape "
    "transpose concatenate stack where clip softmax log_softmax mse_loss binary_cross_entropy "
    "cross_entropy hinge_loss".split())


def case(data, op: Op):
    """Draw one case of ``op``: (shapes, static arguments, seed for the values)."""
    shapes, kw = data.draw(op.shapes, label="shapes, kw")
    seed = data.draw(st.integers(0, 2 ** 16), label="seed")
    return shapes, kw, seed

