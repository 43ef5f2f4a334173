"""Which Module built each gate, read from the graph alone, for ``cr.draw(..., group="module")``.

A Module names its parameters by their dotted path (``features.0.weight``), so a gate that
takes a parameter (or a view of one, such as ``W.T``) belongs to that parameter's module. A
gate without parameters between two gates of the same enclosing module (the ReLU inside a
``features`` block) joins that enclosing module; one between top-level modules (the ReLU
between two Linear layers of a Sequential) stays outside every box. No hook in the engine is
needed, and a graph built before the drawing was asked for groups just as well.
"""
from __future__ import annotations

from typing import Optional

from ..core.tensor import Tensor


def module_of_leaf(t: Tensor) -> Optional[str]:
    """``"features.0"`` for a leaf named ``"features.0.weight"``; None for other tensors."""
    if t.op is not None or not t.name or "." not in t.name:
        return None
    return t.name.rpartition(".")[0]


def module_groups(order: list) -> dict:
    """``id(gate) -> dotted module path`` for every gate that can be placed in a module.

    ``order`` is a topological order of the graph (inputs first).
    """
    group: dict = {}
    views: dict = {}       # id -> module, for gates computed from one module's parameters only
    for t in order:
        if t.op is None:
            continue
        found = []
        only = True
        for x in t.inputs:
            m = module_of_leaf(x) if x.op is None else views.get(id(x))
            if m is not None:
                found.append(m)
            elif x.op is not None or x.requires_grad or x.data is None or x.size > 1:
                only = False   # a data input: this gate uses the parameters, it is no view
        if found:
            m = _common(found) or found[0]
            group[id(t)] = m
            if only:
                views[id(t)] = m
    _sandwiched(order, group)
    return group


def _sandwiched(order: list, group: dict) -> None:
    """A gate with no parameters joins the module common to the nearest grouped gate before it
    and the nearest after it, when they share one."""
    before: dict = {}
    for t in order:
        if t.op is None:
            continue
        if id(t) in group:
            before[id(t)] = group[id(t)]
            continue
        last = None
        for x in t.inputs:   # the most recently created grouped input is the nearest
            m = before.get(id(x))
            if m is not None and (last is None or x.seq > last[0]):
                last = (x.seq, m)
        if last is not None:
            before[id(t)] = last[1]
    after: dict = {}
    for t in reversed(order):
        if t.op is None:
            continue
        m = group.get(id(t), after.get(id(t)))
        if m is None:
            continue
        for x in t.inputs:
            if x.op is not None and id(x) not in after:
                after[id(x)] = m
    for t in order:
        if t.op is None or id(t) in group:
            continue
        a, b = before.get(id(t)), after.get(id(t))
        if a is not None and b is not None:
            common = _common([a, b])
            if common:
                group[id(t)] = common


def _common(paths: list) -> str:
    """The longest dotted prefix shared by all ``paths`` (``""`` if none)."""
    parts = [p.split(".") for p in paths]
    out = []
    for level in zip(*parts):
        if all(s == level[0] for s in level):
            out.append(level[0])
        else:
            break
    return ".".join(out)


def top(path: str) -> str:
    """The top-level module of a dotted path: ``features`` for ``features.0``."""
    return path.split(".")[0]


def ancestors(path: str) -> list:
    """``["features", "features.0"]`` for ``features.0``: the boxes a gate sits in."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
