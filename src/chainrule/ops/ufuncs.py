"""NumPy ufuncs on tensors: ``np.exp(t)``, ``np.add(t, 1)``, ``ndarray * t``.

NumPy hands a ufunc call with a tensor operand to ``Tensor.__array_ufunc__``, which runs the
matching chainrule op, so the result is a tensor in the graph with its gradient. A ufunc with
no chainrule op raises an error that says what to call instead: silently computing on the
array would drop the gradient. This is also what makes ``ndarray + tensor`` (the array on the
left) a tensor.
"""
from __future__ import annotations

import numpy as np

from ..errors import ChainruleError

# ufunc -> the chainrule op to run (names are looked up in chainrule.ops when first needed,
# after every op is registered)
_CALL = {
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div",
    np.negative: "neg", np.positive: "pos", np.power: "pow", np.matmul: "matmul",
    np.exp: "exp", np.log: "log", np.sqrt: "sqrt", np.tanh: "tanh", np.absolute: "abs",
    np.sin: "sin", np.cos: "cos", np.log1p: "log1p", np.expm1: "expm1", np.sign: "sign",
    np.maximum: "maximum", np.minimum: "minimum", np.square: "square",
    np.less: "lt", np.less_equal: "le", np.greater: "gt", np.greater_equal: "ge",
    np.equal: "eq", np.not_equal: "ne",
}
_REDUCE = {np.add: "sum", np.maximum: "max", np.minimum: "min"}

# what to write instead, for ufuncs chainrule has no op for
_INSTEAD = {
    np.reciprocal: "1 / t", np.exp2: "2.0 ** t", np.log2: "cr.log(t) / np.log(2)",
    np.log10: "cr.log(t) / np.log(10)", np.tan: "cr.sin(t) / cr.cos(t)",
    np.logaddexp: "cr.logsumexp(cr.stack([a, b]), axis=0)", np.fmax: "cr.maximum(a, b)",
    np.fmin: "cr.minimum(a, b)",
}
_NO_GRADIENT = {np.isnan, np.isinf, np.isfinite, np.floor, np.ceil, np.rint, np.trunc,
                np.signbit, np.floor_divide, np.remainder, np.logical_not, np.logical_and,
                np.logical_or, np.logical_xor}


def _ops():
    from .. import ops

    return ops


def _call(name: str):
    ops = _ops()
    if name == "pos":
        return lambda x: x
    if name == "square":
        return lambda x: x ** 2 if isinstance(x, ops.Tensor) else ops.ew.powc(x, p=2)
    if name == "pow":
        return lambda x, y: x ** y if isinstance(x, ops.Tensor) else ops.ew.pow(x, y)
    if name in ("add", "sub", "mul", "div", "neg", "lt", "le", "gt", "ge", "eq", "ne"):
        return getattr(ops.ew, name)
    return getattr(ops, name)


def _unsupported(ufunc, method: str) -> ChainruleError:
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if ufunc in _NO_GRADIENT:
        hint = (f"it has no gradient: call {name} on the value, t.numpy() (or on a "
                f"comparison's result), outside the graph")
    elif ufunc in _INSTEAD:
        hint = f"write {_INSTEAD[ufunc]}"
    else:
        hint = (f"compose it from chainrule ops (cr.exp, cr.log, cr.sin, ...), or call {name} "
                f"on t.numpy() for a value without a gradient")
    return ChainruleError(f"{name} on a chainrule tensor: chainrule has no op for it; {hint}")


def array_ufunc(self, ufunc, method: str, *inputs, **kwargs):
    """``Tensor.__array_ufunc__``: run the chainrule op matching ``ufunc`` (see module)."""
    out = kwargs.pop("out", None)
    if out is not None:
        raise ChainruleError(
            f"np.{ufunc.__name__}(..., out=...) with a chainrule tensor: results are new "
            f"tensors, never written into an array; write `a = np.{ufunc.__name__}(...)` or "
            f"`a = a + t` instead of an in-place update")
    if method == "reduce" and ufunc in _REDUCE:
        (x,) = inputs
        axis = kwargs.pop("axis", 0)
        keepdims = kwargs.pop("keepdims", False)
        if kwargs:
            raise ChainruleError(f"np.{ufunc.__name__}.reduce on a chainrule tensor does not "
                                 f"take {sorted(kwargs)}")
        fn = getattr(_ops(), _REDUCE[ufunc])
        return fn(x, axis=axis, keepdims=keepdims)
    if method != "__call__" or ufunc not in _CALL:
        raise _unsupported(ufunc, method)
    if kwargs:
        raise ChainruleError(f"np.{ufunc.__name__} on a chainrule tensor does not take "
                             f"{sorted(kwargs)}; call cr.{_CALL[ufunc]} on tensors of the "
                             f"dtype you want (t.astype(...))")
    return _call(_CALL[ufunc])(*inputs)
