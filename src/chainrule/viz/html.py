"""``cr.draw(t, "graph.html")``: one self-contained page that steps through backprop.

The page is data plus one static script: the graph as SVG (laid out by Graphviz here, once per
view), and the walk of :mod:`~chainrule.viz.walk` as JSON, one entry per step (forward gate by
gate, then backward gate by gate in the order backprop visits them) with the numbers as the
notes write them. ``stepper.js`` and ``stepper.css`` beside this file are inlined, so the page
needs no network. Without Graphviz the page still steps through the numbers, with a note on
how to get the picture.
"""
from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.tensor import Tensor
from ..errors import ChainruleError
from .dot import _ALL, _ident, op_label, prepare, to_dot
from .format import FULL, fmt_array, fmt_grad, fmt_shape, grid, heat, short_site, summary
from .walk import Walk, axes_words, branches, gate_step, walk

HERE = Path(__file__).resolve().parent
MAX_VIEWS = 24   # per-module views laid out beyond the collapsed and the expanded ones


def write_page(tensor: Tensor, path: Path, *, group: Optional[str] = None,
               **kw) -> str:
    """Write the stepper page for ``tensor`` to ``path``; returns the DOT source of its view."""
    page, dot = page_html(tensor, group=group, **kw)
    path.write_text(page, encoding="utf-8")
    return dot


def page_html(tensor: Tensor, *, group: Optional[str] = None, values: bool = True,
              grads: bool = True, expand: bool = False, rankdir: str = "LR",
              feed: Optional[dict] = None, title: Optional[str] = None,
              timeout: Optional[float] = None) -> tuple:
    """The page as a string, and the DOT source of its first view.

    ``timeout`` (seconds) bounds the whole page; what is left of it when the numbers are
    worked out goes to Graphviz, and past it the page has no picture.
    """
    data, dot = page_data(tensor, group=group, values=values, grads=grads, expand=expand,
                          rankdir=rankdir, feed=feed, timeout=timeout)
    name = title or data["title"]
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    css = (HERE / "stepper.css").read_text(encoding="utf-8")
    js = (HERE / "stepper.js").read_text(encoding="utf-8")
    # placeholders replaced in turn (CSS and JS are full of braces), the data last
    page = (_TEMPLATE.replace("@TITLE@", html.escape(name)).replace("@CSS@", css)
            .replace("@JS@", js).replace("@DATA@", payload))
    return page, dot


def page_data(tensor: Tensor, *, group=None, values=True, grads=True, expand=False,
              rankdir="LR", feed=None, timeout=None) -> tuple:
    """The JSON-ready walk (steps, nodes, views) and the DOT source of the first view."""
    deadline = None if timeout is None else time.monotonic() + timeout
    root, vals, lay = prepare(tensor, expand=expand, feed=feed, group=group)
    w = walk(root, values=vals)
    nid = lay.node_id
    fwd = w.gates_forward
    bwd = w.gates_backward if w.grads.seed is not None else []
    fstep = {id(t): k for k, t in enumerate(fwd, 1)}
    bstep = {id(t): len(fwd) + k for k, t in enumerate(bwd, 1)}
    steps = [_forward_step(w, t, nid, k, len(fwd)) for k, t in enumerate(fwd, 1)]
    done = _leaf_completions(w, bstep)
    for k, t in enumerate(bwd, 1):
        steps.append(_backward_step(w, t, nid, k, len(bwd), done.get(id(t), [])))

    # the views: every module collapsed (first), each one open, all open; or just the graph
    tops = sorted({g.split(".")[0] for g in lay.groups.values()}) if group else []
    views = {}
    dots = []
    if tops:
        dots.append(("collapsed", _ALL))
        if len(tops) <= MAX_VIEWS:
            dots += [(f"open:{m}", set(tops) - {m}) for m in tops]
        dots.append(("expanded", set()))
    else:
        dots.append(("graph", None))
    reveal: dict = {}
    first_dot = ""
    svg_error = ""
    for name, collapse in dots:
        meta: dict = {}
        dot = to_dot(root, values=values, grads=grads, rankdir=rankdir, collapse=collapse,
                     prepared=(root, vals, lay), gr=w.grads if grads else None, meta=meta)
        first_dot = first_dot or dot
        for eid, (x, gates) in meta.items():
            if eid.startswith("g_"):
                continue
            vstep = fstep.get(id(x), 0)
            gstep = max((bstep.get(id(t), 0) for t in gates), default=len(fwd) + 1)
            reveal[eid] = [vstep, gstep if bwd else 10**9]
        if not svg_error:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                if left is not None and left < 0.05:
                    raise ChainruleError("no time was left to lay out the graph")
                views[name] = _svg(dot, left)
            except ChainruleError as exc:
                svg_error = str(exc)
    for t in w.order:   # a fan-out Variable's summed gradient, in its node, once complete
        if t.op is None and t.requires_grad:
            uses = [bstep.get(id(g), 0) for g, _ in w.uses.get(id(t), [])]
            reveal[nid[id(t)]] = [0, max(uses, default=0) if bwd else 10**9]
    nodes = {nid[id(t)]: _node_info(w, t, lay) for t in w.order}
    for m in tops:
        members = [t for t in w.order if t.op is not None
                   and lay.groups.get(id(t), "").split(".")[0] == m]
        nodes["g_" + _ident(m)] = {"kind": "module", "name": m, "module": m,
                                   "gates": len(members)}
    data = {
        "title": f"{w.names[id(root)]} = {_inline(w.value(root))}",
        "note": w.note,
        "forward": len(fwd),
        "backward": len(bwd),
        "steps": steps,
        "nodes": nodes,
        "views": views,
        "view": dots[0][0],
        "modules": tops,
        "reveal": reveal,
        "error": svg_error,
    }
    return data, first_dot


def _svg(dot: str, timeout: Optional[float]) -> str:
    from .render import render

    svg = render(dot, "svg", timeout=timeout).decode("utf-8")
    svg = svg[svg.index("<svg"):]           # no XML prolog or doctype inside the page
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S)


# -- steps ---------------------------------------------------------------------------------------
def _forward_step(w: Walk, t: Tensor, nid: dict, k: int, n: int) -> dict:
    ins = [w.names[id(x)] for x in t.inputs]
    from .walk import formula

    return {
        "phase": "forward", "k": k, "n": n, "node": nid[id(t)], "op": op_label(t),
        "name": w.names[id(t)], "formula": f"{w.names[id(t)]} = {formula(t, ins)}",
        "site": short_site(t.site),
        "inputs": [{"name": name, "value": value_json(w.value(x), x.shape)}
                   for name, x in zip(ins, t.inputs)],
        "value": value_json(w.value(t), t.shape),
        "edges": [f"e_{nid[id(t)]}_{i}" for i in range(len(t.inputs))],
        "out": _out_edges(w, t, nid),
    }


def _backward_step(w: Walk, t: Tensor, nid: dict, k: int, n: int, leaves: list) -> dict:
    gate = gate_step(w, t, k)
    wires = []
    for wire in gate.wires:
        wires.append({
            "name": wire.name,
            "value": value_json(wire.value, wire.shape),
            "local": value_json(wire.local) if wire.local is not None else None,
            "product": value_json(wire.product, grad=True)
            if wire.product is not None else None,
            "summed": axes_words(wire.summed_axes) if wire.summed_axes else "",
            "from": fmt_shape(wire.shape),
            "to": fmt_shape(wire.product.shape) if wire.product is not None else "",
            "down": value_json(wire.downstream, grad=True)
            if wire.downstream is not None else None,
            "nograd": not wire.needs_grad,
        })
    return {
        "phase": "backward", "k": k, "n": n, "node": nid[id(t)], "op": op_label(t),
        "name": gate.name, "formula": f"{gate.name} = {gate.formula}", "site": gate.site,
        "value": value_json(gate.value, t.shape),
        "upstream": value_json(gate.upstream, grad=True) if gate.upstream is not None else None,
        "branches": [{"from": b.gate, "grad": value_json(b.grad, grad=True)}
                     for b in gate.branches],
        "wires": wires,
        "rule": gate.rule if gate.has_rule else "no gradient rule: nothing flows back",
        "elementwise": gate.elementwise,
        "leaves": leaves,
        "edges": [f"e_{nid[id(t)]}_{i}" for i in range(len(t.inputs))],
        "out": _out_edges(w, t, nid),
    }


def _out_edges(w: Walk, t: Tensor, nid: dict) -> list:
    out = [f"e_{nid[id(g)]}_{i}" for g, i in w.uses.get(id(t), [])]
    return out + (["e_out"] if t is w.root else [])


def _leaf_completions(w: Walk, bstep: dict) -> dict:
    """id(gate) -> the fan-out leaves whose last branch that gate's backward step delivers."""
    done: dict = {}
    for t in w.order:
        if t.op is not None or not t.requires_grad:
            continue
        parts = branches(w, t)
        if not parts:
            continue
        last = max((g for g, _ in w.uses[id(t)]), key=lambda g: bstep.get(id(g), 0))
        done.setdefault(id(last), []).append({
            "name": w.names[id(t)],
            "branches": [{"from": b.gate, "grad": value_json(b.grad, grad=True)}
                         for b in parts],
            "total": value_json(w.grads.total.get(id(t)), grad=True),
        })
    return done


def _node_info(w: Walk, t: Tensor, lay) -> dict:
    if t.op is not None:
        kind = "gate"
    elif t.data is None:
        kind = "placeholder"
    elif t.requires_grad:
        kind = "Variable"
    else:
        kind = "constant"
    info = {"kind": kind, "name": w.names[id(t)], "site": short_site(t.site),
            "value": value_json(w.value(t), t.shape),
            "grad": value_json(w.grads.total.get(id(t)), grad=True)
            if w.grads.total.get(id(t)) is not None else None}
    if t.op is not None:
        from .walk import formula

        info["formula"] = f"{w.names[id(t)]} = {formula(t, [w.names[id(x)] for x in t.inputs])}"
        info["op"] = op_label(t)
    m = lay.groups.get(id(t))
    if m is None and t.op is None:
        from .groups import module_of_leaf

        m = module_of_leaf(t)
    if m:
        info["module"] = m.split(".")[0]
        info["box"] = "g_" + _ident(info["module"])
    return info


def value_json(a, shape=None, grad: bool = False) -> Optional[dict]:
    """A tensor for the page: every number up to 64 (as rows), else shape, summary and a
    small heat map."""
    if a is None:
        return {"shape": fmt_shape(shape if shape is not None else ()),
                "text": fmt_shape(shape if shape is not None else ()), "symbolic": True}
    a = np.asarray(a)
    out = {"shape": fmt_shape(a.shape), "text": _inline(a, grad)}
    if a.size <= FULL:
        out["grid"] = grid(a)
        out["ndim"] = a.ndim
    elif a.dtype.kind in "fciub":
        out["summary"] = summary(a) if not grad else fmt_grad(a)[len(fmt_shape(a.shape)) + 1:]
        out["heat"] = heat(a.astype(np.float64), cells=16)
    return out


def _inline(a, grad: bool = False) -> str:
    if a is None:
        return "-"
    a = np.asarray(a)
    return fmt_grad(a) if grad else fmt_array(a)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@ - chainrule</title>
<style>
@CSS@
</style>
</head>
<body>
<header>
  <h1>@TITLE@</h1>
  <nav id="controls">
    <button id="prev" type="button">Previous</button>
    <button id="next" type="button">Next</button>
    <button id="play" type="button">Play</button>
    <span id="indicator" aria-live="polite">step 0 of 0</span>
    <span id="views"></span>
  </nav>
</header>
<main>
  <section id="graph" aria-label="computational graph"></section>
  <aside>
    <section id="panel" aria-live="polite"></section>
    <section id="info"></section>
  </aside>
</main>
<script type="application/json" id="cr-data">@DATA@</script>
<script>
@JS@
</script>
</body>
</html>
"""
