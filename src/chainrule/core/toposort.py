"""The one topological sort every pass uses: iterative, so a million-node chain is fine."""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from ..errors import GraphError


def toposort(roots: Iterable, follow: Optional[Callable] = None) -> list:
    """Tensors reachable from ``roots``, each after every tensor it was computed from.

    ``follow(t)`` says whether to walk into ``t``'s inputs (default: always). Depth-first with
    an explicit stack instead of recursion; a cycle (only possible if someone rewired
    ``inputs`` by hand) raises :class:`GraphError` instead of looping.
    """
    order: list = []
    state: dict[int, int] = {}   # id -> 1 open (on the current path), 2 done
    stack = [(r, False) for r in roots]
    while stack:
        t, closing = stack.pop()
        tid = id(t)
        if closing:
            state[tid] = 2
            order.append(t)
            continue
        s = state.get(tid)
        if s == 2:
            continue
        if s == 1:
            raise GraphError(f"the graph has a cycle through {t._describe()}")
        state[tid] = 1
        stack.append((t, True))
        inputs = t.inputs
        if inputs and (follow is None or follow(t)):
            for x in inputs:
                if state.get(id(x)) != 2:
                    stack.append((x, False))
    return order
