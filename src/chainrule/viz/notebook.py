"""How a tensor shows itself in Jupyter: the stepper page inline, for graphs small enough.

Displaying must never hold up a notebook: the graph is counted with a walk that stops at the
limit, big tensors are not differentiated again, Graphviz gets what is left of one second, and
anything larger gets a text summary with the ``cr.draw`` call that makes the page.
"""
from __future__ import annotations

import html
import time
from typing import Optional

from ..core.tensor import Tensor

INLINE_GATES = 100          # gates shown inline at most
INLINE_NUMBERS = 200_000  # numbers in the graph's tensors at most (each is differentiated)
BUDGET = 1.0                # seconds a display may take


def tensor_html(t: Tensor) -> Optional[str]:
    """The HTML Jupyter shows for ``t``: nothing for a leaf (its text repr is all there is),
    the stepper page in a frame for a small graph, a summary for a large one."""
    start = time.monotonic()
    if t.op is None:
        return None
    gates, numbers = _count(t, INLINE_GATES)
    if gates > INLINE_GATES or numbers > INLINE_NUMBERS:
        return _summary(t, gates, numbers)
    from .html import page_html

    try:
        page, _ = page_html(t, timeout=BUDGET - (time.monotonic() - start) - 0.15)
    except Exception as exc:  # a display must never raise into the notebook
        return f"<pre>{html.escape(repr(t))}</pre><p>(no picture: {html.escape(str(exc))})</p>"
    frame = html.escape(page, quote=True)
    return (f'<iframe srcdoc="{frame}" style="width:100%;height:480px;border:1px solid #d0d7de;'
            f'border-radius:6px" sandbox="allow-scripts"></iframe>')


def _count(root: Tensor, limit: int) -> tuple:
    """``(gates, numbers)`` of ``root``'s graph, the walk stopping once past ``limit`` gates."""
    seen = {id(root)}
    stack = [root]
    gates = numbers = 0
    while stack:
        t = stack.pop()
        if t.op is not None:
            gates += 1
            if gates > limit:
                break
        if t.data is not None:
            numbers += int(t.data.size)
        for x in t.inputs:
            if id(x) not in seen:
                seen.add(id(x))
                stack.append(x)
    return gates, numbers


def _summary(t: Tensor, gates: int, numbers: int) -> str:
    what = f"more than {INLINE_GATES} gates" if gates > INLINE_GATES \
        else f"{numbers:,} numbers in its tensors"
    return (f"<pre>{html.escape(repr(t))}</pre>"
            f"<p>Its graph has {what}: too large to show here. "
            f"<code>cr.draw(t, \"graph.html\", group=\"module\")</code> writes a page that steps "
            f"through it; <code>cr.explain(t)</code> prints the backward pass.</p>")
