"""The backward pass as text: the classic walk-through of backprop, one block per gate.

For ``f = (x + y) * z`` at ``x=-2, y=5, z=-4``::

    [1] mul   f = q * z
        value -12.00   upstream 1.00
        input   value   local   downstream
        q        3.00   -4.00        -4.00
        z       -4.00    3.00         3.00

Each gate receives the *upstream* gradient d f / d out, multiplies it by its *local*
gradient d out / d in, and sends the product *downstream* to each input.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..core.toposort import toposort
from ..errors import GraphError
from .edges import ELEMENTWISE, edge_grads, local_grads
from .format import SMALL, fmt_array, short_site

# the backward rule in words, for gates whose local gradient is not one number per element
RULES = {
    "matmul": "dx = g @ y.T, dy = x.T @ g",
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
    "function": "the gate's own backward()",
}


def explain(tensor: Tensor) -> str:
    """The backward pass of an evaluated graph as text, one block per gate in backprop order.

    Each block names the gate and the line that built it, its forward value, the upstream
    gradient it received, its local gradient for each input (d out / d in, for elementwise
    gates; the rule in words for others) and the downstream gradient it sends to each input.
    A final table lists the gradient arriving at each Variable.

    >>> import chainrule as cr
    >>> x, y = cr.Variable(-2.0, name="x"), cr.Variable(5.0, name="y")
    >>> z = cr.Variable(-4.0, name="z")
    >>> q = x + y; q.name = "q"
    >>> f = q * z; f.name = "f"
    >>> print(cr.explain(f).splitlines()[0])
    backward pass of f = -12.00, gates in the order backprop visits them
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"cr.explain expects a Tensor, got {type(tensor).__name__}")
    if tensor.data is None:
        raise GraphError(f"cr.explain needs values, but {tensor._describe()} is symbolic: "
                         f"explain an eager computation (Variables and cr.tensor inputs)")
    order = toposort([tensor])
    names = _names(order)
    root = names[id(tensor)]
    if not tensor.requires_grad or tensor.op is None:
        return (f"{root} = {fmt_array(tensor.data)} does not depend on any Variable: "
                f"there is no backward pass to explain\n")
    seed = None
    note = ""
    if tensor.data.size != 1:
        seed = np.ones(tensor.shape, dtype=tensor.dtype)
        note = (f"(the output has {tensor.data.size} elements: the upstream gradient at it is "
                f"taken as ones, as backward(ones) would)\n")
    gr = edge_grads(tensor, seed)
    out = [f"backward pass of {root} = {fmt_array(tensor.data)}, "
           f"gates in the order backprop visits them",
           "upstream = d" + root + "/d(gate output), local = d(output)/d(input), "
           "downstream = upstream x local",
           ""]
    if note:
        out.insert(1, note.rstrip())
    gates = [t for t in reversed(order) if t.op is not None]
    for k, t in enumerate(gates, 1):
        out.extend(_block(k, t, names, gr))
        out.append("")
    leaves = [t for t in reversed(order) if t.op is None and t.requires_grad]
    if leaves:
        out.append("gradients at the leaves")
        rows = [(names[id(t)], fmt_array(t.data), _g(gr.total.get(id(t)))) for t in leaves]
        out.extend(_table(("leaf", "value", "grad"), rows, indent="    "))
    return "\n".join(out).rstrip() + "\n"


def _block(k: int, t: Tensor, names: dict, gr) -> list:
    ins = [names[id(x)] for x in t.inputs]
    head = f"[{k}] {t.op.name}   {names[id(t)]} = {_formula(t, ins)}"
    where = short_site(t.site)
    lines = [head + (f"      ({where})" if where else "")]
    upstream = gr.total.get(id(t))
    lines.append(f"    value {fmt_array(t.data, t.shape)}   upstream {_g(upstream)}")
    if t.op.vjp is None:
        lines.append("    no gradient rule: nothing flows back from here")
        return lines
    elementwise = t.op.name in ELEMENTWISE
    locals_ = local_grads(t) if elementwise else [None] * len(t.inputs)
    rows = []
    for i, x in enumerate(t.inputs):
        down = gr.edge.get((id(t), i))
        if not x.requires_grad:
            down_s = "- (no grad)"
        else:
            down_s = _g(down)
        loc = locals_[i]
        rows.append((ins[i], fmt_array(x.data, x.shape),
                     fmt_array(loc) if loc is not None else "-", down_s))
    lines.extend(_table(("input", "value", "local", "downstream"), rows, indent="    "))
    if not elementwise:
        rule = RULES.get(t.op.name, f"the vjp rule of {t.op.name}")
        lines.append(f"    local: not one number per element; downstream = {rule}")
    return lines


def _table(header: tuple, rows: list, indent: str) -> list:
    cols = list(zip(header, *rows))
    widths = [max(len(str(c)) for c in col) for col in cols]
    out = []
    for r in [header] + rows:
        cells = [str(r[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(r[1:], widths[1:])]
        out.append(indent + "   ".join(cells).rstrip())
    return out


def _g(g) -> str:
    return "-" if g is None else fmt_array(g)


def _formula(t: Tensor, ins: list) -> str:
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


def _names(order: list) -> dict:
    """A short name for every tensor: its own, or t1, t2, ... for unnamed intermediates,
    its value for a constant."""
    taken = {t.name for t in order if t.name}
    names = {}
    counter = 0
    for t in order:
        if t.name:
            names[id(t)] = t.name
            continue
        if t.op is None and t.data is not None and not t.requires_grad and t.size <= SMALL:
            names[id(t)] = fmt_array(t.data)   # a small constant is its value
            continue
        if t.op is not None:
            stem = "t"
        elif t.data is None:
            stem = "input"
        else:
            stem = "w" if t.requires_grad else "const"
        while True:
            counter += 1
            name = f"{stem}{counter}"
            if name not in taken:
                break
        taken.add(name)
        names[id(t)] = name
    return names


__all__ = ["explain"]
