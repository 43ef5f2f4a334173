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
from typing import NamedTuple, Optional

import numpy as np

from ..core.tensor import Tensor
from ..core.toposort import toposort
from ..errors import ChainruleError
from .edges import edge_grads
from .format import fmt_array, fmt_grad, fmt_shape, short_site

GREEN = "#1a7f37"
RED = "#cf222e"
GREY = "#57606a"
_RANKDIRS = ("LR", "RL", "TB", "BT")


def draw(tensor: Tensor, path=None, *, values: bool = True, grads: bool = True,
         expand: bool = False, rankdir: Optional[str] = None, group: Optional[str] = None,
         feed: Optional[dict] = None) -> str:
    """The computational graph of ``tensor`` as Graphviz DOT text, optionally written to ``path``.

    Parameters
    ----------
    tensor : Tensor
        The output; its graph is everything it was computed from.
    path : str or Path, optional
        ``.dot`` writes the DOT text; ``.html`` writes one self-contained page with the graph
        and a stepper that walks the forward and then the backward pass gate by gate;
        ``.svg``, ``.png`` (or any Graphviz format) renders it with Graphviz, which must be
        installed (``apt-get install graphviz``, ``pip install graphviz``). The DOT text is
        always written next to a rendered picture; if Graphviz is missing,
        :class:`chainrule.ChainruleError` says how to install it.
    values, grads : bool
        Label each edge with its forward value (green) and its gradient (red). Gradients are
        those of a one-element output with respect to every intermediate, computed afresh:
        the drawing works before and after ``backward()``. A large gradient shows its scale
        (RMS and largest magnitude), which stays readable when it is tiny.
    expand : bool
        Draw composite gates (``sigmoid``) as the primitive gates they stand for.
    rankdir : str, optional
        Graphviz layout direction: ``"LR"`` (inputs left, output right; the default) or
        ``"TB"`` (top to bottom; the default with ``group="module"``, where a model's layers
        stack down the screen instead of running off its side), ...
    group : {None, "module"}
        ``"module"`` draws the gates of each top-level Module (found from its parameters'
        dotted names) as one box, so a model's graph fits a screen; the HTML page expands a
        box when it is clicked.
    feed : dict, optional
        Placeholder (or its name) -> array: draw a static graph with the values and
        gradients of these inputs.

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
    if group not in (None, "module"):
        raise ChainruleError(f"cr.draw: group must be None or 'module', got {group!r}")
    if rankdir is None:
        rankdir = "TB" if group else "LR"
    kw = dict(values=values, grads=grads, expand=expand, rankdir=rankdir, feed=feed)
    if path is not None and Path(os.fspath(path)).suffix.lower() in (".html", ".htm"):
        from .html import write_page

        return write_page(tensor, Path(os.fspath(path)), group=group, **kw)
    text = to_dot(tensor, collapse=_ALL if group else None, **kw)
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
                             f"suffix such as .svg, .png, .html or .dot")
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


class _All:
    """Every module collapsed (``collapse=_ALL``)."""

    def __contains__(self, item) -> bool:
        return True


_ALL = _All()


class Layout(NamedTuple):
    """What a page needs besides the DOT text: the node id of every tensor, the edge ids,
    and the module each gate was put in."""

    order: list
    node_id: dict          # id(tensor) -> "n3"
    groups: dict           # id(gate) -> dotted module path
    root: Tensor


def prepare(tensor: Tensor, *, expand: bool = False, feed: Optional[dict] = None,
            group: Optional[str] = None) -> tuple:
    """``(root, values, layout)``: the graph as it will be drawn (composite gates expanded if
    asked), the value of every node, and node ids in display order."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"cr.draw expects a Tensor, got {type(tensor).__name__}")
    if expand:
        from .expand import expanded

        tensor = expanded(tensor)
    order = _display_order(toposort([tensor]), tensor)
    values = {id(t): t.data for t in order}
    if feed:
        from ..graph.evaluate import evaluate

        values = {id(t): v for t, v in zip(order, evaluate(order, feed))}
    groups = {}
    if group == "module":
        from .groups import module_groups

        groups = module_groups(toposort([tensor]))
    node_id = {id(t): f"n{i}" for i, t in enumerate(order)}
    return tensor, values, Layout(order, node_id, groups, tensor)


def to_dot(tensor: Tensor, *, values: bool = True, grads: bool = True, expand: bool = False,
           rankdir: str = "LR", feed: Optional[dict] = None, collapse=None,
           prepared: Optional[tuple] = None, gr=None, meta: Optional[dict] = None) -> str:
    """DOT text of ``tensor``'s graph; see :func:`draw` for the parameters.

    ``collapse`` is a set of top-level module names to draw as one box each (``_ALL`` for
    every module); with it, gates are grouped by :func:`~chainrule.viz.groups.module_groups`.
    Nodes and edges carry ids (``n3``, ``e_n3_0`` for gate n3's input 0, ``g_features`` for
    a box) that the HTML stepper looks up in the SVG; ``meta``, if given, receives for each
    edge id the tensor on the wire and the gates it feeds there, and for each box its members.
    """
    if meta is None:
        meta = {}
    if rankdir not in _RANKDIRS:
        raise ChainruleError(f"cr.draw: rankdir must be one of {', '.join(_RANKDIRS)}, "
                             f"got {rankdir!r}")
    if prepared is None:
        prepared = prepare(tensor, expand=expand, feed=feed,
                           group="module" if collapse is not None else None)
    root, vals, lay = prepared
    if gr is None and grads:
        gr = edge_grads(root, values=vals)
    if not grads:
        gr = None
    order, node_id, groups = lay.order, lay.node_id, lay.groups
    value = vals.get
    fan_out: dict[int, int] = {}
    for t in order:
        for x in t.inputs:
            fan_out[id(x)] = fan_out.get(id(x), 0) + 1

    # where each node is drawn: its own node, or inside a box (collapsed module)
    box_of: dict = {}
    if collapse is not None and groups:
        from .groups import module_of_leaf, top

        for t in order:
            m = groups.get(id(t))
            if m is not None and top(m) in collapse:
                box_of[id(t)] = top(m)
        users: dict = {}
        for t in order:
            for x in t.inputs:
                users.setdefault(id(x), set()).add(box_of.get(id(t)))
        for t in order:   # a module's parameters (and numbers only it uses) go in its box
            if t.op is None and len(users.get(id(t), ())) == 1:
                b = next(iter(users[id(t)]))
                m = module_of_leaf(t)
                number = m is None and not t.requires_grad and t.data is not None \
                    and t.data.size <= 1
                if b is not None and (number or m is not None and top(m) == b):
                    box_of[id(t)] = b

    lines = [
        "digraph chainrule {",
        f'  graph [rankdir={rankdir}, fontname="Helvetica", nodesep=0.35, ranksep=0.55, '
        f'bgcolor="white"];',
        '  node [fontname="Helvetica", fontsize=12, color="#444444"];',
        '  edge [fontname="Helvetica", fontsize=10, color="#666666", arrowsize=0.6];',
    ]
    # nodes, nested in one cluster per module (expanded), or one box per collapsed module
    tree: dict = {}
    for t in order:
        if id(t) in box_of:
            continue
        total = gr.total.get(id(t)) if gr is not None and fan_out.get(id(t), 0) > 1 else None
        line = f"{node_id[id(t)]} {_node_attrs(t, total, value(t), node_id[id(t)])};"
        m = groups.get(id(t)) if t.op is not None else None
        if m is None and t.op is None and groups:
            m = _leaf_cluster(t, groups, order)
        tree.setdefault(m, []).append(line)
    boxes: dict = {}
    for t in order:
        b = box_of.get(id(t))
        if b is not None:
            boxes.setdefault(b, []).append(t)
    lines.extend(_clusters(tree))
    for b, members in boxes.items():
        lines.append(f"  {_box_id(b)} {_box_attrs(b, members)};")
        meta["g_" + _ident(b)] = (None, members)

    # edges; those into or out of a box are merged per tensor, gradients summed
    into_box: dict = {}
    for t in order:
        for i, x in enumerate(t.inputs):
            g = gr.edge.get((id(t), i)) if gr is not None else None
            bx, bt = box_of.get(id(x)), box_of.get(id(t))
            if bx is not None and bx == bt:
                continue   # inside one box
            if bt is not None:
                key = (id(x), bt)
                if key in into_box:
                    prev = into_box[key][1]
                    into_box[key][1] = g if prev is None else (prev if g is None else prev + g)
                    into_box[key][2].append(t)
                    continue
                into_box[key] = [x, g, [t]]
                continue
            src = _box_id(bx) if bx is not None else node_id[id(x)]
            label = _edge_label(x, g, values, value(x))
            eid = f"e_{node_id[id(t)]}_{i}"
            meta[eid] = (x, [t])
            attrs = f'id="{eid}"' + (f", label={label}" if label else "")
            lines.append(f"  {src} -> {node_id[id(t)]} [{attrs}];")
    for (xid, b), (x, g, gates) in into_box.items():
        src = _box_id(box_of[xid]) if xid in box_of else node_id[xid]
        label = _edge_label(x, g, values, value(x))
        eid = f"b_{node_id[xid]}_g_{_ident(b)}"
        meta[eid] = (x, gates)
        attrs = f'id="{eid}"' + (f", label={label}" if label else "")
        lines.append(f"  {src} -> {_box_id(b)} [{attrs}];")
    # the output wire: the result's value and the gradient the backward pass starts from
    out_name = root.name or "output"
    lines.append(f'  out [id="out", shape=plaintext, fontsize=12, '
                 f'label={_html(_esc(out_name))}];')
    seed = gr.seed if gr is not None else None
    label = _wire_label(root, seed, values, show_name=False, value=value(root))
    src = _box_id(box_of[id(root)]) if id(root) in box_of else node_id[id(root)]
    meta["e_out"] = (root, [])
    attrs = 'id="e_out"' + (f", label={label}" if label else "")
    lines.append(f"  {src} -> out [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _leaf_cluster(t: Tensor, groups: dict, order: list) -> Optional[str]:
    """A parameter is drawn inside its module's cluster."""
    from .groups import module_of_leaf

    m = module_of_leaf(t)
    if m is None:
        return None
    known = set(groups.values())
    while m and m not in known and not any(k.startswith(m + ".") for k in known):
        m = m.rpartition(".")[0]
    return m or None


def _clusters(tree: dict) -> list:
    """Node lines nested in ``subgraph cluster_...`` blocks, one per module path."""
    from .groups import ancestors

    out = ["  " + line for line in tree.get(None, [])]
    paths = sorted(p for p in tree if p is not None)
    every = sorted({a for p in paths for a in ancestors(p)})
    children: dict = {}
    for p in every:
        parent = p.rpartition(".")[0] if "." in p else None
        children.setdefault(parent, []).append(p)

    def emit(p: str, depth: int) -> None:
        pad = "  " * depth
        out.append(f'{pad}subgraph "cluster_{_dot_str(p)}" {{')
        out.append(f'{pad}  id="c_{_dot_str(_ident(p))}"; label="{_dot_str(p)}"; '
                   f'style="rounded,dashed"; color="#8c959f"; fontcolor="#57606a"; '
                   f'fontsize=11;')
        out.extend(f"{pad}  {line}" for line in tree.get(p, []))
        for c in children.get(p, []):
            emit(c, depth + 1)
        out.append(f"{pad}}}")

    # an iterative walk would do too; module nesting is a handful of levels deep
    for p in children.get(None, []):
        emit(p, 1)
    return out


def _ident(path: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in path)


def _box_id(name: str) -> str:
    return f'"g_{_dot_str(_ident(name))}"'


def _box_attrs(name: str, members: list) -> str:
    gates = [t for t in members if t.op is not None]
    params = [t for t in members if t.op is None and t.requires_grad]
    ops = []
    for t in gates:
        lab = op_label(t).split()[0]
        if lab not in ops:
            ops.append(lab)
    shown = ", ".join(ops[:6]) + (", ..." if len(ops) > 6 else "")
    label = f"<b>{_esc(name)}</b><br/>" \
            f'<font point-size="9" color="{GREY}">{len(gates)} gates: {_esc(shown)}</font>'
    if 0 < len(params) <= 4:   # a layer's weight and bias: their names and shapes
        shapes = ", ".join(f"{(t.name or 'w').rpartition('.')[2]} {fmt_shape(t.shape)}"
                           for t in params)
        label += f'<br/><font point-size="9" color="{GREY}">{_esc(shapes)}</font>'
    elif params:
        size = sum(int(t.size or 0) for t in params)
        label += f'<br/><font point-size="9" color="{GREY}">{len(params)} parameters, ' \
                 f"{size:,} numbers</font>"
    return (f'[id="g_{_dot_str(_ident(name))}", shape=box, style="rounded,filled,bold", '
            f'fillcolor="#fff8c5", color="#9a6700", label={_html(label)}, '
            f'tooltip="module {_dot_str(name)}: click to open"]')


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


def _node_attrs(t: Tensor, total_grad, value=None, nid: str = "") -> str:
    tip = f', id="{nid}"' if nid else ""
    if t.site:
        tip += f', tooltip="{_dot_str(short_site(t.site))}"'
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
                     f'{_esc(fmt_grad(total_grad))}</font>'
        fill = "#ddf4ff" if t.requires_grad else "#ffffff"
        return f'[shape=box, style="rounded,filled", fillcolor="{fill}", label={_html(label)}{tip}]'
    # a constant (a Python number lifted into the graph, or data that needs no gradient)
    return (f'[shape=plaintext, fontsize=10, fontcolor="{GREY}", '
            f'label={_html(_esc(fmt_array(t.data)))}{tip}]')


# -- edges -------------------------------------------------------------------------------------
def _edge_label(x: Tensor, g, values: bool, value=None) -> Optional[str]:
    if x.op is None and x.data is not None and not x.requires_grad and not x.name:
        return None  # a constant shows its value in its node, and takes no gradient
    return _wire_label(x, g, values, show_name=x.op is not None, value=value)


def _wire_label(x: Tensor, g, values: bool, show_name: bool, value=None) -> Optional[str]:
    rows = []
    if value is None:
        value = x.data
    if show_name and x.name:
        rows.append(f'<font color="{GREY}">{_esc(x.name)}</font>')
    if values:
        if value is not None:
            rows.append(f'<font color="{GREEN}">{_esc(fmt_array(value))}</font>')
        else:
            rows.append(f'<font color="{GREY}">{_esc(fmt_shape(x.shape))}</font>')
    if g is not None:
        rows.append(f'<font color="{RED}">{_esc(fmt_grad(g))}</font>')
    if not rows:
        return None
    return _html("<br/>".join(rows))


def _esc(s: str) -> str:
    return html.escape(str(s), quote=False)


def _html(inner: str) -> str:
    return f"<{inner}>"


def _dot_str(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
