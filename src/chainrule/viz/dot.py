"""Graph -> DOT text, as in the classic backprop circuit diagrams. Pure: imports no Graphviz.

Gates are circles labelled with the op (``*``, ``+``, ``exp``); Variables are boxes,
placeholders dashed boxes, constants small plain numbers. Each edge (a wire) carries its
forward value in green over its gradient in red; the output wire shows the result's value and
its gradient, 1.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.tensor import Tensor
from ..core.toposort import toposort
from ..errors import ChainruleError
from .edges import edge_grads
from .format import fmt_array, fmt_shape, short_site

GREEN = "#1a7f37"
RED = "#cf222e"
GREY = "#57606a"
_RANKDIRS = ("LR", "RL", "TB", "BT")


def draw(tensor: Tensor, path=None, *, values: bool = True, grads: bool = True,
         expand: bool = False, rankdir: str = "LR") -> str:
    """The computational graph of ``tensor`` as Graphviz DOT text, optionally written to ``path``.

    Parameters
    ----------
    tensor : Tensor
        The output; its graph is everything it was computed from.
    path : str or Path, optional
        ``.dot`` writes the DOT text; ``.svg``, ``.png`` (or any Graphviz format) also renders
        it with Graphviz, which must be installed (``apt-get install graphviz``,
        ``pip install graphviz``). The DOT text is always written next to ``path``; if
        Graphviz is missing, :class:`chainrule.ChainruleError` says how to install it.
    values, grads : bool
        Label each edge with its forward value (green) and its gradient (red). Gradients are
        those of a one-element output with respect to every intermediate, computed afresh:
        the drawing works before and after ``backward()``.
    expand : bool
        Draw composite gates (``sigmoid``) as the primitive gates they stand for.
    rankdir : str
        Graphviz layout direction: ``"LR"`` (inputs left, output right) or ``"TB"``, ...

    Returns
    -------
    str
        The DOT source.

    Examples
    --------
    >>> import chainrule as cr
    >>> x, y = cr.Variable(-2.0, name="x"), cr.Variable(5.0, name="y")
    >>> z = cr.Variable(-4.0, name="z")
    >>> f = (x + y) * z
    >>> src = cr.draw(f)
    >>> src.startswith("digraph") and "-12.00" in src
    True
    """
    text = to_dot(tensor, values=values, grads=grads, expand=expand, rankdir=rankdir)
    if path is not None:
        _write(text, Path(os.fspath(path)))
    return text


def _write(text: str, path: Path) -> None:
    fmt = path.suffix.lower().lstrip(".")
    if fmt in ("dot", "gv"):
        path.write_text(text)
        return
    if not fmt:
        raise ChainruleError(f"cr.draw: cannot tell the format of {str(path)!r}: give it a "
                             f"suffix such as .svg, .png or .dot")
    from .render import render

    # the DOT source is always written beside the picture: it is the part that needs no
    # Graphviz, can be diffed, and re-rendered in any format later
    dot_path = path.with_suffix(".dot")
    dot_path.write_text(text)
    try:
        data = render(text, fmt)
    except ChainruleError as exc:
        raise ChainruleError(f"cr.draw: cannot write {path}: {exc}. The DOT source is in "
                             f"{dot_path}; once Graphviz is installed, "
                             f"`dot -T{fmt} {dot_path} -o {path}` renders it") from None
    path.write_bytes(data)


def to_dot(tensor: Tensor, *, values: bool = True, grads: bool = True, expand: bool = False,
           rankdir: str = "LR") -> str:
    """DOT text of ``tensor``'s graph; see :func:`draw` for the parameters."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"cr.draw expects a Tensor, got {type(tensor).__name__}")
    if rankdir not in _RANKDIRS:
        raise ChainruleError(f"cr.draw: rankdir must be one of {', '.join(_RANKDIRS)}, "
                             f"got {rankdir!r}")
    if expand:
        from .expand import expanded

        tensor = expanded(tensor)
    order = _display_order(toposort([tensor]), tensor)
    gr = edge_grads(tensor) if grads else None
    node_id = {id(t): f"n{i}" for i, t in enumerate(order)}
    fan_out: dict[int, int] = {}
    for t in order:
        for x in t.inputs:
            fan_out[id(x)] = fan_out.get(id(x), 0) + 1

    lines = [
        "digraph chainrule {",
        f'  graph [rankdir={rankdir}, fontname="Helvetica", nodesep=0.35, ranksep=0.55, '
        f'bgcolor="white"];',
        '  node [fontname="Helvetica", fontsize=12, color="#444444"];',
        '  edge [fontname="Helvetica", fontsize=10, color="#666666", arrowsize=0.6];',
    ]
    for t in order:
        total = gr.total.get(id(t)) if gr is not None and fan_out.get(id(t), 0) > 1 else None
        lines.append(f"  {node_id[id(t)]} {_node_attrs(t, total)};")
    for t in order:
        for i, x in enumerate(t.inputs):
            g = gr.edge.get((id(t), i)) if gr is not None else None
            label = _edge_label(x, g, values)
            attrs = f" [label={label}]" if label else ""
            lines.append(f"  {node_id[id(x)]} -> {node_id[id(t)]}{attrs};")
    # the output wire: the result's value and the gradient the backward pass starts from
    out_name = tensor.name or "output"
    lines.append(f'  out [shape=plaintext, fontsize=12, label={_html(_esc(out_name))}];')
    seed = gr.seed if gr is not None else None
    label = _wire_label(tensor, seed, values, show_name=False)
    attrs = f" [label={label}]" if label else ""
    lines.append(f"  {node_id[id(tensor)]} -> out{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _display_order(order: list, root: Tensor) -> list:
    """The nodes in the order Graphviz should meet them, so inputs stack top to bottom as
    they are written (``w0 * x0`` draws w0 above x0): the order a walk from the output that
    takes each gate's inputs left to right first reaches them. (DOT needs no topological
    order; this only seeds Graphviz's crossing minimisation.)"""
    rank = {}
    stack = [root]
    while stack:  # preorder, first input first: only to number the nodes for display
        t = stack.pop()
        if id(t) in rank:
            continue
        rank[id(t)] = len(rank)
        stack.extend(reversed(t.inputs))
    return sorted(order, key=lambda t: rank[id(t)])


# -- nodes -------------------------------------------------------------------------------------
def op_label(t: Tensor) -> str:
    """The short gate label: ``*``, ``+``, ``exp``, ``**2``, ``sum axis=1``, a Function's name."""
    op = t.op
    params = t.params or {}
    if op.name == "function":
        return params["fn"].name
    if op.name == "powc":
        return f"**{fmt_number_param(params.get('p'))}"
    shown = []
    for k, v in params.items():
        if v is None or v is False or isinstance(v, np.ndarray) or k in ("index",):
            continue
        if isinstance(v, (bool, int, float, str, tuple, np.integer, np.floating)):
            shown.append(f"{k}={v}")
    return " ".join([op.label] + shown)


def fmt_number_param(p) -> str:
    if isinstance(p, float) and p.is_integer():
        return str(int(p))
    return str(p)


def _node_attrs(t: Tensor, total_grad) -> str:
    tip = f', tooltip="{_dot_str(short_site(t.site))}"' if t.site else ""
    if t.op is not None:
        # a named result shows its name on its outgoing wire (or the output), not here
        label = _esc(op_label(t))
        short = len(op_label(t)) <= 3
        shape = "circle" if short else "ellipse"
        size = ", width=0.45, fixedsize=true" if short else ""
        return (f'[shape={shape}{size}, style=filled, fillcolor="#f6f8fa", '
                f'label={_html(label)}{tip}]')
    if t.data is None:  # placeholder: a value that will be fed
        label = f"{_esc(t.name or 'placeholder')}<br/>" \
                f'<font point-size="9" color="{GREY}">{_esc(fmt_shape(t.shape))}</font>'
        return f'[shape=box, style="dashed,rounded", label={_html(label)}{tip}]'
    if t.requires_grad or t.name:  # a Variable (or a named input)
        label = _esc(t.name or "Variable")
        if t.shape:
            label += f'<br/><font point-size="9" color="{GREY}">{_esc(fmt_shape(t.shape))}</font>'
        if total_grad is not None:
            label += f'<br/><font point-size="9" color="{RED}">&#8721; grad ' \
                     f'{_esc(fmt_array(total_grad))}</font>'
        fill = "#ddf4ff" if t.requires_grad else "#ffffff"
        return f'[shape=box, style="rounded,filled", fillcolor="{fill}", label={_html(label)}{tip}]'
    # a constant (a Python number lifted into the graph, or data that needs no gradient)
    return (f'[shape=plaintext, fontsize=10, fontcolor="{GREY}", '
            f'label={_html(_esc(fmt_array(t.data)))}]')


# -- edges -------------------------------------------------------------------------------------
def _edge_label(x: Tensor, g, values: bool) -> Optional[str]:
    if x.op is None and x.data is not None and not x.requires_grad and not x.name:
        return None  # a constant shows its value in its node, and takes no gradient
    return _wire_label(x, g, values, show_name=x.op is not None)


def _wire_label(x: Tensor, g, values: bool, show_name: bool) -> Optional[str]:
    rows = []
    if show_name and x.name:
        rows.append(f'<font color="{GREY}">{_esc(x.name)}</font>')
    if values:
        if x.data is not None:
            rows.append(f'<font color="{GREEN}">{_esc(fmt_array(x.data))}</font>')
        else:
            rows.append(f'<font color="{GREY}">{_esc(fmt_shape(x.shape))}</font>')
    if g is not None:
        rows.append(f'<font color="{RED}">{_esc(fmt_array(g))}</font>')
    if not rows:
        return None
    return _html("<br/>".join(rows))


def _esc(s: str) -> str:
    return html.escape(str(s), quote=False)


def _html(inner: str) -> str:
    return f"<{inner}>"


def _dot_str(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
