"""One registry of primitives, and the single place where an op is applied.

A primitive is registered once with everything every pass needs:

* ``impl``  -- the NumPy forward rule, arrays in, one array out;
* ``vjp``   -- the backward rule ``vjp(F, g, out, *inputs, **params)`` returning one
  gradient per input (``None`` where none flows). ``F`` is an op namespace: plain NumPy for a
  fast eager backward, chainrule ops when the gradient must itself be a graph (higher order,
  symbolic). One rule, two interpretations: nothing is written twice;
* ``code``  -- how the op prints as one line of NumPy in compiled source;
* ``label`` -- how it is named in drawings and ``explain``.

Eager execution, symbolic graphs, code generation, drawing and explain all read this registry.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .._config import anomaly_enabled, backward_origin, grad_enabled
from ..core.tensor import Tensor, _fmt_shape, _next_seq, make_leaf
import sys

from ..errors import _OURS, GraphError, ShapeError, capture_site, describe, site_of

_getframe = sys._getframe

# A ufunc on 0-d arrays returns a NumPy scalar, which a tensor's data cannot be; NumPy 2.x
# returns the 0-d array itself when given ``out=...``, which saves converting it back (a
# third of the ufunc's own cost on the eager hot path). Older NumPy raises: convert there.
try:
    np.negative(np.zeros(()), out=...)
    _ARRAY_OUT = True
except (TypeError, ValueError):
    _ARRAY_OUT = False

REGISTRY: dict[str, "Primitive"] = {}


class Primitive:
    """An op known to every pass of the engine. See the module docstring."""

    __slots__ = ("name", "impl", "vjp", "code", "label", "expand", "fresh", "helper", "infer",
                 "vjp_tuple", "axes", "ufunc")

    def __init__(self, name: str, impl: Callable, vjp: Optional[Callable], code,
                 label: Optional[str] = None, expand: Optional[Callable] = None,
                 fresh: bool = True, helper: Optional[str] = None,
                 infer: Optional[Callable] = None, axes: Optional[tuple] = None):
        self.name = name
        self.impl = impl
        self.vjp = vjp
        self.code = code            # str template "{0} * {1}" or callable(args, params) -> str
        self.label = label or name
        self.expand = expand        # same value from simpler gates, for drawings that expand it
        self.fresh = fresh          # result is a new array (False: may be a view of an input)
        self.helper = helper        # NumPy source of a helper function ``code`` calls, if any
        # (shape, dtype) of a symbolic result, for ops whose result shape is another
        # input's run-time shape (the stand-in run cannot see that)
        self.infer = infer
        self.vjp_tuple = type(vjp) is tuple
        # (param, extra): the param holding axes of a rank ``ndim(first input) + extra``
        # tensor, normalised once when the op is called (see AxisPrimitive)
        self.axes = axes
        # a NumPy ufunc that can be asked for an array result (see _ARRAY_OUT)
        self.ufunc = _ARRAY_OUT and isinstance(impl, np.ufunc)

    def __call__(self, *args, **params) -> Tensor:
        return apply(self, args, params)

    def vjps(self, F, g, out, inputs, params, needs=None) -> tuple:
        """One gradient per input (``None`` where ``needs[i]`` is false or none flows)."""
        rule = self.vjp
        if type(rule) is tuple:
            return tuple(None if r is None or (needs is not None and not needs[i])
                         else r(F, g, out, *inputs, **params) for i, r in enumerate(rule))
        return rule(F, g, out, *inputs, **params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


class AxisPrimitive(Primitive):
    """A primitive that takes axes: they are normalised once, when it is called, to
    non-negative ints (a 0-d tensor's axis 0 or -1 to None, as PyTorch accepts them), so
    every rule, the compiled code and the drawings read one form. Out-of-range or repeated
    axes raise a :class:`ShapeError` naming the op and the user's line."""

    __slots__ = ()

    def __call__(self, *args, **params) -> Tensor:
        name, extra = self.axes
        axis = params.get(name)
        if axis is not None:
            params = dict(params)
            params[name] = canonical_axes(self.name, axis, args[0], extra)
        return apply(self, args, params)


def canonical_axes(op: str, axis, x, extra: int = 0):
    """``axis`` (an int or a sequence of ints) for a tensor of rank ``ndim(x) + extra`` per
    axis, each entry in ``range(ndim)``; an int stays an int. ``extra`` is 1 for ops that add
    an axis (stack, expand_dims)."""
    shape = x.shape if isinstance(x, Tensor) else np.shape(x)
    single = isinstance(axis, (int, np.integer)) and not isinstance(axis, bool)
    items = (axis,) if single else tuple(axis)
    ndim = len(shape) + extra * len(items)
    bound = ndim or 1
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -bound <= a < bound:
            raise ShapeError(f"{op}: axis {axis!r} is out of range for a tensor of shape "
                             f"{_fmt_shape(shape)}\n  built at {describe(capture_site())}")
        out.append(int(a) % bound)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: axis {axis!r} repeats an axis\n"
                         f"  built at {describe(capture_site())}")
    if ndim == 0 and out:
        return None
    return out[0] if single else tuple(out)


def primitive(name: str, impl: Callable, vjp: Optional[Callable], code,
              label: Optional[str] = None, **kw) -> Primitive:
    """Register a primitive and return it (callable on tensors and array-likes).

    ``axes=(param, extra)`` marks a param holding axes (see :class:`AxisPrimitive`).
    """
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} registered twice")
    p = (Primitive if kw.get("axes") is None else AxisPrimitive)(name, impl, vjp, code, label,
                                                                 **kw)
    REGISTRY[name] = p
    return p


_EMPTY: dict = {}


def lift(value, like: Optional[Tensor]) -> Tensor:
    """A constant tensor for a Python scalar or array-like operand.

    Python scalars are weak, as in NumPy 2 and PyTorch: ``x * 2.0`` keeps ``x``'s float32.
    """
    if isinstance(value, (bool, int, float)) and like is not None:
        return make_leaf(_scalar_array(value, like.dtype))
    if isinstance(value, (np.ndarray, np.generic)):
        return _const(np.asarray(value))
    from ..core.tensor import _to_array

    return _const(_to_array(value))


# Python-scalar constants (the 1.01 of ``x * 1.01``) as read-only 0-d arrays, made once per
# (type, value, dtype): lifting a scalar is on the hottest path of eager code, and building
# its array cost more than the op itself. Read-only, so sharing one array is safe.
_SCALARS: dict = {}


def _scalar_array(value, dtype: np.dtype) -> np.ndarray:
    key = (type(value), value, dtype)
    arr = _SCALARS.get(key) if value else None    # 0.0 and -0.0 are equal keys: not cached
    if arr is None:
        arr = np.asarray(value, dtype=np.result_type(dtype, value))
        arr.flags.writeable = False
        if len(_SCALARS) > 4096:      # a loop over many distinct constants: stay bounded
            _SCALARS.clear()
        _SCALARS[key] = arr
    return arr


def _lift_all(args: tuple) -> tuple:
    # Scalars take the dtype of the first floating tensor operand (then of any tensor), so
    # ``where(c, g, 0)`` keeps g's float32 although the boolean c comes first.
    like = None
    for a in args:
        if type(a) is Tensor:
            if a.dtype.kind in "fc":
                like = a
                break
            if like is None:
                like = a
    if like is not None and like.data is not None:
        # the common ``x * 1.01``: the cached scalar array made a leaf here, without lift()'s
        # isinstance chain (this runs once per operator call with a Python number in it)
        dtype = like.data.dtype
        return tuple([a if type(a) is Tensor else
                      make_leaf(_scalar_array(a, dtype)) if type(a) is float or type(a) is int
                      else lift(a, like) for a in args])
    return tuple([a if type(a) is Tensor else lift(a, like) for a in args])


def _const(arr: np.ndarray) -> Tensor:
    return make_leaf(arr)


def apply(prim: Primitive, args: tuple, params: dict = _EMPTY) -> Tensor:
    """Run ``prim`` on ``args`` and, if anything needs a gradient, record it.

    This is the hot path of eager mode, written for speed: no generators, no ``**{}``, no
    attribute set that a reader can do without.
    """
    for a in args:
        if type(a) is not Tensor:       # a Python scalar or array-like operand: lift them all
            args = _lift_all(args)      # here, not by calling apply again, so the user's line
            break                       # stays two frames up (see the site below)
    datas = []
    needs = False
    live = False
    for a in args:
        d = a.data
        if d is None:
            return _apply_symbolic(prim, args, params)
        datas.append(d)
        if a.requires_grad:
            needs = True
        elif a.op is not None:          # computed from a Variable, without a gradient (a mask)
            live = True
    try:
        if params:
            out = prim.impl(*datas, **params)
        elif prim.ufunc:
            # spelled out by arity: ``impl(*datas, out=...)`` builds a tuple and a dict and
            # costs more than the conversion it saves
            n = len(datas)
            out = prim.impl(datas[0], datas[1], out=...) if n == 2 else \
                prim.impl(datas[0], out=...) if n == 1 else prim.impl(*datas, out=...)
        else:
            out = prim.impl(*datas)
    except (ValueError, IndexError, TypeError) as e:
        raise _op_error(prim, args, params, e, capture_site()) from None
    if type(out) is not np.ndarray:     # functions of ufuncs give NumPy scalars for 0-d results
        out = np.asarray(out)
    t = _new(Tensor)
    t.data = out
    t.grad = None
    t.name = None
    # what depends on a Variable is recorded, masks and casts too (``v > 0``, ``sign(W)``), so
    # a graph that is evaluated or compiled later recomputes them from the Variable's value
    # then; only what carries a gradient requires one
    if (needs or live) and grad_enabled():
        t.requires_grad = needs and prim.vjp is not None
        t.op = prim
        t.inputs = args
        t.params = params
        t.seq = _next_seq()
        t._consumed = False
        # the creation site, inlined: two frames up is the user's line when an operator or a
        # primitive was called directly (the common case); otherwise walk out of the package
        f = _getframe(2)
        code = f.f_code
        t.site = site_of(f) if _OURS.get(code.co_filename, True) else (code, f.f_lasti)
        origin = backward_origin.get()
        if origin is not None:            # built by a backward rule (create_graph)
            t._origin = ("vjp", origin)
    else:
        t.requires_grad = False
        t.op = None
        t.inputs = ()
        t.params = None
        t.site = ()
    if anomaly_enabled():
        check_finite(prim, out, t.site or capture_site(), "forward")
    return t


_new = Tensor.__new__


def _apply_symbolic(prim: Primitive, xs: tuple, params: dict) -> Tensor:
    """Record ``prim`` on symbolic inputs, inferring the result's shape at build time.

    The shape rule is the forward rule itself, run on stand-in arrays: every free (``None``)
    dimension is tried at two sizes; a result dimension that follows them is free, one that
    stays put is fixed, and a mismatch raises here, at the line that built it. Every input is
    a stand-in, constants and Variables too: real data (labels, say) indexed by a stand-in
    batch would fail for reasons that have nothing to do with the user's shapes.
    """
    site = capture_site()
    if any(type(x) is not Tensor for x in xs):
        xs = _lift_all(xs)
    if prim.infer is not None:
        shape, dtype = prim.infer(*xs, **params)
        return _symbolic(prim, xs, params, shape, dtype, site)
    a, b = _stand_in_runs(prim, xs, params, site)
    if a.ndim != b.ndim:
        raise ShapeError(f"{prim.name}: cannot infer the rank of the result for shapes "
                         f"{', '.join(_fmt_shape(x.shape) for x in xs)}\n  built at {describe(site)}")
    shape = tuple(m if m == k else None for m, k in zip(a.shape, b.shape))
    return _symbolic(prim, xs, params, shape, a.dtype, site)


def _stand_in_runs(prim: Primitive, xs: tuple, params: dict, site) -> tuple:
    """Two results of the forward rule on stand-ins whose free dims differ between the runs
    (equal results where no free dim can vary)."""
    k = len(xs)
    errors = []

    def run(n, m=None):       # n[i], m[i]: the sizes of input i's free dims in each run
        try:
            a = np.asarray(prim.impl(*[_dummy(x, s) for x, s in zip(xs, n)], **params))
            return a, a if m is None else np.asarray(
                prim.impl(*[_dummy(x, s) for x, s in zip(xs, m)], **params))
        except (ValueError, IndexError, TypeError) as e:
            errors.append(e)
            return None

    got = run((2,) * k, (3,) * k)        # every free dim alike: the common batch dim
    if got is not None:
        return got
    # an index array among the params (x[[0, 2, 2]]) needs free dims that hold its entries
    reach = max([int(np.abs(v).max()) + 1 for v in _index_arrays(params)], default=0)
    if reach > 2:
        got = run((reach,) * k, (reach + 1,) * k)
        if got is not None:
            return got
    # free dims of different inputs are independent: vary each input's alone, the others at 1
    # (broadcast against it); a result dim is free if any of them moves it
    free = [i for i, x in enumerate(xs) if None in x.shape]
    alone = [run(tuple(2 if j == i else 1 for j in range(k)),
                 tuple(3 if j == i else 1 for j in range(k))) for i in free]
    alone = [r for r in alone if r is not None]
    if len(free) > 1 and alone and len({a.ndim for r in alone for a in r}) == 1:
        a = alone[0][0]
        moved = np.zeros(a.ndim, bool)
        for r, q in alone:
            moved |= np.array(r.shape) != np.array(q.shape)
        return a, np.empty(tuple(n + 1 if m else n for n, m in zip(a.shape, moved)), a.dtype)
    # a free dim that only fits as 1, or as the size of a fixed dim it must match (logits rows
    # against a constant array of labels): the result is then fixed, as it is at run time
    for n in [1] + sorted({d for x in xs for d in x.shape if d is not None and d > 1}):
        got = run((n,) * k)
        if got is not None:
            return got
    raise _op_error(prim, xs, params, errors[0], site) from None


def _index_arrays(params: dict) -> list:
    """The non-empty integer arrays among ``params`` (indices, as in ``x[[0, 2]]``)."""
    items = [v for p in params.values() for v in (p if isinstance(p, tuple) else (p,))]
    return [v for v in items if isinstance(v, np.ndarray) and v.dtype.kind in "iu" and v.size]


def _symbolic(prim: Primitive, xs: tuple, params: dict, shape: tuple, dtype, site) -> Tensor:
    t = make_leaf(None, site=site, shape=shape, dtype=np.dtype(dtype))
    t.requires_grad = grad_enabled() and prim.vjp is not None and any(
        x.requires_grad for x in xs)
    t.op = prim
    t.inputs = xs
    t.params = params
    t._consumed = False
    t._free = frozenset().union(*[getattr(x, "_free", ()) for x in xs if x.data is None])
    origin = backward_origin.get()
    t._origin = None if origin is None else ("vjp", origin)
    return t


def _dummy(x: Tensor, n: int) -> np.ndarray:
    """A stand-in for ``x`` with each free dim of size ``n``: ones, or zeros for integer
    inputs (usually indices: zeros are always in range); a read-only view, allocated once."""
    shape = tuple(n if d is None else d for d in x.shape)
    dtype = x.dtype
    return np.broadcast_to(np.zeros((), dtype) if dtype.kind in "iub" else np.ones((), dtype),
                           shape)


def _op_error(prim: Primitive, xs: tuple, params: dict, e: Exception, site) -> Exception:
    shapes = ", ".join(_fmt_shape(x.shape) for x in xs)
    extra = ""
    if params:
        shown = {k: v for k, v in params.items() if not isinstance(v, np.ndarray)}
        extra = f" with {shown}" if shown else ""
    msg = (f"{prim.name}: operands of shape {shapes}{extra} do not fit: {e}\n"
           f"  built at {describe(site)}")
    return ShapeError(msg)


def check_finite(prim: Primitive, out, site, phase: str) -> None:
    """Anomaly mode: refuse the first NaN or Inf, naming the op and where it was built."""
    arr = out.data if isinstance(out, Tensor) else out
    if arr is None or not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fc":
        return
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "Inf"
        raise GraphError(f"anomaly: {prim.name} produced {bad} in its {phase} pass"
                         f" (output shape {_fmt_shape(arr.shape)})\n  built at {describe(site)}")
