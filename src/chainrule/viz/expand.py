"""A copy of a graph with composite gates (sigmoid, ...) replaced by their primitive gates.

Only drawings use this. The user's graph is never changed: nodes downstream of an expanded
gate are shallow copies pointing at the expansion, and the expansion is built on stand-ins of
the gate's inputs which are then rewired to the real inputs, so values, names and
requires_grad carry over and :func:`~chainrule.viz.edges.edge_grads` works on the result.
"""
from __future__ import annotations

from typing import Optional

from .._config import enable_grad
from ..core.tensor import Tensor, placeholder
from ..core.toposort import toposort

_SLOTS = tuple(s for s in Tensor.__slots__ if s != "__weakref__")


def expanded(root: Tensor) -> Tensor:
    """``root``'s graph with every gate that has an ``expand`` rule drawn from primitives."""
    order = toposort([root])
    if not any(t.op is not None and t.op.expand is not None for t in order):
        return root
    new: dict[int, Tensor] = {}
    for t in order:
        if t.op is None:
            new[id(t)] = t
            continue
        ins = tuple(new[id(x)] for x in t.inputs)
        if t.op.expand is not None:
            e = _expand_one(t, ins)
            if e is not None:
                new[id(t)] = e
                continue
        if all(a is b for a, b in zip(ins, t.inputs)):
            new[id(t)] = t
        else:
            c = _shallow_copy(t)
            c.inputs = ins
            new[id(t)] = c
    return new[id(root)]


def _expand_one(t: Tensor, ins: tuple) -> Optional[Tensor]:
    stand_ins = []
    for x in ins:
        if x.data is None:
            stand_ins.append(placeholder(x.shape, dtype=x.dtype))
        else:
            stand_ins.append(Tensor(x.data, requires_grad=x.requires_grad))
    try:
        with enable_grad():
            e = t.op.expand(*stand_ins, **(t.params or {}))
    except Exception:  # an expansion that cannot run here: draw the gate as one node
        return None
    real = {id(s): x for s, x in zip(stand_ins, ins)}
    if not isinstance(e, Tensor) or id(e) in real or e.op is None:
        return None
    for n in toposort([e]):
        if n.op is None:
            continue
        n.site = t.site  # every gate of the expansion was built by the user's line
        if any(id(i) in real for i in n.inputs):
            n.inputs = tuple(real.get(id(i), i) for i in n.inputs)
    e.name = t.name
    return e


def _shallow_copy(t: Tensor) -> Tensor:
    c = Tensor.__new__(Tensor)
    for s in _SLOTS:
        try:
            setattr(c, s, getattr(t, s))
        except AttributeError:  # an optional slot never set on t (``_consumed``)
            pass
    return c
