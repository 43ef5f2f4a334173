"""``cr.function``: a graph compiled to one straight-line NumPy function.

The graph is flattened once into a :class:`Program`, a named list of equations (one op each:
the form an exporter such as ONNX reads), cleaned (dead nodes never enter, common
subexpressions are shared, constants folded, ``x * 1`` dropped) and printed one NumPy line per
equation: forward lines, then backward lines, then the parameter updates. The printed source
*is* what runs: it is compiled from a named pseudo-file so a traceback shows the failing line.
"""
from __future__ import annotations

import keyword
import linecache
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .. import _malloc
from ..core.tensor import Tensor, _fmt_shape
from ..core.toposort import toposort
from ..errors import GraphError, format_site, site_lineno
from ..ops import elementwise as ew
from ..ops.registry import Primitive
from .evaluate import feed_value

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


_counter = [0]


def _ident(name: Optional[str], fallback: str) -> str:
    s = re.sub(r"\W", "_", name or "").strip("_")
    if not s:
        s = fallback
    if s[0].isdigit():
        s = "p_" + s
    if keyword.iskeyword(s) or s in ("np",):
        s += "_"
    return s


def _literal(arr: np.ndarray) -> Optional[str]:
    """A Python literal for a 0-d constant, or None."""
    if arr.ndim != 0:
        return None
    v = arr.item()
    if isinstance(v, (bool, int)):
        return repr(v)
    if isinstance(v, float):
        if arr.dtype == np.float32:   # 0.1 lifted to float32 prints as 0.1, not 0.10000000149
            v = float(str(np.float32(v)))
        if np.isnan(v):
            return "np.nan"
        if np.isinf(v):
            return "np.inf" if v > 0 else "-np.inf"
        return repr(v)
    return None


def _array_source(arr: np.ndarray) -> str:
    """NumPy source that rebuilds ``arr`` exactly (shape, dtype, inf and nan included)."""
    dt = f"np.{arr.dtype.name}"
    if arr.size == 0:
        return f"np.zeros({arr.shape!r}, dtype={dt})"
    if arr.ndim == 0:
        lit = _literal(arr)
        if lit is not None:
            return f"np.array({lit}, dtype={dt})"
    text = repr(arr.tolist()).replace("inf", "np.inf").replace("nan", "np.nan")
    return f"np.array({text}, dtype={dt})"


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
        self.taken: set = {"np", name}
        self.prog = Program(name, [], [], {})
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
        if t.requires_grad:      # a Variable: a keyword parameter, read at call time
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
        if all(id(x) in b.consts for x in t.inputs) and t.op.name not in ("function",):
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
        if key in b.cse:      # the same op on the same inputs: computed once, where first needed
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
    _drop_implicit_broadcasts(b.prog, [b.names[id(o)] for o in roots])
    _in_place(b.prog, [b.names[id(o)] for o in roots])
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
    _update_in_place(b.prog)
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


_BROADCASTING = {"add", "sub", "mul", "div"}


def _drop_implicit_broadcasts(prog: Program, protected: list) -> None:
    """``gb = np.broadcast_to(g, x.shape); gx = gb * y`` is ``gx = g * y`` when ``y`` already
    has the full shape: NumPy broadcasts for free, so the explicit line goes."""
    readers: dict[str, list] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers.setdefault(n, []).append(e)
    keep = set(protected)
    drop = set()
    for e in prog.eqns:
        if e.op.name != "broadcast_like" or e.out in keep:
            continue
        full = tuple(e.node.shape)
        uses = readers.get(e.out, [])
        ok = bool(uses) and all(
            c.op.name in _BROADCASTING and tuple(c.node.shape) == full and any(
                n != e.out and tuple(x.shape) == full for n, x in zip(c.ins, c.node.inputs))
            for c in uses)
        if ok:
            for c in uses:
                c.ins = [e.ins[0] if n == e.out else n for n in c.ins]
            drop.add(id(e))
    # what that leaves as ``1.0 * y`` (the seed of a sum's gradient) is just ``y``
    alias: dict[str, str] = {}
    for e in prog.eqns:
        e.ins = [alias.get(n, n) for n in e.ins]
        if id(e) in drop or e.op is not ew.mul or e.out in keep:
            continue
        for one, other in ((0, 1), (1, 0)):
            x = e.node.inputs[other]
            c = prog.constants.get(e.ins[one])
            if c is not None and c.ndim == 0 and c.item() == 1 \
                    and tuple(x.shape) == tuple(e.node.shape) and x.dtype == e.node.dtype:
                alias[e.out] = e.ins[other]
                drop.add(id(e))
                break
    prog.eqns = [e for e in prog.eqns if id(e) not in drop]


_IN_PLACE_BINARY = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply",
                    "div": "np.divide"}
_IN_PLACE_UNARY = {"relu": "np.maximum({0}, 0, out={0})", "exp": "np.exp({0}, out={0})",
                   "tanh": "np.tanh({0}, out={0})", "neg": "np.negative({0}, out={0})",
                   "log": "np.log({0}, out={0})", "sqrt": "np.sqrt({0}, out={0})",
                   "abs": "np.abs({0}, out={0})"}


def _in_place(prog: Program, protected: list) -> None:
    """Reuse a temporary's storage where a careful person would (``h += b``, ``dx += g``),
    printed as ``add = np.add(h, b, out=h)`` so every line keeps its own name. Large
    temporaries cost page faults, not just arithmetic.

    Only where the temporary is a fresh array made by an earlier line (not a view, a variable,
    an input or a constant), read by this line alone, not an output, and of the result's shape
    and dtype. For ``+`` and ``*`` either operand may be the one reused.
    """
    made_by = {e.out: e for e in prog.eqns}
    readers: dict[str, int] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers[n] = readers.get(n, 0) + 1
    keep = set(protected)
    variables = {n for n, _ in prog.variables}
    update_steps = {e.ins[1] for e in prog.eqns if e.op is ew.sub and e.ins[0] in variables}

    def reusable(n: str, e: Eqn) -> bool:
        a = made_by.get(n)      # 0-d results are NumPy scalars, which have no storage to reuse
        return a is not None and a.op.fresh and readers.get(n) == 1 and n not in keep \
            and len(e.node.shape) > 0 and tuple(a.node.shape) == tuple(e.node.shape) \
            and a.node.dtype == e.node.dtype

    for e in prog.eqns:
        name = e.op.name
        if name in _IN_PLACE_UNARY and not e.params and reusable(e.ins[0], e):
            e.inplace = True
        elif name in _IN_PLACE_BINARY and e.ins[0] != e.ins[1]:
            if reusable(e.ins[0], e):
                e.inplace = True
            elif name in ("add", "mul") and reusable(e.ins[1], e) \
                    and e.out not in update_steps:   # keep ``W -= 0.1 * dW`` as written
                e.ins = [e.ins[1], e.ins[0]]
                e.inplace = True


def _update_in_place(prog: Program) -> None:
    """``m = 0.9 * m + 0.1 * g`` computed in m's own array, as an optimizer does by hand.

    When an update's new value is a chain of in-place lines whose first line reads the
    variable, and nothing else reads the variable, that first line writes into the variable
    (``np.multiply(m, 0.9, out=m)``) and the final copy ``m[...] = new_m`` goes. The line moves
    to the update section (everything that reads it is there already).
    """
    made_by = {e.out: e for e in prog.eqns}
    readers: dict[str, list] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers.setdefault(n, []).append(e)
    reads_elsewhere = set(prog.outputs) | {v for _, v in prog.updates}
    done = []
    for var, value in prog.updates:
        e = made_by.get(value)
        if e is None or var in reads_elsewhere or len(readers.get(var, [])) != 1:
            continue
        while e.inplace:
            e = made_by.get(e.ins[0])
            if e is None:
                break
        if e is None or e is not readers[var][0] or e.inplace or e.out in prog.outputs:
            continue
        if e.op.name in _IN_PLACE_BINARY:
            if e.ins[0] != var:
                if e.op.name not in ("add", "mul") or e.ins[1] != var:
                    continue
                e.ins = [e.ins[1], e.ins[0]]
        elif e.op.name not in _IN_PLACE_UNARY or e.params:
            continue
        var_t = next(t for n, t in prog.variables if n == var)
        if tuple(e.node.shape) != tuple(var_t.shape) or e.node.dtype != var_t.dtype \
                or len(var_t.shape) == 0 \
                or any(r.phase != UPDATE for r in readers.get(e.out, [])):
            continue
        e.into = var
        e.phase = UPDATE
        done.append((var, value))
    if done:
        prog.updates = [u for u in prog.updates if u not in done]
        prog.eqns.sort(key=lambda e: e.phase)


def _render(e: Eqn) -> str:
    code = e.op.code
    if callable(code):
        return code(e.ins, e.params, e.node)
    shown = {k: (repr(v) if not isinstance(v, np.dtype) else f"np.{v.name}")
             for k, v in e.params.items()}
    return code.format(*e.ins, **shown)


_SECTION = {FORWARD: "# forward", BACKWARD: "# backward", UPDATE: "# update"}
# where a 0-d constant may print as a Python literal: NumPy treats Python scalars as weak, so
# ``x * 0.5`` has x's dtype exactly when the constant has it too
_WEAK_OK = {"add", "sub", "mul", "div", "maximum", "minimum", "where",
            "lt", "le", "gt", "ge", "eq", "ne"}


def _literals(prog: Program) -> dict:
    """The 0-d constants that print as literals: name -> literal text."""
    uses: dict[str, list] = {}
    for e in prog.eqns:
        for k, n in enumerate(e.ins):
            uses.setdefault(n, []).append((e, k))
    elsewhere = set(prog.outputs) | {v for _, v in prog.updates}
    dtype_of = {e.out: e.node.dtype for e in prog.eqns}
    dtype_of.update({n: t.dtype for n, t in prog.variables})
    dtype_of.update({n: t.dtype for n, t in prog.placeholders.items()})
    out = {}
    for n, arr in prog.constants.items():
        lit = _literal(arr)
        if lit is None or n in elsewhere or n not in uses:
            continue
        ok = True
        for e, k in uses[n]:
            # the other operands must be arrays (not constants) of the constant's own dtype
            others = [m for j, m in enumerate(e.ins) if j != k]
            if e.op.name not in _WEAK_OK or not others or any(
                    dtype_of.get(m) != arr.dtype for m in others):
                ok = False
                break
        if ok:
            out[n] = lit
    return out


def _views_of(prog: Program, names: set) -> set:
    """``names`` and every name that may share storage with one of them (views, aliases)."""
    out = set(names)
    for e in prog.eqns:
        if not e.op.fresh and any(n in out for n in e.ins):
            out.add(e.out)
    return out


def to_source(prog: Program) -> tuple[str, list]:
    """The program as standalone NumPy source, and the helper primitives it uses."""
    lines = ["import numpy as np", ""]
    helpers = []
    for e in prog.eqns:
        if e.op.helper and e.op.helper not in helpers:
            helpers.append(e.op.helper)
    for h in helpers:
        lines += [h.rstrip(), "", ""]
    literal = _literals(prog)
    named = [(n, v) for n, v in prog.constants.items() if n not in literal]
    for n, v in named:
        lines.append(f"{n} = {_array_source(v)}")
    if named:
        lines += ["", ""]
    params = ", ".join(prog.inputs)
    if prog.variables:
        params += (", " if params else "") + "*, " + ", ".join(n for n, _ in prog.variables)
    lines.append(f"def {prog.name}({params}):")
    body = []
    phase = None
    renamed: dict[str, str] = dict(literal)
    readers: dict[str, int] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers[n] = readers.get(n, 0) + 1
    for _, value in prog.updates:
        readers[value] = readers.get(value, 0) + 1
    made_by = {e.out: e for e in prog.eqns}
    # what shares storage with a variable the updates write: read before any write
    written = _views_of(prog, {var for var, _ in prog.updates})
    # ``W[...] = W - step`` becomes ``W -= step`` when nothing else reads the difference
    in_place: dict[str, str] = {}     # update value -> the step subtracted in place
    inline: dict[str, Eqn] = {}       # var -> equation printed where it is used
    for var, value in prog.updates:
        e = made_by.get(value)
        if e is not None and e.op is ew.sub and e.ins[0] == var and readers[value] == 1 \
                and value not in prog.outputs:
            in_place[value] = e.ins[1]
            step = made_by.get(e.ins[1])
            if step is not None and step.phase == UPDATE and readers[step.out] == 1 \
                    and step.op.name in _BROADCASTING and step.out not in prog.outputs \
                    and not any(n in written for n in step.ins):
                inline[step.out] = step      # W -= 0.1 * dW

    def ref(n: str) -> str:
        if n in inline:
            e = inline[n]
            return _render(Eqn(e.out, e.op, [ref(m) for m in e.ins], e.params, e.node))
        return renamed.get(n, n)

    # a single-use transpose is a view: print it where it is used, ``relu.T @ dz``
    update_reads = {v for _, v in prog.updates} | set(in_place.values())
    inline.update({e.out: e for e in prog.eqns
                   if e.op.name == "transpose" and readers.get(e.out) == 1
                   and e.out not in prog.outputs and e.out not in update_reads})
    for e in prog.eqns:
        if e.out in in_place or e.out in inline:
            continue
        if e.phase != phase:
            phase = e.phase
            body.append(_SECTION[phase])
        e2 = Eqn(e.out, e.op, [ref(n) for n in e.ins], e.params, e.node, e.phase)
        if e.into:                                 # m_new = np.multiply(m, 0.9, out=m)
            e2.ins[0] = e.into
            e2.inplace = True
        if e.inplace or e.into:
            if e.op.name in _IN_PLACE_BINARY:     # add = np.add(h, b, out=h)
                acc, other = e2.ins
                line = f"{e.out} = {_IN_PLACE_BINARY[e.op.name]}({acc}, {other}, out={acc})"
            else:                                  # relu = np.maximum(h, 0, out=h)
                line = f"{e.out} = {_IN_PLACE_UNARY[e.op.name].format(e2.ins[0])}"
            body.append(line if not e.comment else f"{line.ljust(40)}  # {e.comment}")
            continue
        line = f"{e.out} = {_render(e2)}"
        body.append(line if not e.comment else f"{line.ljust(40)}  # {e.comment}")
    if prog.updates:
        # every value an update or output reads from a variable's storage is copied first,
        # so that all new values come from the old ones, and outputs are the old values
        reads = [in_place.get(v, v) for _, v in prog.updates] + list(prog.outputs)
        snap = [n for n in dict.fromkeys(reads) if n in written]
        if snap:
            body.append("# keep what the updates would overwrite")
            for n in snap:
                old = ref(n)
                renamed[n] = f"{_ident(old, 'v')}_old"
                body.append(f"{renamed[n]} = {old}.copy()")
        body.append("# update the variables in place")
        for var, value in prog.updates:
            if value in in_place:
                body.append(f"{var} -= {ref(in_place[value])}")
            else:
                body.append(f"{var}[...] = {ref(value)}")
    outs = [ref(n) for n in prog.outputs]
    body.append("return " + ", ".join(outs) if outs else "return None")
    lines += ["    " + ln for ln in body]
    return "\n".join(lines) + "\n", helpers


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
        self.program = build_program(self.inputs, outs, list(updates or ()), name)
        self.source, _ = to_source(self.program)
        _counter[0] += 1
        filename = f"<chainrule-compiled-{_counter[0]}:{name}>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True),
                                     filename)
        namespace: dict = dict(self.program.objects)
        exec(compile(self.source, filename, "exec"), namespace)
        self._fn = namespace[name]
        self._variables = [(n, t) for n, t in self.program.variables]
        self._checks = [(ph, ph._dtype, ph._shape) for ph in self.inputs]

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
        out = self._fn(*args, **{n: t.data for n, t in self._variables})
        if self.single:
            return np.asarray(out)
        n = len(self.program.outputs)
        return [] if n == 0 else [np.asarray(out)] if n == 1 else [np.asarray(o) for o in out]

    def __repr__(self) -> str:
        return f"<compiled {self.program.name}: {len(self.program.eqns)} lines>"


def function(inputs, outputs, updates=None, *, name: str = "f") -> CompiledFunction:
    """Compile the graph from placeholders ``inputs`` to ``outputs`` into flat NumPy code.

    ``updates`` is a list of ``(variable, new_value)`` pairs: after computing the outputs, the
    compiled code writes each new value into its variable's array in place (all new values
    are computed from the old ones first). This is how a training step compiles.

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
