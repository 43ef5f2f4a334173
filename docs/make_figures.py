"""Regenerate the figures in docs/: ``python docs/make_figures.py`` (needs Graphviz's ``dot``).

``sigmoid_neuron.svg`` / ``.png``: the neuron f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))) of the
backprop notes, built from primitive gates, after ``backward()``: forward values in green,
gradients in red.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule.viz.render import render

HERE = Path(__file__).resolve().parent


def sigmoid_neuron() -> cr.Tensor:
    """The neuron at w0, x0, w1, x1, w2 = 2, -1, -3, -2, -3, after backward."""
    w0 = cr.Variable(2.0, name="w0", dtype=np.float64)
    x0 = cr.Variable(-1.0, name="x0", dtype=np.float64)
    w1 = cr.Variable(-3.0, name="w1", dtype=np.float64)
    x1 = cr.Variable(-2.0, name="x1", dtype=np.float64)
    w2 = cr.Variable(-3.0, name="w2", dtype=np.float64)
    f = 1.0 / (1.0 + cr.exp(-(w0 * x0 + w1 * x1 + w2)))
    f.name = "f"
    f.backward()
    return f


def main() -> None:
    f = sigmoid_neuron()
    svg = HERE / "sigmoid_neuron.svg"
    dot = cr.draw(f, svg)
    print(f"wrote {svg.relative_to(HERE.parent)}")
    # the PNG at 150 dpi so the small edge labels stay sharp in a README
    png = HERE / "sigmoid_neuron.png"
    png.write_bytes(render(dot.replace("graph [", "graph [dpi=150, ", 1), "png"))
    print(f"wrote {png.relative_to(HERE.parent)}")
    print(cr.explain(f))


if __name__ == "__main__":
    main()
