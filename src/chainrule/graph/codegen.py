"""A :class:`~chainrule.graph.ir.Program` printed as standalone NumPy source: helpers, then
constants, then one function whose lines are the equations (forward, backward, update)."""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from ..ops import elementwise as ew
from ..ops.dropout import RANDOM_OPS
from ..ops.kernels import SOURCE
from .ir import BACKWARD, FORWARD, UPDATE, Eqn, Program, _ident
from .transforms import _BROADCASTING, _IN_PLACE_BINARY, _IN_PLACE_UNARY

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
    dtype_of.update({e.also: e.node.inputs[0].dtype for e in prog.eqns if e.also})
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


def _handed_out(prog: Program) -> list:
    """The outputs, each marked with whether it must be copied before it is returned: the
    caller gets arrays of its own, never an input, a Variable, a module-level constant, a
    read-only broadcast, or another output's storage, nor a view of any of these."""
    shared = set(prog.inputs) | {n for n, _ in prog.variables} | set(prog.constants)
    shared |= {e.out for e in prog.eqns if e.op.name == "broadcast_like"}
    marked = []
    for n in prog.outputs:
        copy = n in _views_of(prog, shared)
        marked.append((n, copy))
        if not copy:
            shared.add(n)     # a later output that shares it is copied
    return marked


# a temporary of at least this many elements (a free dim counted as 1024) is deleted after its
# last use, as a hand-written step reuses its names: the next large array then takes the
# freed memory while it is still in cache (a CNN step ran ~1.5x slower keeping them all)
_LARGE = 1 << 16
_NAME = re.compile(r"[A-Za-z_]\w*")


def _free_large_temporaries(prog: Program, body: list) -> list:
    """``del`` large temporaries after the line that reads them last (before the updates)."""
    large = {e.out for e in prog.eqns if np.prod(
        [1024 if n is None else n for n in e.node.shape], dtype=np.float64) >= _LARGE}
    large -= set(prog.outputs) | {v for _, v in prog.updates} | {n for n, _ in prog.variables}
    if not large:
        return body
    cut = next((i for i, ln in enumerate(body) if ln.startswith(("# keep", "# update the"))),
               len(body))
    last: dict = {}
    for i, ln in enumerate(body):
        for n in set(_NAME.findall(ln.split("  # ")[0])) & large:
            last[n] = i
    out = []
    for i, ln in enumerate(body):
        out.append(ln)
        if i + 1 < len(body) and body[i + 1].startswith(" "):   # inside a loop: wait
            continue
        j = i
        while j >= 0 and (body[j].startswith(" ") or body[j].startswith("for ")):
            j -= 1     # the loop's lines count as its last top-level line
        dead = sorted(n for n, k in last.items() if k < cut and j <= k <= i
                      and (k == i or body[k].startswith((" ", "for "))))
        if dead and i < cut:
            out.append("del " + ", ".join(dead))
    return out


def uses_rng(prog: Program) -> bool:
    """Whether the program draws random numbers (it then takes the generator as ``rng``)."""
    return any(e.op.name in RANDOM_OPS for e in prog.eqns)


def to_source(prog: Program) -> tuple[str, list]:
    """The program as standalone NumPy source, and the helper primitives it uses."""
    lines = ["import numpy as np", ""]
    helpers = []
    for e in prog.eqns:
        helper = SOURCE["_cross_entropy_with_grad"] if e.also else e.op.helper
        # a helper may be several functions apart by two blank lines; each is printed once
        for block in helper.split("\n\n\n") if helper else ():
            block = block.strip("\n") + "\n"
            if block not in helpers:
                helpers.append(block)
    for h in helpers:
        lines += [h.rstrip(), "", ""]
    literal = _literals(prog)
    named = [(n, v) for n, v in prog.constants.items() if n not in literal]
    for n, v in named:
        lines.append(f"{n} = {_array_source(v)}")
    if named:
        lines += ["", ""]
    params = ", ".join(prog.inputs)
    keywords = [n for n, _ in prog.variables]
    if uses_rng(prog):      # dropout masks: drawn from the generator passed at each call
        keywords.append("rng")
    if keywords:
        params += (", " if params else "") + "*, " + ", ".join(keywords)
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
        if e.also:         # loss, dlogits = _cross_entropy_with_grad(logits, y, 'mean')
            line = f"{e.out}, {e.also} = _cross_entropy_with_grad({e2.ins[0]}, {e2.ins[1]}, " \
                   f"{e.params['reduction']!r})"
            body.append(f"{line.ljust(40)}  # {e.comment}, and its gradient")
            continue
        text = _render(e2)
        if "\n" in text:   # a primitive printed as a few statements; "$" names its result
            *pre, text = text.replace("$", e.out).split("\n")
            body += pre
        line = f"{e.out} = {text}"
        body.append(line if not e.comment else f"{line.ljust(40)}  # {e.comment}")
    snapshots: set = set()         # outputs copied already, before the updates
    if prog.updates:
        # every value an update or output reads from a variable's storage is copied first,
        # so that all new values come from the old ones, and outputs are the old values
        reads = [in_place.get(v, v) for _, v in prog.updates] + list(prog.outputs)
        snap = [n for n in dict.fromkeys(reads) if n in written]
        snapshots.update(snap)
        if snap:
            body.append("# keep what the updates would overwrite")
            for n in snap:
                old = ref(n)
                renamed[n] = prog.fresh(f"{_ident(old, 'v')}_old")
                body.append(f"{renamed[n]} = {old}.copy()")
        body.append("# update the variables in place")
        for var, value in prog.updates:
            if value in in_place:
                body.append(f"{var} -= {ref(in_place[value])}")
            else:
                body.append(f"{var}[...] = {ref(value)}")
    outs = [f"{ref(n)}.copy()" if copy and n not in snapshots else ref(n)
            for n, copy in _handed_out(prog)]
    body.append("return " + ", ".join(outs) if outs else "return None")
    body = _free_large_temporaries(prog, body)
    lines += ["    " + ln for ln in body]
    return "\n".join(lines) + "\n", helpers
