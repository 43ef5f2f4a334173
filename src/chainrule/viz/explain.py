"""The backward pass as text: the classic walk-through of backprop, one block per gate.

For ``f = (x + y) * z`` at ``x=-2, y=5, z=-4``::

    [1] mul   f = q * z
        value -12.00   upstream 1.00
        input   value   local   downstream
        q        3.00   -4.00        -4.00
        z       -4.00    3.00         3.00

Each gate receives the *upstream* gradient d f / d out, multiplies it by its *local*
gradient d out / d in, and sends the product *downstream* to each input. Where an input was
broadcast, the product is summed back over the broadcast axes; where a node feeds several
gates, the gradients of its uses add up. Both sums are written out with their numbers.

In a terminal it is text; in Jupyter the same walk shows as an HTML table.
"""
from __future__ import annotations

import html
from typing import Optional

import numpy as np

from ..core.tensor import Tensor
from ..errors import GraphError
from .format import FULL, SMALL, fmt_array, fmt_block, fmt_grad, fmt_shape, summary
from .walk import Gate, Walk, axes_words, gate_steps, leaf_rows, walk

RULES_NOTE = "local: not one number per element; downstream = "


class Explanation(str):
    """The text of :func:`explain`; Jupyter shows it as a table (``_repr_html_``), a terminal
    as the text itself."""

    __slots__ = ("_html",)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self._html


def explain(tensor: Tensor, feed: Optional[dict] = None) -> Explanation:
    """The backward pass of an evaluated graph as text, one block per gate in backprop order.

    Each block names the gate and the line that built it, its forward value, the upstream
    gradient it received, its local gradient for each input (d out / d in, for elementwise
    gates; the rule in words for others) and the downstream gradient it sends to each input.
    Tensors of up to 64 elements are printed in full. A broadcast input's sum over the
    broadcast axes and a fan-out's sum over its uses are written out. A final table lists the
    gradient arriving at each Variable.

    Parameters
    ----------
    tensor : Tensor
        The output. Its graph must have values: an eager computation, or a static graph with
        ``feed``.
    feed : dict, optional
        Placeholder (or its name) -> array, to explain a static graph at those inputs.

    Returns
    -------
    Explanation
        A ``str`` (print it); Jupyter displays it as an HTML table.

    Examples
    --------
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
    if tensor.data is None and not feed:
        raise GraphError(f"cr.explain needs values, but {tensor._describe()} is symbolic: "
                         f"give cr.explain(tensor, feed={{placeholder: array, ...}}), or "
                         f"explain an eager computation (Variables and cr.tensor inputs)")
    w = walk(tensor, feed)
    text, table = _text(w), _html_table(w)
    out = Explanation(text)
    out._html = table
    return out


# -- text ------------------------------------------------------------------------------------
def _text(w: Walk) -> str:
    root = w.names[id(w.root)]
    value = w.value(w.root)
    if not w.root.requires_grad or w.root.op is None:
        return (f"{root} = {_inline(value)} does not depend on any Variable: "
                f"there is no backward pass to explain\n")
    out = [f"backward pass of {root} = {_inline(value)}, "
           f"gates in the order backprop visits them"]
    if w.note:
        out.append(f"({w.note})")
    out += ["upstream = d" + root + "/d(gate output), local = d(output)/d(input), "
            "downstream = upstream x local", ""]
    for gate in gate_steps(w):
        out.extend(_block(gate))
        out.append("")
    leaves = leaf_rows(w)
    if leaves:
        out.append("gradients at the leaves")
        rows, below = [], []
        for name, v, g, branches in leaves:
            rows.append((name, _cell(v, name, "value", below),
                         _cell(g, name, "grad", below, grad=True)))
        out.extend(_table(("leaf", "value", "grad"), rows, indent="    "))
        out.extend(below)
        for name, v, g, branches in leaves:
            if branches:
                out.append(f"    {name} feeds {len(branches)} gates: its gradient is the sum "
                           f"of theirs, {_sum(branches)} = {_inline(g, grad=True)}")
    return "\n".join(out).rstrip() + "\n"


def _block(gate: Gate) -> list:
    head = f"[{gate.k}] {gate.op}   {gate.name} = {gate.formula}"
    lines = [head + (f"      ({gate.site})" if gate.site else "")]
    below: list = []
    lines.append(f"    value {_cell(gate.value, gate.name, 'value', below)}   "
                 f"upstream {_cell(gate.upstream, gate.name, 'upstream', below, grad=True)}")
    if gate.branches:
        lines.append(f"    upstream = {_sum(gate.branches)}: {gate.name} feeds "
                     f"{len(gate.branches)} gates, and their gradients add")
    if not gate.has_rule:
        lines.extend(below)
        lines.append("    no gradient rule: nothing flows back from here")
        return lines
    rows = []
    for wire in gate.wires:
        value = _cell(wire.value, wire.name, "value", below, shape=wire.shape)
        local = _cell(wire.local, wire.name, "local", below) if wire.local is not None else "-"
        down = _cell(wire.downstream, wire.name, "downstream", below, grad=True) \
            if wire.needs_grad else "- (no grad)"
        rows.append((wire.name, value, local, down))
    lines.extend(_table(("input", "value", "local", "downstream"), rows, indent="    "))
    lines.extend(below)
    for wire in gate.wires:
        if wire.summed_axes and wire.downstream is not None:
            lines.append(f"    {wire.name} was broadcast from {fmt_shape(wire.shape)} to "
                         f"{fmt_shape(wire.product.shape)}: upstream x local is summed over "
                         f"{axes_words(wire.summed_axes)} to give its downstream")
            lines.extend(_labelled("upstream x local", wire.product, grad=True))
            lines.extend(_labelled(f"summed over {axes_words(wire.summed_axes)}",
                                   wire.downstream, grad=True))
    if not gate.elementwise:
        lines.append(f"    {RULES_NOTE}{gate.rule}")
    return lines


def _cell(a, name: str, what: str, below: list, *, grad: bool = False, shape=None) -> str:
    """A table cell: the number(s) inline when few, else a pointer to the full tensor printed
    below the table (up to 64 elements), else shape and summary."""
    if a is None:
        return "-" if shape is None else fmt_shape(shape)
    a = np.asarray(a)
    if _short(a):
        return fmt_array(a)
    if a.size <= FULL:
        below.extend(_labelled(f"{name} {what} {fmt_shape(a.shape)}", a))
        return f"{fmt_shape(a.shape)} below"
    return fmt_grad(a) if grad else f"{fmt_shape(a.shape)} {summary(a)}"


def _labelled(label: str, a, grad: bool = False) -> list:
    a = np.asarray(a)
    if a.size > FULL:
        return [f"      {label}: {fmt_grad(a) if grad else summary(a)}"]
    block = fmt_block(a)
    if len(block) == 1:
        return [f"      {label}: {block[0]}"]
    return [f"      {label}:"] + ["        " + line for line in block]


def _inline(a, grad: bool = False) -> str:
    if a is None:
        return "-"
    a = np.asarray(a)
    if _short(a):
        return fmt_array(a)
    return fmt_grad(a) if grad else f"{fmt_shape(a.shape)} {summary(a)}"


def _short(a: np.ndarray) -> bool:
    """Few enough numbers to sit in a table cell: a scalar or a short vector."""
    return a.ndim == 0 or a.ndim == 1 and a.size <= SMALL


def _sum(branches: list) -> str:
    terms = []
    for b in branches:
        t = _inline(b.grad, grad=True)
        terms.append(f"({t})" if terms and t.startswith("-") else t)
    return " + ".join(f"{t} (from {b.gate})" for t, b in zip(terms, branches))


def _table(header: tuple, rows: list, indent: str) -> list:
    cols = list(zip(header, *rows))
    widths = [max(len(str(c)) for c in col) for col in cols]
    out = []
    for r in [header] + rows:
        cells = [str(r[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(r[1:], widths[1:])]
        out.append(indent + "   ".join(cells).rstrip())
    return out


# -- HTML (Jupyter) ----------------------------------------------------------------------------
_CSS = ("<style>.cr-explain td,.cr-explain th{padding:2px 8px;text-align:right;"
        "vertical-align:top;font-family:monospace}.cr-explain .cr-gate td{text-align:left;"
        "background:#f6f8fa;font-weight:bold}.cr-explain .cr-note td{text-align:left;"
        "color:#57606a}.cr-explain pre{margin:0}.cr-explain .g{color:#cf222e}"
        ".cr-explain .v{color:#1a7f37}</style>")


def _html_table(w: Walk) -> str:
    root = w.names[id(w.root)]
    if not w.root.requires_grad or w.root.op is None:
        return f"<pre>{html.escape(_text(w))}</pre>"
    rows = [f'<tr class="cr-note"><td colspan="5">backward pass of {_e(root)} = '
            f'{_h(w.value(w.root), "v")}, gates in the order backprop visits them. '
            f'upstream = d{_e(root)}/d(gate output), local = d(output)/d(input), '
            f'downstream = upstream &times; local{" (" + _e(w.note) + ")" if w.note else ""}'
            f'</td></tr>',
            "<tr><th>gate</th><th>input</th><th>value</th><th>local</th>"
            "<th>downstream</th></tr>"]
    for gate in gate_steps(w):
        where = f" &nbsp; <small>{_e(gate.site)}</small>" if gate.site else ""
        rows.append(f'<tr class="cr-gate"><td colspan="5">[{gate.k}] {_e(gate.op)} &nbsp; '
                    f'{_e(gate.name)} = {_e(gate.formula)}{where}</td></tr>')
        rows.append(f"<tr><td>{_e(gate.name)}</td><td>output</td>"
                    f"<td>{_h(gate.value, 'v')}</td><td>upstream</td>"
                    f"<td>{_h(gate.upstream, 'g')}</td></tr>")
        if gate.branches:
            rows.append(f'<tr class="cr-note"><td colspan="5">upstream = '
                        f'{_e(_sum(gate.branches))}: {_e(gate.name)} feeds '
                        f'{len(gate.branches)} gates, and their gradients add</td></tr>')
        for wire in gate.wires:
            down = _h(wire.downstream, "g") if wire.needs_grad else "- (no grad)"
            rows.append(f"<tr><td></td><td>{_e(wire.name)}</td><td>{_h(wire.value, 'v')}</td>"
                        f"<td>{_h(wire.local, '')}</td><td>{down}</td></tr>")
            if wire.summed_axes and wire.downstream is not None:
                rows.append(f'<tr class="cr-note"><td colspan="5">{_e(wire.name)} was '
                            f'broadcast from {fmt_shape(wire.shape)} to '
                            f'{fmt_shape(wire.product.shape)}: upstream &times; local '
                            f'{_h(wire.product, "g")} summed over '
                            f'{axes_words(wire.summed_axes)}</td></tr>')
        if not gate.elementwise:
            rows.append(f'<tr class="cr-note"><td colspan="5">{RULES_NOTE}{_e(gate.rule)}'
                        f'</td></tr>')
    leaves = leaf_rows(w)
    if leaves:
        rows.append('<tr class="cr-gate"><td colspan="5">gradients at the leaves</td></tr>')
        for name, v, g, branches in leaves:
            rows.append(f"<tr><td>{_e(name)}</td><td>leaf</td><td>{_h(v, 'v')}</td>"
                        f"<td>grad</td><td>{_h(g, 'g')}</td></tr>")
            if branches:
                rows.append(f'<tr class="cr-note"><td colspan="5">{_e(name)} feeds '
                            f'{len(branches)} gates: {_e(_sum(branches))}</td></tr>')
    return _CSS + '<table class="cr-explain">' + "".join(rows) + "</table>"


def _h(a, cls: str) -> str:
    if a is None:
        return "-"
    a = np.asarray(a)
    if _short(a):
        text = fmt_array(a)
    elif a.size <= FULL:
        return f'<pre class="{cls}">{_e(chr(10).join(fmt_block(a)))}</pre>'
    else:
        text = fmt_grad(a) if cls == "g" else f"{fmt_shape(a.shape)} {summary(a)}"
    return f'<span class="{cls}">{_e(text)}</span>'


def _e(s) -> str:
    return html.escape(str(s), quote=False)


__all__ = ["explain", "Explanation"]
