"""The one topological sort every pass uses: iterative, so a million-node chain is fine."""
from __future__ import annotations

from typing import Iterable

from ..errors import GraphError


def toposort(roots: Iterable, grad_only: bool = False) -> list:
    """Tensors reachable from ``roots``, each after every tensor it was computed from.

    With ``grad_only`` the walk enters only tensors that require grad (the backward pass has
    nothing to do elsewhere). Depth-first with an explicit stack instead of recursion; a node
    stays on the stack until its inputs are done. A cycle (only possible if someone rewired
    ``inputs`` by hand) raises :class:`GraphError` instead of looping.
    """
    order: list = []
    state: dict[int, int] = {}   # id -> 1 open (its inputs are being walked), 2 done
    stack = list(roots)
    get = state.get
    while stack:
        t = stack[-1]
        tid = id(t)
        s = get(tid)
        if s is None:
            state[tid] = 1
            inputs = t.inputs
            if inputs and (not grad_only or t.requires_grad):
                for x in inputs:
                    xs = get(id(x))
                    if xs is None:
                        stack.append(x)
                    elif xs == 1:
                        raise GraphError(f"the graph has a cycle through {x._describe()}")
            continue
        stack.pop()
        if s == 1:
            state[tid] = 2
            order.append(t)
    return order
