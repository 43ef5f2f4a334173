"""Interpreting a graph with a feed: the reference semantics of ``Tensor.eval``.

Every op node is recomputed from its inputs, so Variables are read as they are now, and
placeholders come from the feed. ``cr.function`` compiles the same walk into flat code.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.tensor import Tensor, _fmt_shape
from ..core.toposort import toposort
from ..errors import GraphError, describe


def feed_value(ph: Tensor, value) -> np.ndarray:
    """``value`` checked against placeholder ``ph``: its rank and every fixed dimension."""
    arr = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
    if arr.dtype != ph._dtype:
        arr = arr.astype(ph._dtype)
    shape = ph._shape
    if arr.ndim != len(shape) or any(d is not None and d != n for d, n in zip(shape, arr.shape)):
        raise GraphError(f"placeholder '{ph.name or '?'}' of shape {_fmt_shape(shape)} was fed "
                         f"an array of shape {_fmt_shape(arr.shape)}\n"
                         f"  placeholder made at {describe(ph.site)}")
    return arr


def evaluate(outputs: Sequence[Tensor], feed: dict) -> list:
    """Values of ``outputs`` with placeholders taken from ``feed`` (placeholder -> array)."""
    byname = {k: v for k, v in feed.items() if isinstance(k, str)}
    vals: dict[int, np.ndarray] = {}
    for t in toposort(outputs):
        if t.op is None:
            if t.data is not None:
                vals[id(t)] = t.data
                continue
            if t in feed:
                v = feed[t]
            elif t.name in byname:
                v = byname[t.name]
            else:
                raise GraphError(f"placeholder '{t.name or '?'}' of shape {_fmt_shape(t._shape)}"
                                 f" is missing from the feed\n  made at {describe(t.site)}")
            vals[id(t)] = feed_value(t, v)
            continue
        args = [vals[id(x)] for x in t.inputs]
        try:
            vals[id(t)] = t.op.impl(*args, **t.params)
        except (ValueError, IndexError, TypeError) as e:
            shapes = ", ".join(_fmt_shape(a.shape) for a in args)
            raise GraphError(f"{t.op.name} failed on fed shapes {shapes}: {e}\n"
                             f"  built at {describe(t.site)}") from None
    return [np.asarray(vals[id(o)]) if not isinstance(vals[id(o)], np.ndarray) else vals[id(o)]
            for o in outputs]
