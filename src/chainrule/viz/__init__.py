"""Seeing the graph: ``cr.draw`` (Graphviz) and ``cr.explain`` (the backward pass as text).

``dot.py`` turns a graph into DOT text and imports nothing optional; ``render.py`` runs
Graphviz only when an image is asked for; ``edges.py`` computes the gradient on every edge once
for both drawing and explaining.
"""
from .dot import draw, to_dot
from .explain import explain

__all__ = ["draw", "explain", "to_dot"]
