"""``cr.onnx.export``: a model traced into the flat program, written out op by op as ONNX.

The model runs once on placeholders (a free batch dimension by default), which records the
symbolic graph; :func:`~chainrule.graph.ir.build_program` flattens it into the same named
equations ``cr.function`` compiles (walked by the one iterative topological sort, dead nodes
dropped, constants folded), and each equation becomes ONNX nodes through its entry in
:data:`~chainrule.onnx.forms.FORMS`. Parameters and constants become initializers.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.tensor import Tensor, placeholder
from ..errors import ChainruleError, describe
from ..graph.ir import build_program
from .forms import FORMS, NO_FORM

DEFAULT_OPSET = 18
MIN_OPSET = 17     # LayerNormalization


def _require_onnx():
    try:
        import onnx
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise ChainruleError("cr.onnx.export needs the onnx package: "
                             "pip install 'chainrule[onnx]'") from None
    return onnx


class Builder:
    """Collects ONNX nodes and initializers; what every form in ``forms`` writes through."""

    def __init__(self, onnx, opset: int):
        self.onnx = onnx
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.taken: set[str] = set()
        self._consts: dict = {}
        self.doc = ""        # where the equation being written was built, for each node

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def node(self, op_type: str, inputs: Sequence[str], out: str | None = None,
             **attrs) -> str:
        """Append one node; returns the name of its output (a fresh one unless ``out``)."""
        out = out or self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), [out], name=self.fresh(f"{op_type}_{out}"),
            doc_string=self.doc, **attrs))
        return out

    def const(self, value: np.ndarray, name: str | None = None) -> str:
        """An initializer holding ``value``; small equal constants are shared."""
        arr = np.asarray(value)
        if not arr.flags.c_contiguous:       # (ascontiguousarray would make a 0-d array 1-d)
            arr = arr.copy(order="C")
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 16 and name is None \
            else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(name or "const")
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        if key is not None:
            self._consts[key] = name
        return name

    def cast(self, name: str, have, want) -> str:
        """``name`` as dtype ``want`` (a Cast node only where the dtype differs)."""
        if np.dtype(have) == np.dtype(want):
            return name
        return self.node("Cast", [name], to=self.onnx_dtype(want))

    def onnx_dtype(self, dtype) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def value_info(self, name: str, dtype, shape: Sequence[int | None] | None, free: str = ""):
        dims = None if shape is None else [n if n is not None else (free or None) for n in shape]
        return self.onnx.helper.make_tensor_value_info(name, self.onnx_dtype(dtype), dims)


def _as_array(a) -> np.ndarray:
    return a.numpy() if isinstance(a, Tensor) else np.asarray(a)


def trace(model_or_fn, args: Sequence[np.ndarray], input_names: Sequence[str],
          dynamic_batch: bool) -> tuple[list, list]:
    """Placeholders for ``args`` and the outputs of ``model_or_fn`` on them (a Module in eval
    mode, each submodule's own mode restored afterwards)."""
    from ..nn import Module

    inputs = []
    for name, arr in zip(input_names, args):
        shape = arr.shape
        if dynamic_batch and arr.ndim:
            shape = (None,) + tuple(shape[1:])
        inputs.append(placeholder(shape, dtype=arr.dtype, name=name))
    modes = []
    if isinstance(model_or_fn, Module):
        modes = [(m, m.training) for _, m in model_or_fn.named_modules()]
        model_or_fn.eval()
    try:
        # grad mode stays on: a traced function may itself take gradients (cr.grad)
        result = model_or_fn(*inputs)
    except (TypeError, ValueError, ChainruleError) as e:
        if dynamic_batch and hasattr(e, "add_note"):
            e.add_note("cr.onnx.export traced the model with a free batch dimension (None); "
                       "code that needs the batch size as a number exports with "
                       "dynamic_batch=False")
        raise
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for i, o in enumerate(outputs):
        if not isinstance(o, Tensor):
            raise ChainruleError(f"cr.onnx.export: output {i} of the model is a "
                                 f"{type(o).__name__}, not a tensor")
    return inputs, outputs


def _names(given: Sequence[str] | None, count: int, base: str, what: str) -> list:
    if given is None:
        return [base] if count == 1 else [f"{base}_{i}" for i in range(count)]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != count or len(set(given)) != count:
        raise ChainruleError(f"cr.onnx.export: {what} needs {count} distinct names, got "
                             f"{given!r}")
    return given


def _no_form(eq) -> ChainruleError:
    name = eq.op.name
    what = name
    fn = eq.params.get("fn") if eq.params else None
    if fn is not None:
        what = f"{name} ({getattr(fn, 'name', type(fn).__name__)})"
    why = NO_FORM.get(name, "no ONNX form is defined for it")
    return ChainruleError(f"cr.onnx.export: op {what} has no ONNX form: {why}\n"
                          f"  built at {describe(eq.node.site)}")


def export(model_or_fn, args, path, *, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, dynamic_batch: bool = True,
           opset: int | None = None) -> Any:
    """Trace ``model_or_fn`` on example arrays ``args`` and write it to ``path`` as ONNX.

    Parameters
    ----------
    model_or_fn : cr.nn.Module or callable
        A module (traced in eval mode: dropout off, batch norm on its running statistics) or
        a function of tensors.
    args : array-like or tuple of array-likes
        One example per input; their dtypes and trailing dimensions become the model's.
    path : str or os.PathLike
        Where the ``.onnx`` file is written.
    input_names, output_names : sequence of str, optional
        Graph input and output names (``input``/``output``, numbered when there are several).
    dynamic_batch : bool
        Leave the first dimension of every input free (named ``batch``).
    opset : int, optional
        ONNX opset (default 18, at least 17).

    Returns
    -------
    onnx.ModelProto
        The model written, already checked with ``onnx.checker`` (``full_check``).

    Raises
    ------
    ChainruleError
        If the ``onnx`` package is missing, or an op of the model has no ONNX form (a
        user-defined ``cr.Function``), naming it and the line that built it.

    Examples
    --------
    >>> import numpy as np, chainrule as cr, tempfile, os
    >>> model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    >>> proto = cr.onnx.export(model, np.zeros((1, 3), np.float32), path)  # doctest: +SKIP
    >>> [n.op_type for n in proto.graph.node]  # doctest: +SKIP
    ['Gemm', 'Add', 'Relu', 'Gemm', 'Add', 'Identity']
    """
    onnx = _require_onnx()
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < MIN_OPSET:
        raise ChainruleError(f"cr.onnx.export: opset {opset} is too old; {MIN_OPSET} or newer")
    args = [args] if not isinstance(args, (tuple, list)) else list(args)
    arrays = [_as_array(a) for a in args]
    input_names = _names(input_names, len(arrays), "input", "input_names")
    inputs, outputs = trace(model_or_fn, arrays, input_names, dynamic_batch)
    output_names = _names(output_names, len(outputs), "output", "output_names")
    program = build_program(inputs, outputs, name="model")
    model = _to_model(onnx, program, inputs, outputs, input_names, output_names, opset)
    onnx.checker.check_model(model, full_check=True)     # never write a model ONNX refuses
    onnx.save(model, os.fspath(path))
    return model


def _to_model(onnx, program, inputs, outputs, input_names, output_names, opset: int):
    g = Builder(onnx, opset)
    g.taken.update(input_names)
    g.taken.update(output_names)
    # program names -> ONNX names: inputs keep the names given, everything else its own name
    onnx_name = dict(zip(program.inputs, input_names))
    for name, var in program.variables:
        onnx_name[name] = g.const(var.data, name)
    for name, value in program.constants.items():
        onnx_name[name] = g.const(np.asarray(value))
    for eq in program.eqns:
        form = FORMS.get(eq.op.name)
        if form is None:
            raise _no_form(eq)
        out = g.fresh(eq.out)
        g.doc = describe(eq.node.site) if eq.node.site else ""
        try:
            form(g, eq, [onnx_name[n] for n in eq.ins], out)
        except NotImplementedError as e:
            raise ChainruleError(f"cr.onnx.export: op {eq.op.name} has no ONNX form here: {e}"
                                 f"\n  built at {describe(eq.node.site)}") from None
        onnx_name[eq.out] = out
    g.doc = ""
    for name, ours, t in zip(output_names, program.outputs, outputs):
        g.node("Identity", [onnx_name[ours]], name)
    graph = onnx.helper.make_graph(
        g.nodes, "chainrule",
        [g.value_info(n, ph.dtype, ph.shape, "batch") for n, ph in zip(input_names, inputs)],
        [g.value_info(n, t.dtype, None) for n, t in zip(output_names, outputs)],
        initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    from .. import __version__

    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="chainrule",
                                   producer_version=__version__,
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    # the outputs' shapes as ONNX infers them from the inputs' (a free batch dimension stays
    # "batch" where it flows), rather than as declared by us
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    return model


__all__ = ["Builder", "export", "trace"]
