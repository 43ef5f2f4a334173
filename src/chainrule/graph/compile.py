"""``cr.function``: a graph compiled to one straight-line NumPy function.

The graph is flattened once into a :class:`~chainrule.graph.ir.Program` (``ir``), its
temporaries reused where safe (``transforms``) and printed one NumPy line per equation:
forward lines, then backward lines, then the parameter updates (``codegen``). The printed
source *is* what runs: it is compiled from a named pseudo-file so a traceback shows the
failing line.
"""
from __future__ import annotations

import linecache
from typing import Sequence

import numpy as np

from .. import _malloc
from ..core.tensor import Tensor
from ..core.toposort import toposort
from ..errors import GraphError
from .._random import default_generator
from .codegen import to_source, uses_rng
from .evaluate import feed_value
from .ir import build_program
from .state import side_updates
from .transforms import optimize

_counter = [0]


class CompiledFunction:
    """A graph compiled to flat NumPy; call it with arrays for the input placeholders.

    ``source`` is the code that runs; ``program`` its equations.
    """

    def __init__(self, inputs: Sequence[Tensor], outputs, updates=(), name: str = "f"):
        self.single = isinstance(outputs, Tensor)
        outs = [outputs] if self.single else list(outputs)
        for o in outs:
            if not isinstance(o, Tensor):
                raise TypeError(f"cr.function outputs must be tensors, got {type(o).__name__}")
        self.inputs = list(inputs)
        _malloc.keep_heap()       # a compiled step is a training loop too (see _malloc)
        updates = list(updates or ())
        # batch norm's running statistics, when the graph computes them in training mode
        given = {id(var) for var, _ in updates}
        updates += [pair for pair in side_updates(toposort(outs + [v for _, v in updates]))
                    if id(pair[0]) not in given]
        self._build = (outs, updates, name)
        self.program = optimize(build_program(self.inputs, outs, updates, name))
        self.source, self._fn = _load(self.program, name)
        self._variables = [(n, t) for n, t in self.program.variables]
        self._rng = uses_rng(self.program)
        self._checks = [(ph, ph._dtype, ph._shape) for ph in self.inputs]
        # the free dims of the inputs: storage is reused as if they were one size (the batch);
        # fed two sizes (x batch 1, y batch 4), the call runs a program that reuses none
        self._free = [(i, d) for i, ph in enumerate(self.inputs)
                      for d, n in enumerate(ph._shape) if n is None]
        if len(self._free) < 2:
            self._free = ()
        self._any_sizes = None

    def _for_any_sizes(self):
        if self._any_sizes is None:
            outs, updates, name = self._build
            prog = optimize(build_program(self.inputs, outs, updates, name), reuse=False)
            self._any_sizes = _load(prog, name)[1]
        return self._any_sizes

    def __call__(self, *arrays):
        if len(arrays) != len(self._checks):
            names = ", ".join(ph.name or "?" for ph in self.inputs)
            raise GraphError(f"compiled function takes {len(self._checks)} inputs ({names}), "
                             f"got {len(arrays)}")
        args = []
        for (ph, dtype, shape), a in zip(self._checks, arrays):
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != len(shape) or any(
                    d is not None and d != n for d, n in zip(shape, a.shape)):
                a = feed_value(ph, a)
            args.append(a)
        kw = {n: t.data for n, t in self._variables}
        if self._rng:       # the seeded default generator, as it is at this call
            kw["rng"] = default_generator()
        fn = self._fn
        if self._free and len({args[i].shape[d] for i, d in self._free}) > 1:
            fn = self._for_any_sizes()
        out = fn(*args, **kw)
        if self.single:
            return np.asarray(out)
        n = len(self.program.outputs)
        return [] if n == 0 else [np.asarray(out)] if n == 1 else [np.asarray(o) for o in out]

    def __repr__(self) -> str:
        return f"<compiled {self.program.name}: {len(self.program.eqns)} lines>"


def _load(prog, name: str) -> tuple:
    """The program's source, and its function compiled from a named pseudo-file."""
    source, _ = to_source(prog)
    _counter[0] += 1
    filename = f"<chainrule-compiled-{_counter[0]}:{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = dict(prog.objects)
    exec(compile(source, filename, "exec"), namespace)
    return source, namespace[name]


def function(inputs, outputs, updates=None, *, name: str = "f") -> CompiledFunction:
    """Compile the graph from placeholders ``inputs`` to ``outputs`` into flat NumPy code.

    ``updates`` is a list of ``(variable, new_value)`` pairs: after computing the outputs, the
    compiled code writes each new value into its variable's array in place (all new values
    are computed from the old ones first). This is how a training step compiles.

    The printed ``source`` reuses storage as if every free (``None``) dim of the inputs had
    one size, the batch; a call fed different sizes (x of batch 1 broadcast against y of
    batch 4) runs the same program without reuse.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.placeholder((None, 2), name="x")
    >>> w = cr.Variable([[1.0], [2.0]], name="w")
    >>> loss = ((x @ w) ** 2).mean()
    >>> (dw,) = cr.grad(loss, [w])
    >>> step = cr.function([x], loss, updates=[(w, w - 0.1 * dw)])
    >>> float(step(np.array([[1.0, 0.0]], dtype=np.float32)))
    1.0
    >>> w.numpy().ravel().tolist()
    [0.800000011920929, 2.0]
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    return CompiledFunction(list(inputs), outputs, updates or (), name)
