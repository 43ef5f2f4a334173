"""State that compiled code reads at call time and writes as a side effect: module buffers.

A compiled function reads a Variable when it is called (it requires grad) and captures any
other leaf as a constant when it is compiled. A module's buffers (batch norm's running mean
and variance, its step count) record no gradient, yet change as training goes on, so they are
marked here and read at call time like Variables.

In training mode, batch norm also *writes* its running statistics. In eager code the op does
that in place; in a graph the new values are tensors computed from the batch, registered here
as side updates of the node that computes the output (:func:`add_side_updates`). Compiling
anything that reaches that node (``cr.function``, ``opt.minimize``) adds them to the step's
updates, so the compiled step keeps the running statistics as the eager one does.

Both registries are keyed by ``id`` with weak references: a Tensor's ``==`` is an op, so
tensors cannot be set members, and a dead graph must not be kept alive by its side updates.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

__all__ = ["add_side_updates", "is_state", "mark_state", "read", "recorded", "side_updates"]

_STATE: dict[int, weakref.ref] = {}
_SIDE: dict[int, tuple[weakref.ref, list]] = {}


def mark_state(tensor: Any) -> Any:
    """Mark a leaf as state that compiled code reads at call time; return it."""
    key = id(tensor)
    _STATE[key] = weakref.ref(tensor, lambda _, key=key: _STATE.pop(key, None))
    return tensor


def is_state(tensor: Any) -> bool:
    """Whether ``tensor`` was marked with :func:`mark_state`."""
    ref = _STATE.get(id(tensor))
    return ref is not None and ref() is tensor


def add_side_updates(node: Any, pairs: Iterable[tuple[Any, Any]]) -> None:
    """Computing ``node`` in compiled code also writes each ``(state, new_value)`` pair."""
    key = id(node)
    entry = _SIDE.get(key)
    if entry is None or entry[0]() is not node:
        entry = (weakref.ref(node, lambda _, key=key: _SIDE.pop(key, None)), [])
        _SIDE[key] = entry
    entry[1].extend(pairs)


def side_updates(nodes: Iterable[Any]) -> list[tuple[Any, Any]]:
    """The side updates registered on any of ``nodes``, in the order given, each state once
    (the last registered value wins, as when a layer runs twice in one step)."""
    found: dict[int, tuple[Any, Any]] = {}
    for node in nodes:
        entry = _SIDE.get(id(node))
        if entry is not None and entry[0]() is node:
            for state, value in entry[1]:
                found.pop(id(state), None)
                found[id(state)] = (state, value)
    return list(found.values())


def recorded(prim: Any, *args: Any, **params: Any) -> Any:
    """``prim(*args)`` recorded as a graph node even when every input has a value now.

    For an update whose new value is computed from state alone (batch norm's step count,
    ``n + 1``): applied eagerly it would be folded into a constant, and a compiled step would
    write the same number on every call.
    """
    from ..ops.registry import _apply_symbolic

    return _apply_symbolic(prim, args, params)


def read(state: Any) -> Any:
    """A state leaf as a graph node: the value it holds when compiled code runs.

    An op on a leaf that has a value runs at once and its result is a constant of any graph
    built on it, so ``running_var + eps`` would be frozen at build time. Reading the state
    through this node keeps every op on it in the graph; the compiler drops the node itself
    (it is ``state * 1``) and uses the state's own name.
    """
    from ..ops import elementwise as ew

    return recorded(ew.mul, state, 1)
