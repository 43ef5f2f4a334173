"""The flat intermediate form of a graph: a :class:`Program`, a named list of equations.

Each equation is one primitive applied to named inputs, named after the graph (``dW``,
``relu``, ``matmul_1``): the form a person reads and an exporter (ONNX) walks. Building it
from the graph already drops dead nodes (only what the outputs need is visited), shares
common subexpressions, folds constants and drops ``x * 1``; :mod:`transforms` then reuses
storage and :mod:`codegen` prints it.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..core.tensor import Tensor, _fmt_shape
from ..core.toposort import toposort
from ..errors import GraphError, format_site, site_lineno
from ..ops import elementwise as ew
from ..ops.dropout import RANDOM_OPS
from ..ops.registry import Primitive
from .state import is_state

FORWARD, BACKWARD, UPDATE = 0, 1, 2


@dataclass
class Eqn:
    """One line of the program: ``out = op(*ins, **params)``."""

    out: str
    op: Primitive
    ins: list
    params: dict
    node: Tensor
    phase: int = FORWARD
    comment: str = ""
    inplace: bool = False    # ``out`` reuses the storage of ``ins[0]`` (``h += b``)
    into: str = ""           # ``out`` is written into this variable's own array (updates)
    also: str = ""           # a second result of the same line (cross-entropy's gradient)


@dataclass
class Program:
    """A flat, named program: inputs, variables (read at call time), constants, equations,
    outputs and in-place updates of variables."""

    name: str
    inputs: list                       # placeholder var names, in call order
    variables: list                    # (var name, Variable tensor)
    constants: dict                    # name -> ndarray, emitted at module level
    eqns: list = field(default_factory=list)
    outputs: list = field(default_factory=list)    # var names or literals
    updates: list = field(default_factory=list)    # (variable var name, value var name)
    objects: dict = field(default_factory=dict)    # name -> a user gate the code calls
    placeholders: dict = field(default_factory=dict)   # input name -> its placeholder
    protected: list = field(default_factory=list)      # names read outside the equations
    taken: set = field(default_factory=set)            # every name the source defines

    def fresh(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``, ...: the first name not yet taken."""
        n, k = base, 0
        while n in self.taken:
            k += 1
            n = f"{base}_{k}"
        self.taken.add(n)
        return n


def _ident(name: Optional[str], fallback: str) -> str:
    s = re.sub(r"\W", "_", name or "").strip("_")
    if not s:
        s = fallback
    if s[0].isdigit():
        s = "p_" + s
    if keyword.iskeyword(s) or s in ("np",):
        s += "_"
    return s


def _key(v):
    """A hashable stand-in for a param value that tells different values apart exactly."""
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (tuple, list)):
        return (type(v).__name__,) + tuple(_key(x) for x in v)
    if isinstance(v, slice):
        return ("slice", _key(v.start), _key(v.stop), _key(v.step))
    if v is None or v is Ellipsis or isinstance(v, (int, float, str, bool, np.dtype, np.generic)):
        return (type(v).__name__, repr(v))
    return ("object", id(v))


def _param_key(params: dict) -> tuple:
    return tuple((k, _key(v)) for k, v in sorted(params.items()))


class _Builder:
    def __init__(self, inputs: Sequence[Tensor], name: str):
        self.name = name
        self.names: dict[int, str] = {}       # id(tensor) -> var name or literal
        self.prog = Program(name, [], [], {})
        self.taken = self.prog.taken     # rng: the generator random ops draw from
        self.taken.update(("np", "rng", name))
        self.cse: dict = {}
        self.consts: dict[int, np.ndarray] = {}   # id(tensor) -> folded value
        self.counts: dict[str, int] = {}
        for i, ph in enumerate(inputs):
            if not isinstance(ph, Tensor) or not ph.is_placeholder:
                raise GraphError(f"cr.function inputs must be placeholders; input {i} is "
                                 f"{ph._describe() if isinstance(ph, Tensor) else type(ph).__name__}")
            n = self.fresh(_ident(ph.name, f"x{i}"))
            self.names[id(ph)] = n
            self.prog.inputs.append(n)
            self.prog.placeholders[n] = ph

    def fresh(self, base: str) -> str:
        n = base
        k = self.counts.get(base, 0)
        while n in self.taken:
            k += 1
            n = f"{base}_{k}"
        self.counts[base] = k
        self.taken.add(n)
        return n

    def var_name(self, t: Tensor) -> str:
        origin = getattr(t, "_origin", None)
        if t.name:
            return self.fresh(_ident(t.name, "t"))
        if origin is not None and origin[0] == "grad":
            of = origin[1]
            base = self.names.get(id(of)) or _ident(of.name, of.op.name if of.op else "x")
            return self.fresh("d" + base if base.isidentifier() else "d_" + of.op.name)
        return self.fresh(t.op.name if origin is None else "g_" + t.op.name)

    def gate_name(self, fn) -> str:
        for n, obj in self.prog.objects.items():
            if obj is fn:
                return n
        n = self.fresh(_ident(f"gate_{fn.name}", "gate"))
        self.prog.objects[n] = fn
        return n

    def leaf(self, t: Tensor) -> str:
        if t.data is None:
            raise GraphError(f"placeholder '{t.name or '?'}' of shape {_fmt_shape(t._shape)} is "
                             f"needed by the outputs but is not among cr.function's inputs\n"
                             f"  made at {format_site(t.site)}")
        # a Variable or a module buffer: a keyword parameter, read at call time
        if t.requires_grad or is_state(t):
            n = self.fresh(_ident(t.name, f"var{len(self.prog.variables)}"))
            self.prog.variables.append((n, t))
            return n
        self.consts[id(t)] = t.data
        return self.constant(t.data)

    def constant(self, arr: np.ndarray) -> str:
        """A name for a constant; a 0-d one may still print as a literal (see to_source)."""
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 16 else None
        for n, v in self.prog.constants.items():
            if v is arr or key is not None and v.size <= 16 and \
                    (v.dtype.str, v.shape, v.tobytes()) == key:
                return n
        n = self.fresh(f"_c{len(self.prog.constants)}")
        self.prog.constants[n] = arr
        return n


def _own_phase(t: Tensor) -> int:
    return BACKWARD if getattr(t, "_origin", None) is not None else FORWARD


def build_program(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                  updates: Sequence = (), name: str = "f") -> Program:
    """Flatten the graph between ``inputs`` and ``outputs`` (and update values) into a Program."""
    b = _Builder(inputs, name)
    roots = list(outputs) + [v for _, v in updates]
    renames: dict[str, str] = {}
    for t in toposort(roots):
        if id(t) in b.names:
            continue
        if t.op is None:
            b.names[id(t)] = b.leaf(t)
            continue
        if t.inputs is None:
            raise GraphError(f"{t._describe()} has been released and cannot be compiled")
        ins = [b.names[id(x)] for x in t.inputs]
        # constant folding: every input known now
        if all(id(x) in b.consts for x in t.inputs) and t.op.name not in ("function",) \
                and t.op.name not in RANDOM_OPS:
            val = np.asarray(t.op.impl(*[b.consts[id(x)] for x in t.inputs], **t.params))
            b.consts[id(t)] = val
            b.names[id(t)] = b.constant(val)
            continue
        # algebra that costs a NumPy call and changes nothing: x * 1, 1 * x, x + 0, x - 0
        alias = _identity(t, b)
        if alias is not None:
            b.names[id(t)] = alias
            continue
        key = (t.op.name, tuple(ins), _param_key(t.params))
        if key in b.cse and t.op.name not in RANDOM_OPS:   # each random draw is its own
            # the same op on the same inputs: computed once, where first needed
            shared = b.cse[key]
            if _own_phase(t) < shared.phase:   # a forward value after all: named as one
                renames[shared.out] = b.var_name(t)
                shared.out = renames[shared.out]
                shared.comment = _comment(t)
                shared.phase = _own_phase(t)
            b.names[id(t)] = shared.out
            continue
        out = b.var_name(t)
        params = t.params
        if params and "fn" in params:    # a user gate: bound to a name the code calls
            params = dict(params, gate=b.gate_name(params["fn"]))
        eq = Eqn(out, t.op, ins, params, t, _own_phase(t))
        eq.comment = _comment(t)
        b.prog.eqns.append(eq)
        b.names[id(t)] = out
        b.cse[key] = eq
    if renames:
        for e in b.prog.eqns:
            e.ins = [renames.get(n, n) for n in e.ins]
        b.names = {k: renames.get(v, v) for k, v in b.names.items()}
    # each line goes in the earliest section its inputs allow: forward, backward, then what is
    # computed from gradients outside any backward rule (parameter updates)
    phase_of: dict[str, int] = {}
    for e in b.prog.eqns:
        after = max([phase_of.get(n, FORWARD) for n in e.ins], default=FORWARD)
        if e.phase == FORWARD and after >= BACKWARD:
            e.phase = UPDATE
        else:
            e.phase = max(e.phase, after)
        phase_of[e.out] = e.phase
    b.prog.eqns.sort(key=lambda e: e.phase)     # stable: topological within a phase
    b.prog.protected = [b.names[id(o)] for o in roots]
    b.prog.outputs = [b.names[id(o)] for o in outputs]
    var_of = {id(t): n for n, t in b.prog.variables}
    for var, value in updates:
        if not isinstance(var, Tensor) or not var.is_leaf or var.data is None:
            raise GraphError("cr.function updates must be (Variable, new value) pairs")
        if len(value.shape) != len(var.shape) or any(
                a is not None and a != b for a, b in zip(value.shape, var.shape)):
            raise GraphError(f"update of {var._describe()} with a value of shape "
                             f"{_fmt_shape(value.shape)}")
        if id(var) not in var_of:
            var_of[id(var)] = b.leaf(var)
        b.prog.updates.append((var_of[id(var)], b.names[id(value)]))
    return b.prog


def _identity(t: Tensor, b: _Builder) -> Optional[str]:
    op = t.op
    if op not in (ew.mul, ew.add, ew.sub, ew.div):
        return None
    x, y = t.inputs
    one = (op is ew.mul or op is ew.div)
    for keep, other, ok in ((x, y, True), (y, x, op in (ew.mul, ew.add))):
        if not ok or id(other) not in b.consts:
            continue
        c = b.consts[id(other)]
        if c.ndim == 0 and c.item() == (1 if one else 0) and keep.shape == t.shape \
                and keep.dtype == t.dtype:
            return b.names[id(keep)]
    return None


def _comment(t: Tensor) -> str:
    origin = getattr(t, "_origin", None)
    if origin is not None:            # ("vjp", gate) or ("grad", of, gate)
        gate = origin[-1]
        return f"{gate.op.name} backward"
    if not t.site:
        return ""
    return f"{t.site[0].co_filename.rsplit('/', 1)[-1]}:{site_lineno(t.site)}"
