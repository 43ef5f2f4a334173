"""DOT text -> image with Graphviz, imported only here and only when an image is asked for.

The ``graphviz`` Python package is used when installed; otherwise the ``dot`` program is run
directly. Either way the ``dot`` program does the layout, and without it you get a
:class:`~chainrule.ChainruleError` that says how to install it.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Optional

from ..core.tensor import Tensor
from ..errors import ChainruleError

INSTALL_HINT = ("install Graphviz: the `dot` program (`apt-get install graphviz`, "
                "`brew install graphviz` or `conda install graphviz`) and its Python package "
                "(`pip install graphviz`, or `pip install chainrule[viz]`)")


def render(dot_text: str, fmt: str, timeout: Optional[float] = None) -> bytes:
    """Lay out ``dot_text`` and return the image in Graphviz format ``fmt`` (``svg``, ``png``).

    ``timeout`` (seconds) bounds the layout; past it :class:`ChainruleError` says so.
    """
    if timeout is not None:   # the dot program directly: the Python package cannot stop it
        return _run_dot(dot_text, fmt, timeout)
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        try:
            return graphviz.Source(dot_text).pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise ChainruleError(f"Graphviz's `dot` program was not found; {INSTALL_HINT}") \
                from None
        except subprocess.CalledProcessError as exc:
            raise ChainruleError(f"Graphviz failed to render {fmt}: "
                                 f"{_text(exc.stderr) or exc}") from None
        except ValueError as exc:  # an unknown format
            raise ChainruleError(f"Graphviz cannot write {fmt!r}: {exc}") from None
    return _run_dot(dot_text, fmt, None)


def _run_dot(dot_text: str, fmt: str, timeout: Optional[float]) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise ChainruleError(f"neither the graphviz Python package nor Graphviz's `dot` program "
                             f"was found; {INSTALL_HINT}")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ChainruleError(f"Graphviz took longer than {timeout:g} s to lay out the graph")\
            from None
    if proc.returncode != 0:
        raise ChainruleError(f"Graphviz failed to render {fmt}: {_text(proc.stderr)}")
    return proc.stdout


def to_svg(tensor: Tensor, **kw) -> str:
    """The graph of ``tensor`` as SVG text (Jupyter shows tensors with this); see ``cr.draw``."""
    from .dot import to_dot

    return render(to_dot(tensor, **kw), "svg").decode("utf-8")


def _text(b) -> str:
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return (b or "").strip()
