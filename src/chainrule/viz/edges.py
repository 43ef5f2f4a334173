"""The gradient on every edge of an evaluated graph, for drawings and ``explain``.

``backward()`` keeps only the leaves' gradients and marks the graph as spent; a drawing wants
the gradient on every wire. This walk runs the same VJP rules on NumPy arrays, reduces
broadcast gradients to each input's shape as the engine does, and touches no ``.grad`` and no
``_consumed`` flag, so it works before and after ``backward()`` and as often as asked.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .._config import no_grad
from ..core.tensor import Tensor
from ..core.toposort import toposort
from ..ops.namespace import A


class Grads(NamedTuple):
    """``total[id(t)]``: the whole gradient reaching ``t`` (the upstream of its gate);
    ``edge[(id(t), i)]``: what ``t``'s gate sends down to its ``i``-th input;
    ``summed[(id(t), i)]``: that gradient before it was summed back to a broadcast input's
    shape (only for inputs the gate broadcast)."""

    total: dict
    edge: dict
    seed: Optional[np.ndarray]
    summed: dict = {}


def edge_grads(root: Tensor, seed=None, values: Optional[dict] = None) -> Grads:
    """Gradients of ``root`` on every edge, as NumPy arrays (empty when they cannot be known).

    ``seed`` is the gradient at ``root``; by default 1 for a one-element ``root`` that requires
    grad. ``values`` maps ``id(tensor)`` to its value for a static graph evaluated with a feed;
    otherwise a symbolic ``root`` (no value) has no numeric gradients.

    >>> import chainrule as cr
    >>> x, y = cr.Variable(3.0), cr.Variable(-4.0)
    >>> f = x * y
    >>> g = edge_grads(f)
    >>> float(g.edge[(id(f), 0)]), float(g.total[id(y)])
    (-4.0, 3.0)
    """
    value = _value_of(values)
    out = value(root)
    if out is None or not root.requires_grad:
        return Grads({}, {}, None)
    if seed is None:
        if out.size != 1:
            return Grads({}, {}, None)
        seed = np.ones(out.shape, dtype=out.dtype)
    seed = np.asarray(seed, dtype=out.dtype)
    total: dict = {id(root): seed}
    edge: dict = {}
    summed: dict = {}
    with no_grad():
        for t in reversed(toposort([root])):
            g = total.get(id(t))
            if g is None or t.op is None or t.op.vjp is None or value(t) is None:
                continue
            xs = t.inputs
            datas = [value(x) for x in xs]
            if not any(x.requires_grad for x in xs) or any(d is None for d in datas):
                continue
            gxs = t.op.vjps(A, g, value(t), datas, t.params, [x.requires_grad for x in xs])
            for i, (x, gx, d) in enumerate(zip(xs, gxs, datas)):
                if gx is None or not x.requires_grad:
                    continue
                gx = np.asarray(gx)
                if gx.shape != d.shape:
                    summed[(id(t), i)] = gx
                    gx = A.sum_to(gx, d.shape)
                edge[(id(t), i)] = gx
                prev = total.get(id(x))
                total[id(x)] = gx if prev is None else prev + gx
    return Grads(total, edge, seed, summed)


def _value_of(values: Optional[dict]):
    if values is None:
        return lambda t: t.data
    return lambda t: values.get(id(t), t.data)


def local_grads(t: Tensor, values: Optional[dict] = None) -> list:
    """d out / d input, elementwise, for each input of ``t``'s gate (``None`` where unknown).

    The VJP rule with an upstream of ones gives exactly the local derivative for an
    elementwise gate; for others (matmul, sum, ...) that product is not a local derivative,
    so callers should only use this for :data:`ELEMENTWISE` gates.
    """
    value = _value_of(values)
    out = value(t)
    if t.op is None or t.op.vjp is None or out is None:
        return [None] * len(t.inputs)
    datas = [value(x) for x in t.inputs]
    if any(d is None for d in datas):
        return [None] * len(t.inputs)
    with no_grad():
        gxs = t.op.vjps(A, np.ones_like(out), out, datas, t.params)
    return [None if gx is None else np.broadcast_to(np.asarray(gx), out.shape)
            for gx in gxs]


# gates whose output element i depends only on input element i (after broadcasting)
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "neg", "powc", "pow", "exp", "log", "sqrt", "tanh",
    "sigmoid", "relu", "abs", "maximum", "minimum", "where", "clip", "cast",
    "sin", "cos", "log1p", "expm1", "sign", "clamp", "leaky_relu", "gelu",
})
