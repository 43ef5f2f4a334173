"""The walk through a graph that explain and the HTML stepper both show: forward gate by gate,
then backward gate by gate in the order backprop visits them.

One :class:`Walk` holds everything either reader needs: the value of every node (from the
tensors, or evaluated from a feed for a static graph), a name for every node, the gradient on
every edge (:func:`~chainrule.viz.edges.edge_grads`) and who uses whom. :func:`gates` turns it
into one :class:`Gate` per backward step, with the numbers as the backprop notes write them:
upstream x local = downstream, a broadcast input's sum over the broadcast axes, and a fan-out
node's sum over its uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..core.tensor import Tensor
from ..errors import GraphError
from .edges import ELEMENTWISE, Grads, edge_grads, local_grads
from .format import SMALL, fmt_array, short_site

# the backward rule in words, for gates whose local gradient is not one number per element
RULES = {
    "matmul": "dx = g @ y.T, dy = x.T @ g",
    "linear": "dx = g @ W, dW = g.T @ x",
    "sum": "g copied back over the summed axes",
    "mean": "g / n copied back over the averaged axes",
    "max": "g routed to the maximum (split among ties)",
    "min": "g routed to the minimum (split among ties)",
    "reshape": "g reshaped back",
    "reshape_like": "g reshaped back",
    "expand_dims": "g with the new axis removed",
    "transpose": "g transposed back",
    "getitem": "g scattered back to the picked elements",
    "concatenate": "g split back into the pieces",
    "stack": "g split back into the pieces",
    "softmax": "y * (g - sum(g * y))",
    "log_softmax": "g - softmax(x) * sum(g)",
    "cross_entropy": "(softmax(logits) - onehot(labels)) * g",
    "pick": "g put back at the picked labels",
    "broadcast_like": "g summed over the broadcast axes",
    "sum_to": "g broadcast back",
    "conv2d": "dx = g correlated with the flipped kernel, dW = windows of x times g",
    "max_pool2d": "g routed to each window's maximum",
    "avg_pool2d": "g / window size copied back over each window",
    "function": "the gate's own backward()",
    "batch_norm": "through the batch statistics: (g - mean(g) - xhat mean(g xhat)) / std",
    "layer_norm": "through the statistics of each sample, as batch norm per sample",
    "embedding": "g scatter-added into the picked rows",
}


@dataclass
class Walk:
    """A graph with every value, name and edge gradient worked out once."""

    root: Tensor
    order: list                       # every node, inputs before the gates that use them
    values: dict                      # id -> ndarray (None where unknown)
    names: dict                       # id -> display name
    grads: Grads
    uses: dict                        # id -> [(gate, input index)], gates in creation order
    note: str = ""                    # how the backward pass was seeded, when not by 1

    def value(self, t: Tensor) -> Optional[np.ndarray]:
        return self.values.get(id(t))

    @property
    def gates_forward(self) -> list:
        return [t for t in self.order if t.op is not None]

    @property
    def gates_backward(self) -> list:
        """Latest-created first, as the engine's backward pass visits them (or the forward
        order reversed, for a graph whose creation order is no topological order)."""
        gates = self.gates_forward
        seq = {id(t): getattr(t, "seq", None) for t in gates}
        if all(seq[id(t)] is not None and all(seq.get(id(x), -1) < seq[id(t)]
                                               for x in t.inputs if x.op is not None)
               for t in gates):
            return sorted(gates, key=lambda t: -seq[id(t)])
        return gates[::-1]


def walk(tensor: Tensor, feed: Optional[dict] = None, values: Optional[dict] = None) -> Walk:
    """Values, names and gradients of ``tensor``'s graph; ``feed`` evaluates a static graph
    (``values``, ``id(node) -> array``, gives values already worked out)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"expected a Tensor, got {type(tensor).__name__}")
    order = forward_order(tensor)
    if values is not None:
        values = {id(t): values.get(id(t), t.data) for t in order}
    else:
        values = {id(t): t.data for t in order}
    if feed and values.get(id(tensor)) is None:
        from ..graph.evaluate import evaluate

        computed = evaluate(order, feed)
        values = {id(t): v for t, v in zip(order, computed)}
    seed, note = None, ""
    out = values[id(tensor)]
    if out is not None and out.size != 1 and tensor.requires_grad:
        seed = np.ones(out.shape, dtype=out.dtype)
        note = (f"the output has {out.size} elements: the upstream gradient at it is taken as "
                f"ones, as backward(ones) would")
    grads = edge_grads(tensor, seed, values=values)
    uses: dict = {}
    for t in order:
        for i, x in enumerate(t.inputs):
            uses.setdefault(id(x), []).append((t, i))
    return Walk(tensor, order, values, auto_names(order, values), grads, uses, note)


def forward_order(root: Tensor) -> list:
    """Every node of ``root``'s graph after its inputs, a gate's inputs taken left to right
    (``w0 * x0`` before ``w1 * x1``), as a learner reads the forward pass. Iterative."""
    order: list = []
    state: dict = {}
    stack = [root]
    while stack:
        t = stack[-1]
        s = state.get(id(t))
        if s is None:
            state[id(t)] = 1
            stack.extend(x for x in reversed(t.inputs) if id(x) not in state)
            continue
        stack.pop()
        if s == 1:
            state[id(t)] = 2
            order.append(t)
    return order


def auto_names(order: list, values: Optional[dict] = None) -> dict:
    """A short name for every tensor: its own, its value for a small constant, else the next
    of ``w1, w2, ...`` (Variables), ``input1, ...`` (placeholders), ``const1, ...`` and
    ``t1, t2, ...`` (intermediates), each counted in the order the tensors were created."""
    taken = {t.name for t in order if t.name}
    names: dict = {}
    counters: dict = {}
    for t in sorted(order, key=_created):
        if t.name:
            names[id(t)] = t.name
            continue
        data = values.get(id(t), t.data) if values is not None else t.data
        if t.op is None and data is not None and not t.requires_grad and data.size <= SMALL:
            names[id(t)] = fmt_array(data)   # a small constant is its value
            continue
        if t.op is not None:
            stem = "t"
        elif t.data is None:
            stem = "input"
        else:
            stem = "w" if t.requires_grad else "const"
        while True:
            counters[stem] = counters.get(stem, 0) + 1
            name = f"{stem}{counters[stem]}"
            if name not in taken:
                break
        taken.add(name)
        names[id(t)] = name
    return names


def _created(t: Tensor) -> int:
    # a lifted Python number may be built without a creation number; it is named by its value
    return getattr(t, "seq", -1)


# -- one backward step ---------------------------------------------------------------------
@dataclass
class Wire:
    """One input of a gate, as the backward step shows it."""

    name: str
    value: Optional[np.ndarray]
    shape: tuple
    needs_grad: bool
    local: Optional[np.ndarray] = None        # d out / d input, elementwise gates only
    product: Optional[np.ndarray] = None      # upstream x local, before any broadcast sum
    summed_axes: tuple = ()                   # axes summed because the input was broadcast
    downstream: Optional[np.ndarray] = None   # what flows to the input


@dataclass
class Branch:
    """One use of a node: the gate it feeds, and the gradient that gate sends back."""

    gate: str
    grad: np.ndarray


@dataclass
class Gate:
    """One gate in the backward pass (and, with only ``value``, the forward pass)."""

    k: int
    node: Tensor
    op: str
    name: str
    formula: str
    site: str
    value: Optional[np.ndarray]
    upstream: Optional[np.ndarray]
    branches: list = field(default_factory=list)   # the uses summed into upstream (fan-out)
    wires: list = field(default_factory=list)
    elementwise: bool = True
    rule: str = ""
    has_rule: bool = True


def gate_steps(w: Walk) -> list:
    """One :class:`Gate` per gate, in the order backprop visits them."""
    return [gate_step(w, t, k) for k, t in enumerate(w.gates_backward, 1)]


def gate_step(w: Walk, t: Tensor, k: int = 0) -> Gate:
    ins = [w.names[id(x)] for x in t.inputs]
    gate = Gate(k, t, t.op.name, w.names[id(t)], formula(t, ins), short_site(t.site),
                w.value(t), w.grads.total.get(id(t)), branches(w, t),
                has_rule=t.op.vjp is not None)
    gate.elementwise = t.op.name in ELEMENTWISE
    if not gate.elementwise:
        gate.rule = RULES.get(t.op.name, f"the vjp rule of {t.op.name}")
    locals_ = local_grads(t, w.values) if gate.elementwise and gate.has_rule \
        else [None] * len(t.inputs)
    for i, x in enumerate(t.inputs):
        xv = w.value(x)
        wire = Wire(ins[i], xv, tuple(x.shape), bool(x.requires_grad) and gate.has_rule)
        key = (id(t), i)
        wire.downstream = w.grads.edge.get(key)
        full = w.grads.summed.get(key)
        if full is not None:
            wire.summed_axes = summed_axes(full.shape, x.shape)
        if gate.elementwise:
            wire.local = locals_[i]
            if wire.downstream is not None:
                wire.product = full if full is not None else wire.downstream
        elif full is not None:
            wire.product = full
        gate.wires.append(wire)
    return gate


def branches(w: Walk, t: Tensor) -> list:
    """The gradients ``t``'s uses send back, in the order backprop adds them, when there are
    two or more (a fan-out: the gradients of the branches add up)."""
    found = []
    for gate, i in reversed(w.uses.get(id(t), [])):
        g = w.grads.edge.get((id(gate), i))
        if g is not None:
            found.append(Branch(w.names[id(gate)], g))
    return found if len(found) > 1 else []


def leaf_rows(w: Walk) -> list:
    """``(name, value, total gradient, branches)`` for every leaf that takes a gradient."""
    return [(w.names[id(t)], w.value(t), w.grads.total.get(id(t)), branches(w, t))
            for t in reversed(w.order) if t.op is None and t.requires_grad]


def summed_axes(full: tuple, shape: tuple) -> tuple:
    """The axes of ``full`` that summing a gradient back to ``shape`` adds up."""
    lead = len(full) - len(shape)
    return tuple(range(lead)) + tuple(lead + j for j, n in enumerate(shape)
                                      if n == 1 and full[lead + j] != 1)


def axes_words(axes: tuple) -> str:
    return ("axis " if len(axes) == 1 else "axes ") + ", ".join(str(a) for a in axes)


def formula(t: Tensor, ins: list) -> str:
    """``q * z`` for operator gates (their code template), ``exp(t5)`` for the others."""
    code = t.op.code
    if isinstance(code, str) and "(" not in code:
        try:
            return code.format(*ins, **(t.params or {}))
        except (KeyError, IndexError, ValueError):
            pass
    params = t.params or {}
    name = params["fn"].name if t.op.name == "function" else t.op.name
    args = list(ins) + [f"{k}={v!r}" for k, v in params.items()
                        if k not in ("fn", "index") and not isinstance(v, np.ndarray)]
    return f"{name}({', '.join(args)})"


def require_values(w: Walk, what: str) -> None:
    if w.value(w.root) is None:
        raise GraphError(f"{what} needs values, but {w.root._describe()} is symbolic: give "
                         f"{what}(tensor, feed={{placeholder: array, ...}}), or explain an eager "
                         f"computation (Variables and cr.tensor inputs)")
