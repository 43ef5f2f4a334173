"""How each primitive of the registry is written in ONNX: one entry per primitive name.

A form is ``form(g, eq, ins, out)``: it reads the equation of the flat program (``eq.op``,
``eq.params`` and ``eq.node``, the traced tensor whose ``inputs`` carry the operands' shapes and
dtypes), the ONNX names of its operands ``ins``, and emits nodes through the builder ``g`` so
that the last one writes ``out``. :data:`NO_FORM` names the primitives that have no ONNX form
and says why; a test checks that every name in the registry is in one table or the other, so a
new primitive cannot be forgotten.

This module does not import ``onnx``: the builder does, when an export runs.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ops.namespace import norm_axes, sum_to_axes

Form = Callable[..., None]
FORMS: dict[str, Form] = {}

# primitives with no ONNX form, and why (the error an export raises names the op and this)
NO_FORM: dict[str, str] = {
    "function": "a user-defined cr.Function runs Python code that ONNX cannot hold",
    "function_grad": "the backward pass of a user-defined cr.Function runs Python code",
    "scatter_add": "a gradient-only op (the backward pass of indexing)",
    "unpick": "a gradient-only op (the backward pass of a per-row pick)",
    "softmax_minus_onehot": "a gradient-only op (the backward pass of cross-entropy)",
}


def form(*names: str):
    """Register the decorated function as the ONNX form of the primitives ``names``."""
    def register(fn: Form) -> Form:
        for name in names:
            if name in FORMS:
                raise ValueError(f"ONNX form of {name!r} registered twice")
            FORMS[name] = fn
        return fn
    return register


def _same_dtype(g, eq, ins, dtype=None) -> list:
    """Operands cast to one dtype (the result's by default): ONNX does not promote types."""
    dtype = np.dtype(dtype or eq.node.dtype)
    return [g.cast(name, x.dtype, dtype) for name, x in zip(ins, eq.node.inputs)]


# -- elementwise -----------------------------------------------------------------------------------
def _direct(op_type: str) -> Form:
    """One ONNX op of the same meaning, operands in the result's dtype."""
    def emit(g, eq, ins, out):
        g.node(op_type, _same_dtype(g, eq, ins), out)
    return emit


def _compare(op_type: str, negate: bool = False) -> Form:
    def emit(g, eq, ins, out):
        dtype = np.result_type(*[x.dtype for x in eq.node.inputs])
        xs = _same_dtype(g, eq, ins, dtype)
        if negate:
            g.node("Not", [g.node(op_type, xs)], out)
        else:
            g.node(op_type, xs, out)
    return emit


for _name, _op in (("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"),
                   ("pow", "Pow"), ("maximum", "Max"), ("minimum", "Min"),
                   ("matmul", "MatMul")):
    FORMS[_name] = _direct(_op)
for _name, _op in (("neg", "Neg"), ("exp", "Exp"), ("log", "Log"), ("sqrt", "Sqrt"),
                   ("tanh", "Tanh"), ("sigmoid", "Sigmoid"), ("relu", "Relu"), ("abs", "Abs"),
                   ("sign", "Sign")):
    FORMS[_name] = _direct(_op)
for _name, _op in (("lt", "Less"), ("le", "LessOrEqual"), ("gt", "Greater"),
                   ("ge", "GreaterOrEqual"), ("eq", "Equal")):
    FORMS[_name] = _compare(_op)
FORMS["ne"] = _compare("Equal", negate=True)


@form("powc")
def _powc(g, eq, ins, out):
    dtype = eq.node.dtype
    (x,) = _same_dtype(g, eq, ins)
    g.node("Pow", [x, g.const(np.asarray(eq.params["p"], dtype))], out)


@form("cast")
def _cast(g, eq, ins, out):
    g.node("Cast", ins, out, to=g.onnx_dtype(eq.params["dtype"]))


@form("where")
def _where(g, eq, ins, out):
    c, x, y = eq.node.inputs
    dtype = eq.node.dtype
    g.node("Where", [g.cast(ins[0], c.dtype, bool), g.cast(ins[1], x.dtype, dtype),
                     g.cast(ins[2], y.dtype, dtype)], out)


@form("clip")
def _clip(g, eq, ins, out):
    # Max then Min rather than Clip: the bounds may be arrays, which Clip does not take
    dtype = eq.node.dtype
    (x,) = _same_dtype(g, eq, ins)
    lo, hi = eq.params["lo"], eq.params["hi"]
    if lo is not None and hi is not None:
        x = g.node("Max", [x, g.const(np.asarray(lo, dtype))])
        g.node("Min", [x, g.const(np.asarray(hi, dtype))], out)
    elif lo is not None:
        g.node("Max", [x, g.const(np.asarray(lo, dtype))], out)
    else:
        g.node("Min", [x, g.const(np.asarray(hi, dtype))], out)


FORMS["sin"] = _direct("Sin")
FORMS["cos"] = _direct("Cos")


@form("erf")
def _erf(g, eq, ins, out):
    # onnxruntime computes Erf in float32 only: other dtypes go through float32 (erf to ~1e-7)
    dtype = eq.node.dtype
    (x,) = _same_dtype(g, eq, ins)
    _erf_into(g, x, dtype, out)


def _erf_into(g, x: str, dtype, out=None) -> str:
    if np.dtype(dtype) == np.float32:
        return g.node("Erf", [x], out)
    y = g.node("Erf", [g.cast(x, dtype, np.float32)])
    return g.node("Cast", [y], out, to=g.onnx_dtype(dtype))


@form("log1p")
def _log1p(g, eq, ins, out):
    # ONNX has no log1p, and log(1 + x) loses a tiny x. Goldberg's correction gives it back:
    # with u = 1 + x rounded, log1p(x) = log(u) x / (u - 1), and x itself where u == 1
    dtype = eq.node.dtype
    (x,) = _same_dtype(g, eq, ins)
    one = g.const(np.asarray(1, dtype))
    u = g.node("Add", [x, one])
    d = g.node("Sub", [u, one])
    ratio = g.node("Div", [g.node("Mul", [g.node("Log", [u]), x]), d])
    g.node("Where", [g.node("Equal", [d, g.const(np.asarray(0, dtype))]), x, ratio], out)


@form("expm1")
def _expm1(g, eq, ins, out):
    # exp(x) - 1 = tanh(x / 2) (exp(x) + 1): no cancellation for a tiny x
    dtype = eq.node.dtype
    (x,) = _same_dtype(g, eq, ins)
    half = g.node("Tanh", [g.node("Mul", [x, g.const(np.asarray(0.5, dtype))])])
    g.node("Mul", [half, g.node("Add", [g.node("Exp", [x]), g.const(np.asarray(1, dtype))])],
           out)


@form("clamp")
def _clamp(g, eq, ins, out):
    # np.clip(x, lo, hi) = min(max(x, lo), hi), bounds broadcast
    x, lo, hi = _same_dtype(g, eq, ins)
    g.node("Min", [g.node("Max", [x, lo]), hi], out)


@form("leaky_relu")
def _leaky_relu(g, eq, ins, out):
    g.node("LeakyRelu", _same_dtype(g, eq, ins), out,
           alpha=float(eq.params.get("negative_slope", 0.01)))


@form("gelu")
def _gelu(g, eq, ins, out):
    # PyTorch's formulas (ONNX's own Gelu arrives only in opset 20)
    dtype = eq.node.dtype
    (x,) = _same_dtype(g, eq, ins)

    def c(v):
        return g.const(np.asarray(v, dtype))
    if eq.params.get("approximate", "none") == "tanh":
        cube = g.node("Mul", [g.node("Mul", [g.node("Mul", [x, x]), x]), c(0.044715)])
        inner = g.node("Mul", [g.node("Add", [x, cube]), c(float(np.sqrt(2.0 / np.pi)))])
        shape = g.node("Tanh", [inner])
    else:
        shape = _erf_into(g, g.node("Mul", [x, c(float(np.sqrt(0.5)))]), dtype)
    half_x = g.node("Mul", [x, c(0.5)])
    g.node("Mul", [half_x, g.node("Add", [c(1), shape])], out)


# -- reductions and statistics ---------------------------------------------------------------------
def _reduce(g, op_type: str, x: str, out: str | None, axes, keepdims: bool) -> str:
    """One ONNX reduction; ``axes`` None reduces every axis."""
    attrs = {"keepdims": int(bool(keepdims))}
    inputs = [x]
    if axes is not None:
        # the axes moved from an attribute to an input (ReduceSum in opset 13, the rest in 18)
        if op_type == "ReduceSum" or g.opset >= 18:
            inputs.append(g.const(np.asarray(axes, np.int64)))
        else:
            attrs["axes"] = list(axes)
    return g.node(op_type, inputs, out, **attrs)


def _reduction(op_type: str) -> Form:
    def emit(g, eq, ins, out):
        x = eq.node.inputs[0]
        axis = eq.params.get("axis")
        axes = None if axis is None else norm_axes(axis, x.ndim)
        if axes == ():      # nothing to reduce (a 0-d input): the value itself
            g.node("Identity", ins, out)
            return
        _reduce(g, op_type, ins[0], out, axes, eq.params.get("keepdims", False))
    return emit


for _name, _op in (("sum", "ReduceSum"), ("mean", "ReduceMean"), ("max", "ReduceMax"),
                   ("min", "ReduceMin")):
    FORMS[_name] = _reduction(_op)


@form("count")
def _count(g, eq, ins, out):
    # how many elements a reduction averages: a constant unless a free dimension takes part
    x = eq.node.inputs[0]
    axes = norm_axes(eq.params.get("axis"), x.ndim)
    dims = [x.shape[a] for a in axes]
    if None not in dims:
        g.node("Identity", [g.const(np.asarray(int(np.prod(dims)), eq.node.dtype))], out)
        return
    sizes = g.node("Gather", [g.node("Shape", ins), g.const(np.asarray(axes, np.int64))])
    n = _reduce(g, "ReduceProd", sizes, None, (0,), keepdims=False)
    g.node("Cast", [n], out, to=g.onnx_dtype(eq.node.dtype))


@form("sum_to")
def _sum_to(g, eq, ins, out):
    lead, keep = sum_to_axes(eq.node.inputs[0].shape, eq.params["shape"])
    axes = tuple(range(lead)) + keep
    if not axes:
        g.node("Identity", ins, out)
        return
    if not lead:
        _reduce(g, "ReduceSum", ins[0], out, axes, keepdims=True)
        return
    summed = _reduce(g, "ReduceSum", ins[0], None, axes, keepdims=True)
    g.node("Squeeze", [summed, g.const(np.arange(lead, dtype=np.int64))], out)


@form("sum_to_like")
def _sum_to_like(g, eq, ins, out):
    # the reverse of broadcasting to ``like``'s run-time shape: its fixed size-1 axes are
    # summed here; a free axis of ``like`` is 1 or g's size at run time, so it is summed,
    # the sum chosen where like's size is 1, and cut to like's size (1: the sum; n: g itself)
    gt, like = eq.node.inputs
    lead = gt.ndim - like.ndim
    x = ins[0]
    if lead:
        x = _reduce(g, "ReduceSum", x, None, tuple(range(lead)), keepdims=False)
    pairs = list(zip(like.shape, gt.shape[lead:]))
    fixed = tuple(i for i, (n, m) in enumerate(pairs) if n == 1 and m != 1)
    if fixed:
        x = _reduce(g, "ReduceSum", x, None, fixed, keepdims=True)
    one = g.const(np.asarray([1], np.int64))
    for i, (n, m) in enumerate(pairs):
        if n is None and m != 1:
            size = g.node("Shape", [ins[1]], start=i, end=i + 1)
            summed = _reduce(g, "ReduceSum", x, None, (i,), keepdims=True)
            x = g.node("Where", [g.node("Equal", [size, one]), summed, x])
            x = g.node("Slice", [x, g.const(np.asarray([0], np.int64)), size,
                                 g.const(np.asarray([i], np.int64))])
    g.node("Identity", [x], out)


@form("broadcast_like")
def _broadcast_like(g, eq, ins, out):
    g.node("Expand", [ins[0], g.node("Shape", [ins[1]])], out)


def _arg_extremum(op_type: str) -> Form:
    def emit(g, eq, ins, out):
        x = eq.node.inputs[0]
        axis, keepdims = eq.params.get("axis"), bool(eq.params.get("keepdims", False))
        if axis is None:        # of the flattened tensor
            flat = g.node("Reshape", [ins[0], g.const(np.asarray([-1], np.int64))])
            index = g.node(op_type, [flat], axis=0, keepdims=0)
            if keepdims:
                g.node("Reshape", [index, g.const(np.ones(x.ndim, np.int64))], out)
            else:
                g.node("Identity", [index], out)
            return
        g.node(op_type, ins, out, axis=int(axis), keepdims=int(keepdims))
    return emit


FORMS["argmax"] = _arg_extremum("ArgMax")
FORMS["argmin"] = _arg_extremum("ArgMin")


@form("logsumexp")
def _logsumexp(g, eq, ins, out):
    # shifted by the maximum (0 where that is infinite), as the NumPy kernel
    x = eq.node.inputs[0]
    axis, keepdims = eq.params.get("axis"), bool(eq.params.get("keepdims", False))
    axes = None if axis is None else norm_axes(axis, x.ndim)
    if axes == ():
        g.node("Identity", ins, out)
        return
    zero = g.const(np.asarray(0, x.dtype))
    m = _reduce(g, "ReduceMax", ins[0], None, axes, keepdims=True)
    m = g.node("Where", [g.node("IsInf", [m]), zero, m])
    total = _reduce(g, "ReduceSum", g.node("Exp", [g.node("Sub", [ins[0], m])]), None, axes,
                    keepdims=True)
    s = g.node("Add", [g.node("Log", [total]), m])
    if keepdims:
        g.node("Identity", [s], out)
    else:
        squeeze = tuple(range(x.ndim)) if axes is None else axes
        g.node("Squeeze", [s, g.const(np.asarray(squeeze, np.int64))], out)


@form("norm")
def _norm(g, eq, ins, out):
    x = eq.node.inputs[0]
    axis = eq.params.get("axis")
    axes = None if axis is None else norm_axes(axis, x.ndim)
    (xs,) = _same_dtype(g, eq, ins)
    squares = g.node("Mul", [xs, xs])
    if axes == ():
        g.node("Sqrt", [squares], out)
        return
    total = _reduce(g, "ReduceSum", squares, None, axes, eq.params.get("keepdims", False))
    g.node("Sqrt", [total], out)


# -- shapes and indexing ---------------------------------------------------------------------------
@form("reshape")
def _reshape(g, eq, ins, out):
    shape = tuple(int(n) for n in eq.params["shape"])
    # ONNX reads a 0 in the shape as "keep this dimension" unless told otherwise
    attrs = {"allowzero": 1} if 0 in shape else {}
    g.node("Reshape", [ins[0], g.const(np.asarray(shape, np.int64))], out, **attrs)


@form("reshape_like")
def _reshape_like(g, eq, ins, out):
    g.node("Reshape", [ins[0], g.node("Shape", [ins[1]])], out)


@form("expand_dims")
def _expand_dims(g, eq, ins, out):
    axis = eq.params["axis"]
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    g.node("Unsqueeze", [ins[0], g.const(np.asarray(axes, np.int64))], out)


@form("linear")
def _linear(g, eq, ins, out):
    # x @ W.T for nn.Linear's (out, in) weight: Gemm reads W transposed in place for a batch
    # of rows; other ranks take a Transpose (folded into the weight by the runtime)
    x, w = _same_dtype(g, eq, ins)
    if eq.node.inputs[0].ndim == 2:
        g.node("Gemm", [x, w], out, transB=1)
    else:
        g.node("MatMul", [x, g.node("Transpose", [w], perm=[1, 0])], out)


@form("transpose")
def _transpose(g, eq, ins, out):
    axes = eq.params.get("axes")
    ndim = eq.node.inputs[0].ndim
    if ndim == 0:
        g.node("Identity", ins, out)
        return
    perm = list(range(ndim))[::-1] if axes is None else [int(a) % ndim for a in axes]
    g.node("Transpose", ins, out, perm=perm)


def _index_items(index, ndim: int) -> list:
    """``index`` as a list with the Ellipsis spelled out and boolean masks as positions."""
    items = list(index) if isinstance(index, tuple) else [index]
    items = [np.nonzero(i)[0] if isinstance(i, np.ndarray) and i.dtype == bool else i
             for i in items]
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in [i for i in items if not isinstance(i, np.ndarray)]:
        k = next(n for n, i in enumerate(items) if i is Ellipsis)
        items[k:k + 1] = [slice(None)] * (ndim - used)
    return items


@form("getitem")
def _getitem(g, eq, ins, out):
    # basic indexing in three passes: slices (axes stay put), then integer and array picks
    # from the last axis back (so the axes before them keep their numbers), then new axes
    x = eq.node.inputs[0]
    items = _index_items(eq.params["index"], x.ndim)
    consuming = [(i, item) for i, item in enumerate(items) if item is not None]
    picks = [item for _, item in consuming if not isinstance(item, slice)]
    if len(picks) > 1 and any(isinstance(p, np.ndarray) and p.ndim > 0 for p in picks):
        _gather_nd(g, x, ins[0], items, out)
        return
    name = ins[0]
    starts, ends, axes, steps = [], [], [], []
    for axis, (_, item) in enumerate(consuming):
        if isinstance(item, slice) and item != slice(None):
            step = 1 if item.step is None else int(item.step)
            back = step < 0
            starts.append(int(item.start) if item.start is not None else
                          (np.iinfo(np.int64).max if back else 0))
            ends.append(int(item.stop) if item.stop is not None else
                        (np.iinfo(np.int64).min if back else np.iinfo(np.int64).max))
            axes.append(axis)
            steps.append(step)
    if axes:
        name = g.node("Slice", [name] + [g.const(np.asarray(v, np.int64))
                                         for v in (starts, ends, axes, steps)])
    for axis in reversed(range(len(consuming))):
        item = consuming[axis][1]
        if not isinstance(item, slice):
            name = g.node("Gather", [name, g.const(np.asarray(item, np.int64))], axis=axis)
    new_axes, position = [], 0
    for item in items:
        if item is None:
            new_axes.append(position)
            position += 1
        elif isinstance(item, slice):
            position += 1
        else:
            position += np.ndim(item)
    if new_axes:
        name = g.node("Unsqueeze", [name, g.const(np.asarray(new_axes, np.int64))])
    g.node("Identity", [name], out)


def _gather_nd(g, x, name, items, out):
    # several array indices, broadcast together: NumPy's rule is GatherND's when they are the
    # leading items (their result dims come first, then the remaining axes)
    lead = 0
    while lead < len(items) and items[lead] is not None and not isinstance(items[lead], slice):
        lead += 1
    rest = items[lead:]
    if any(i is None or not isinstance(i, slice) or i != slice(None) for i in rest):
        raise NotImplementedError("several array indices that are not the leading ones")
    picks = np.broadcast_arrays(*[np.asarray(i, np.int64) for i in items[:lead]])
    dims = x.shape[:lead]
    if None in dims and any((p < 0).any() for p in picks):
        raise NotImplementedError("a negative array index into a free (None) dimension")
    picks = [p % n if n is not None else p for p, n in zip(picks, dims)]
    g.node("GatherND", [name, g.const(np.stack(picks, axis=-1))], out)


@form("concatenate")
def _concatenate(g, eq, ins, out):
    g.node("Concat", _same_dtype(g, eq, ins), out, axis=int(eq.params.get("axis", 0)))


@form("stack")
def _stack(g, eq, ins, out):
    axis = norm_axes(eq.params.get("axis", 0), eq.node.ndim)[0]
    where = g.const(np.asarray([axis], np.int64))
    g.node("Concat", [g.node("Unsqueeze", [x, where]) for x in _same_dtype(g, eq, ins)], out,
           axis=axis)


@form("pick")
def _pick(g, eq, ins, out):
    # x[range(N), labels]: one element per row
    one = g.const(np.asarray([1], np.int64))
    column = g.node("Unsqueeze", [g.cast(ins[1], eq.node.inputs[1].dtype, np.int64), one])
    g.node("Squeeze", [g.node("GatherElements", [ins[0], column], axis=1), one], out)


@form("one_hot")
def _one_hot(g, eq, ins, out):
    # labels[:, None] == arange(C), as the result's dtype
    labels, like = eq.node.inputs
    classes = like.shape[-1]
    if classes is None:
        depth = g.node("Squeeze", [g.node("Shape", [ins[1]], start=-1)])
        arange = g.node("Range", [g.const(np.asarray(0, np.int64)), depth,
                                  g.const(np.asarray(1, np.int64))])
    else:
        arange = g.const(np.arange(classes, dtype=np.int64))
    column = g.node("Unsqueeze", [g.cast(ins[0], labels.dtype, np.int64),
                                  g.const(np.asarray([-1], np.int64))])
    g.node("Cast", [g.node("Equal", [column, arange])], out, to=g.onnx_dtype(eq.node.dtype))


@form("squeeze")
def _squeeze(g, eq, ins, out):
    axis = eq.params["axis"]
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    g.node("Squeeze", [ins[0], g.const(np.asarray(axes, np.int64))], out)


@form("flatten")
def _flatten(g, eq, ins, out):
    start, end = eq.params["start"], eq.params["end"]
    if None not in eq.node.shape:
        shape = g.const(np.asarray(eq.node.shape, np.int64))
    else:       # free dims kept as the input has them at run time
        shape = g.node("Concat", [g.node("Shape", ins, start=0, end=start),
                                  g.const(np.asarray([-1], np.int64)),
                                  g.node("Shape", ins, start=end + 1)], axis=0)
    g.node("Reshape", [ins[0], shape], out)


@form("pad")
def _pad(g, eq, ins, out):
    # ONNX pads are all the befores, then all the afters; negative widths crop, as ours
    widths = eq.params["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    value = g.const(np.asarray(eq.params.get("value", 0.0), eq.node.dtype))
    g.node("Pad", [ins[0], g.const(np.asarray(pads, np.int64)), value], out, mode="constant")


@form("take_along_axis")
def _take_along_axis(g, eq, ins, out):
    # np.take_along_axis broadcasts the indices and x on the other axes; GatherElements does
    # not, so both are expanded to the result's shape first where they differ from it
    x, index = eq.node.inputs
    axis = int(eq.params["axis"]) % x.ndim
    data, idx = ins[0], g.cast(ins[1], index.dtype, np.int64)
    if x.shape != index.shape:
        keep = np.ones(x.ndim, np.int64)
        keep[axis] = 0
        keep = g.const(keep)
        sx, si = g.node("Shape", [data]), g.node("Shape", [idx])
        idx = g.node("Expand", [idx, g.node("Max", [si, g.node("Mul", [sx, keep])])])
        data = g.node("Expand", [data, g.node("Max", [sx, g.node("Mul", [si, keep])])])
    g.node("GatherElements", [data, idx], out, axis=axis)


# -- gates with a rule of their own ----------------------------------------------------------------
@form("softmax")
def _softmax(g, eq, ins, out):
    g.node("Softmax", ins, out, axis=int(eq.params.get("axis", -1)))


@form("log_softmax")
def _log_softmax(g, eq, ins, out):
    g.node("LogSoftmax", ins, out, axis=int(eq.params.get("axis", -1)))


@form("cross_entropy")
def _cross_entropy(g, eq, ins, out):
    # -log_softmax(logits)[range(N), labels], then the reduction
    one = g.const(np.asarray([1], np.int64))
    logp = g.node("LogSoftmax", [ins[0]], axis=1)
    column = g.node("Unsqueeze", [g.cast(ins[1], eq.node.inputs[1].dtype, np.int64), one])
    picked = g.node("Squeeze", [g.node("GatherElements", [logp, column], axis=1), one])
    reduction = eq.params.get("reduction", "mean")
    if reduction == "none":
        g.node("Neg", [picked], out)
        return
    total = _reduce(g, "ReduceMean" if reduction == "mean" else "ReduceSum", picked, None,
                    (0,), keepdims=False)
    g.node("Neg", [total], out)


@form("binary_cross_entropy")
def _binary_cross_entropy(g, eq, ins, out):
    # -(t max(log p, -100) + (1 - t) max(log(1 - p), -100)), PyTorch's clamp of the logs
    dtype = eq.node.dtype
    p, t = _same_dtype(g, eq, ins)
    one, floor = g.const(np.asarray(1, dtype)), g.const(np.asarray(-100, dtype))
    log_p = g.node("Max", [g.node("Log", [p]), floor])
    log_q = g.node("Max", [g.node("Log", [g.node("Sub", [one, p])]), floor])
    total = g.node("Add", [g.node("Mul", [t, log_p]),
                           g.node("Mul", [g.node("Sub", [one, t]), log_q])])
    g.node("Neg", [total], out)


# -- convolution pieces and pooling ----------------------------------------------------------------
@form("im2col")
def _im2col(g, eq, ins, out):
    # the windows as our kernel copies them: one strided slice per kernel offset, stacked,
    # then (N, OH, OW, kh*kw, C) rows with columns ordered (kh, kw, C)
    _, c, h, w = eq.node.inputs[0].shape
    (kh, kw), (sh_, sw), ((pt, pb), (pl, pr)), (dh, dw) = (
        eq.params["kernel"], eq.params["stride"], eq.params["padding"], eq.params["dilation"])
    x = ins[0]
    if pt or pb or pl or pr:
        x = g.node("Pad", [x, g.const(np.asarray([0, 0, pt, pl, 0, 0, pb, pr], np.int64))],
                   mode="constant")
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh_ + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    axes, steps = g.const(np.asarray([2, 3], np.int64)), g.const(np.asarray([sh_, sw], np.int64))
    one = g.const(np.asarray([1], np.int64))
    parts = []
    for i in range(kh):
        for j in range(kw):
            starts = [i * dh, j * dw]
            ends = [i * dh + sh_ * (oh - 1) + 1, j * dw + sw * (ow - 1) + 1]
            part = g.node("Slice", [x, g.const(np.asarray(starts, np.int64)),
                                    g.const(np.asarray(ends, np.int64)), axes, steps])
            parts.append(g.node("Unsqueeze", [part, one]))
    stacked = g.node("Concat", parts, axis=1) if len(parts) > 1 else parts[0]
    rows = g.node("Transpose", [stacked], perm=[0, 3, 4, 1, 2])
    g.node("Reshape", [rows, g.const(np.asarray([-1, kh * kw * c], np.int64))], out)


@form("affine")
def _affine(g, eq, ins, out):
    x, w, b = _same_dtype(g, eq, ins)
    g.node("Add", [g.node("MatMul", [x, w]), b], out)


@form("sum_rows")
def _sum_rows(g, eq, ins, out):
    _reduce(g, "ReduceSum", ins[0], out, (0,), keepdims=False)


@form("unrows")
def _unrows(g, eq, ins, out):
    # (N*OH*OW, C) rows -> (N, C, OH, OW)
    (oh, ow), c = eq.params["size"], eq.node.inputs[0].shape[1]
    nhwc = g.node("Reshape", [ins[0], g.const(np.asarray([-1, oh, ow, c], np.int64))])
    g.node("Transpose", [nhwc], out, perm=[0, 3, 1, 2])


@form("rows")
def _rows(g, eq, ins, out):
    c = eq.node.inputs[0].shape[1]
    nhwc = g.node("Transpose", ins, perm=[0, 2, 3, 1])
    g.node("Reshape", [nhwc, g.const(np.asarray([-1, c], np.int64))], out)


NO_FORM.update({
    "col2im": "a gradient-only op (the backward pass of a convolution's windows)",
    "col2im_matmul": "a gradient-only op (a convolution's input gradient, compiled code only)",
    "scatter_along_axis": "a gradient-only op (the backward pass of take_along_axis)",
})


def _pool(op_type: str, **extra) -> Form:
    def emit(g, eq, ins, out):
        (ph, pw) = eq.params["padding"]
        g.node(op_type, ins, out, kernel_shape=list(eq.params["kernel"]),
               strides=list(eq.params["stride"]), pads=[ph, pw, ph, pw], **extra)
    return emit


FORMS["max_pool2d"] = _pool("MaxPool")
_average_pool = _pool("AveragePool", count_include_pad=1)


@form("avg_pool2d")
def _avg_pool2d(g, eq, ins, out):
    # zero padding counts in the window size, as PyTorch's default count_include_pad=True.
    # onnxruntime has AveragePool in float32 only: other dtypes add the windows' strided slices
    dtype = eq.node.dtype
    if dtype == np.float32:
        _average_pool(g, eq, ins, out)
        return
    _, _, oh, ow = eq.node.shape
    (kh, kw), (sh_, sw), (ph, pw) = eq.params["kernel"], eq.params["stride"], eq.params["padding"]
    x = ins[0]
    if ph or pw:
        x = g.node("Pad", [x, g.const(np.asarray([0, 0, ph, pw, 0, 0, ph, pw], np.int64))],
                   mode="constant")
    axes, steps = g.const(np.asarray([2, 3], np.int64)), g.const(np.asarray([sh_, sw], np.int64))
    total = None
    for i in range(kh):
        for j in range(kw):
            window = g.node("Slice", [x, g.const(np.asarray([i, j], np.int64)),
                                      g.const(np.asarray([i + sh_ * (oh - 1) + 1,
                                                          j + sw * (ow - 1) + 1], np.int64)),
                                      axes, steps])
            total = window if total is None else g.node("Add", [total, window])
    g.node("Mul", [total, g.const(np.asarray(1.0 / (kh * kw), dtype))], out)


@form("einsum")
def _einsum(g, eq, ins, out):
    g.node("Einsum", _same_dtype(g, eq, ins), out, equation=eq.params["spec"])


@form("full_like")
def _full_like(g, eq, ins, out):
    value = g.const(np.asarray(eq.params["value"], eq.params["dtype"]))
    g.node("Expand", [value, g.node("Shape", ins)], out)


NO_FORM.update({
    "max_pool2d_scatter": "a gradient-only op (the backward pass of max pooling)",
    "max_pool2d_gather": "a gradient-only op (the double backward of max pooling)",
    "avg_pool2d_scatter": "a gradient-only op (the backward pass of average pooling)",
})


# -- normalisation, embedding ----------------------------------------------------------------------
def _channel_axes(ndim: int) -> tuple:
    return (0,) + tuple(range(2, ndim))


@form("channel_sum")
def _channel_sum(g, eq, ins, out):
    _reduce(g, "ReduceSum", ins[0], out, _channel_axes(eq.node.inputs[0].ndim), keepdims=False)


@form("batch_norm_train")
def _batch_norm_train(g, eq, ins, out):
    # normalised with the batch's own mean and biased variance, as the NumPy kernel
    x = eq.node.inputs[0]
    xs, w, b = _same_dtype(g, eq, ins)
    axes = _channel_axes(x.ndim)
    per_channel = g.const(np.asarray((1, -1) + (1,) * (x.ndim - 2), np.int64))
    xc = g.node("Sub", [xs, _reduce(g, "ReduceMean", xs, None, axes, keepdims=True)])
    var = _reduce(g, "ReduceMean", g.node("Mul", [xc, xc]), None, axes, keepdims=False)
    eps = g.const(np.asarray(eq.params["eps"], eq.node.dtype))
    scale = g.node("Div", [w, g.node("Sqrt", [g.node("Add", [var, eps])])])
    scaled = g.node("Mul", [xc, g.node("Reshape", [scale, per_channel])])
    g.node("Add", [scaled, g.node("Reshape", [b, per_channel])], out)


@form("embedding")
def _embedding(g, eq, ins, out):
    indices = eq.node.inputs[0]
    g.node("Gather", [ins[1], g.cast(ins[0], indices.dtype, np.int64)], out, axis=0)


NO_FORM.update({
    "embedding_scatter": "a gradient-only op (the backward pass of an embedding lookup)",
    "dropout_mask": "a random mask from chainrule's generator; export in eval mode, where "
                    "dropout is the identity",
})
