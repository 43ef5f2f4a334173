"""Passes over a :class:`~chainrule.graph.ir.Program` that reuse storage the way a careful
person writes NumPy by hand: no explicit broadcast NumPy does for free, single-use
temporaries written in place, optimizer state updated in its own array."""
from __future__ import annotations

from ..ops import elementwise as ew, reduction as red
from .ir import UPDATE, Eqn, Program

_BROADCASTING = {"add", "sub", "mul", "div"}


def _shapes(prog: Program) -> dict:
    """name -> shape of every value the program reads or makes."""
    shape_of = {n: tuple(t.shape) for n, t in prog.placeholders.items()}
    shape_of.update((n, tuple(t.shape)) for n, t in prog.variables)
    shape_of.update((n, tuple(v.shape)) for n, v in prog.constants.items())
    shape_of.update((e.out, tuple(e.node.shape)) for e in prog.eqns)
    return shape_of


def _one_batch(prog: Program) -> None:
    """``sum_to_like(g, x)`` where both have one static shape is ``g`` when every free dim is
    one size (the batch): the line goes; otherwise it is the static ``sum_to``."""
    shape_of, keep = _shapes(prog), set(prog.protected)
    made_by = {e.out: e for e in prog.eqns}
    readers: dict[str, int] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers[n] = readers.get(n, 0) + 1
    alias: dict[str, str] = {}
    drop = set()
    for e in prog.eqns:
        e.ins = [alias.get(n, n) for n in e.ins]
        if e.op.name != "sum_to_like":
            continue
        if shape_of.get(e.ins[0]) != shape_of.get(e.ins[1]) or e.out in keep:
            e.op, e.params = red.sum_to, {"shape": shape_of[e.ins[1]]}
            e.ins = e.ins[:1]
            continue
        drop.add(id(e))
        source = made_by.get(e.ins[0])
        if source is not None and readers[source.out] == 1 and source.out not in keep:
            source.out = e.out        # the line before takes the name (``dsigmoid``)
        else:
            alias[e.out] = e.ins[0]
    prog.eqns = [e for e in prog.eqns if id(e) not in drop]
    prog.updates = [(v, alias.get(n, n)) for v, n in prog.updates]


def _drop_implicit_broadcasts(prog: Program, protected: list) -> None:
    """``gb = np.broadcast_to(g, x.shape); gx = gb * y`` is ``gx = g * y`` when ``y`` already
    has the full shape: NumPy broadcasts for free, so the explicit line goes."""
    readers: dict[str, list] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers.setdefault(n, []).append(e)
    keep = set(protected)
    drop = set()
    shape_of = _shapes(prog)
    for e in prog.eqns:
        if e.op.name != "broadcast_like" or e.out in keep:
            continue
        full = tuple(e.node.shape)
        uses = readers.get(e.out, [])
        # the other operand must have the full shape as the line now reads: when both are
        # broadcasts, the first one dropped leaves the other one needed
        ok = bool(uses) and all(
            c.op.name in _BROADCASTING and tuple(c.node.shape) == full and any(
                n != e.out and shape_of.get(n) == full for n in c.ins)
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


def _fuse_cross_entropy(prog: Program) -> None:
    """The loss line and its gradient's line share one exp: ``loss, dlogits =
    _cross_entropy_with_grad(logits, y, 'mean')``, as a careful person computes them."""
    grads = {tuple(e.ins): e for e in prog.eqns if e.op.name == "softmax_minus_onehot"}
    drop = set()
    for e in prog.eqns:
        g = grads.get(tuple(e.ins)) if e.op.name == "cross_entropy" else None
        if g is not None and id(g) not in drop:
            e.also = g.out
            drop.add(id(g))
    if drop:
        prog.eqns = [e for e in prog.eqns if id(e) not in drop]


def _fuse_col2im(prog: Program) -> None:
    """A conv's input gradient ``col2im(g @ W.T)`` as one line, ``col2im_matmul(g, W)``:
    a product per kernel offset and contiguous adds, as written by hand (ops/conv.py)."""
    from ..ops.conv import col2im_matmul

    made_by = {e.out: e for e in prog.eqns}
    readers: dict[str, int] = {}
    for e in prog.eqns:
        for n in e.ins:
            readers[n] = readers.get(n, 0) + 1
    keep = set(prog.protected)
    drop = set()
    for e in prog.eqns:
        prod = made_by.get(e.ins[0]) if e.op.name == "col2im" else None
        if prod is None or prod.op.name != "matmul" or readers[prod.out] != 1 \
                or prod.out in keep or len(prod.node.shape) != 2:
            continue
        wt = made_by.get(prod.ins[1])
        if wt is None or wt.op.name != "transpose" or wt.params.get("axes") not in (None, (1, 0)):
            continue
        e.op, e.ins = col2im_matmul, [prod.ins[0], wt.ins[0], e.ins[1]]
        drop.add(id(prod))
        readers[wt.out] -= 1
        if readers[wt.out] == 0 and wt.out not in keep:
            drop.add(id(wt))
    if drop:
        prog.eqns = [e for e in prog.eqns if id(e) not in drop]


def optimize(prog: Program, reuse: bool = True) -> Program:
    """Run every pass, in order; returns ``prog``.

    The storage passes read two free (``None``) dims of equal place as one size, the batch.
    ``reuse=False`` leaves them out: the program for inputs whose free dims differ.
    """
    _fuse_col2im(prog)
    if reuse:
        _one_batch(prog)
        _drop_implicit_broadcasts(prog, prog.protected)
        _in_place(prog, prog.protected)
        _update_in_place(prog)
    _fuse_cross_entropy(prog)
    return prog
