"""The error hierarchy, and where in the user's code a node was built.

Every error names the op, the operand shapes and the user's line, because "operands could not
be broadcast" from deep inside NumPy tells a learner nothing about which line of *their* model
is wrong.
"""
from __future__ import annotations

import os
import sys

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class ChainruleError(ValueError):
    """Base of every chainrule error."""


class ShapeError(ChainruleError):
    """Operand shapes do not fit the op."""


class GraphError(ChainruleError):
    """The graph cannot be run or differentiated as asked (missing feed, freed graph, ...)."""


class GradcheckError(ChainruleError):
    """Analytic and numerical gradients disagree."""


# A site is (code object, bytecode offset) of the innermost frame outside this package: two
# references and no work, so capturing it on every recorded op stays cheap (the line number is
# worked out from the offset only when an error or a drawing asks). Holding the frame itself
# would keep every local of the user's function alive as long as the graph.
Site = tuple  # (code object, bytecode offset) or ()
_getframe = sys._getframe


def capture_site() -> Site:
    """The user's frame that is building a node, as ``(code, bytecode offset)``."""
    return site_of(_getframe(2))


def site_of(f) -> Site:
    """The innermost frame from ``f`` outwards that is not chainrule's own."""
    while f is not None:
        code = f.f_code
        if not is_ours(code.co_filename):
            return (code, f.f_lasti)
        f = f.f_back
    return ()


_OURS: dict = {}


def is_ours(filename: str) -> bool:
    """Whether a file is part of chainrule (memoised: a dict hit costs less than startswith)."""
    known = _OURS.get(filename)
    if known is None:
        known = _OURS[filename] = filename.startswith(_PKG_DIR)
    return known


def site_lineno(site: Site) -> int:
    """The line number of a captured site (0 if unknown)."""
    if not site:
        return 0
    code, lasti = site
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


def format_site(site: Site) -> str:
    """``file:line in function`` for a captured site, or a placeholder."""
    if not site:
        return "<unknown>"
    code = site[0]
    return f"{code.co_filename}:{site_lineno(site)} in {code.co_name}"


def site_line(site: Site) -> str:
    """The source text of the captured line, stripped, or ''."""
    if not site:
        return ""
    import linecache

    return linecache.getline(site[0].co_filename, site_lineno(site)).strip()


def describe(site: Site) -> str:
    text = site_line(site)
    where = format_site(site)
    return f"{where}\n    {text}" if text else where


__all__ = [
    "ChainruleError", "ShapeError", "GraphError", "GradcheckError",
    "capture_site", "format_site", "describe",
]
