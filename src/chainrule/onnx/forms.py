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


# -- elementwise -------------------------------------------------------------------------------
def _binary(op_type: str) -> Form:
    def emit(g, eq, ins, out):
        g.node(op_type, _same_dtype(g, eq, ins), out)
    return emit


def _unary(op_type: str) -> Form:
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
    FORMS[_name] = _binary(_op)
for _name, _op in (("neg", "Neg"), ("exp", "Exp"), ("log", "Log"), ("sqrt", "Sqrt"),
                   ("tanh", "Tanh"), ("sigmoid", "Sigmoid"), ("relu", "Relu"), ("abs", "Abs"),
                   ("sign", "Sign")):
    FORMS[_name] = _unary(_op)
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


# -- reductions --------------------------------------------------------------------------------
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


@form("broadcast_like")
def _broadcast_like(g, eq, ins, out):
    g.node("Expand", [ins[0], g.node("Shape", [ins[1]])], out)


# -- shapes ------------------------------------------------------------------------------------
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


@form("transpose")
def _transpose(g, eq, ins, out):
    axes = eq.params.get("axes")
    ndim = eq.node.inputs[0].ndim
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
        raise NotImplementedError("indexing with an array and another integer or array index")
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


# -- gates with a rule of their own ------------------------------------------------------------
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
