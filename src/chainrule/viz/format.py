"""Short numbers for drawings and explain.

``2.00`` for a scalar, ``[1.00, -2.00]`` for a small tensor, ``(64, 128) mean 0.01 std 0.90``
for a large one, ``(?, 3)`` for the shape of a symbolic one.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..errors import format_site, site_line

SMALL = 6  # tensors with at most this many elements show every value


def fmt_shape(shape) -> str:
    """A shape as ``(?, 3)``: free (``None``) dimensions print as ``?``; ``()`` as scalar."""
    if not shape:
        return "scalar"
    dims = ["?" if n is None else str(n) for n in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def fmt_number(v) -> str:
    """One number, short: ``2.00``, ``-0.20``, ``1.23e-05``, ``3`` for integers."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v == 0:
        return "0.00"
    if 1e-2 <= abs(v) < 1e4:
        return f"{v:.2f}"
    return f"{v:.2e}"


def fmt_array(a: Optional[np.ndarray], shape=None) -> str:
    """A value for display: the numbers when there are few, else shape and statistics.

    ``a is None`` (a symbolic tensor) shows ``shape``.
    """
    if a is None:
        return fmt_shape(shape if shape is not None else ())
    a = np.asarray(a)
    if a.ndim == 0:
        return fmt_number(a.item())
    if a.size <= SMALL:
        return _nested(a.tolist())
    if a.dtype.kind in "fciu" and a.size:
        x = a.astype(np.float64, copy=False)
        return f"{fmt_shape(a.shape)} mean {fmt_number(x.mean())} std {fmt_number(x.std())}"
    return fmt_shape(a.shape)


def fmt_sci(v) -> str:
    """A scale in scientific notation, ``3.2e-04``, so tiny gradients never read ``0.00``."""
    v = float(v)
    return "0" if v == 0 else f"{v:.1e}"


def fmt_grad(g: Optional[np.ndarray]) -> str:
    """A gradient for a drawing: its numbers when few, else its shape and scale
    (``(64, 128) rms 3.2e-04 max 1.1e-03``): after training a gradient's mean and spread are
    often below 0.005, and what a reader wants to see is how large it is."""
    if g is None:
        return "-"
    g = np.asarray(g)
    if g.ndim == 0 or g.size <= SMALL or g.dtype.kind not in "fc":
        return fmt_array(g)
    x = np.abs(g.astype(np.float64, copy=False))
    return f"{fmt_shape(g.shape)} rms {fmt_sci(np.sqrt(np.mean(x * x)))} max {fmt_sci(x.max())}"


def _nested(x) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_nested(v) for v in x) + "]"
    return fmt_number(x)


def short_site(site, *, source: bool = True) -> str:
    """``model.py:12: y = x @ W`` for a captured creation site, or '' if unknown."""
    if not site:
        return ""
    where = format_site(site)              # "path/to/file.py:12 in fn"
    path, _, rest = where.rpartition(":")
    where = f"{os.path.basename(path)}:{rest.split(' in ')[0]}"
    text = site_line(site) if source else ""
    return f"{where}: {text}" if text else where


FULL = 64  # explain and the stepper show every number up to this many (an 8 x 8 matrix)


def fmt_block(a: np.ndarray) -> list:
    """Every number of a small tensor as aligned lines, NumPy style::

        [[ 1.00, -2.00],
         [ 3.00,  4.00]]
    """
    a = np.asarray(a)
    if a.ndim == 0:
        return [fmt_number(a.item())]
    cells = [fmt_number(v) for v in a.reshape(-1).tolist()]
    width = max((len(c) for c in cells), default=0)
    cells = [c.rjust(width) for c in cells]
    if a.size == 0:
        return ["[]" if a.ndim == 1 else f"empty {fmt_shape(a.shape)}"]
    text = _block(np.array(cells, dtype=object).reshape(a.shape), 1)
    return text.split("\n")


def _block(a, depth: int) -> str:
    if a.ndim == 1:
        return "[" + ", ".join(a.tolist()) + "]"
    sep = "," + "\n" * (a.ndim - 1) + " " * depth
    return "[" + sep.join(_block(row, depth + 1) for row in a) + "]"


def grid(a: np.ndarray) -> list:
    """A small tensor as rows of formatted numbers (leading axes stacked as rows)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return [[fmt_number(a.item())]]
    rows = a.reshape(-1, a.shape[-1]) if a.shape[-1] else a.reshape(-1, 0)
    return [[fmt_number(v) for v in row] for row in rows.tolist()]


def heat(a: np.ndarray, cells: int = 24) -> dict:
    """A tensor averaged down to at most ``cells`` x ``cells`` values, for a small heat map.

    Leading axes are stacked as rows, as in :func:`grid`."""
    a = np.asarray(a, dtype=np.float64)
    m = a.reshape(1, -1) if a.ndim < 2 else a.reshape(-1, a.shape[-1])
    out = []
    for axis, n in enumerate(m.shape):
        k = -(-n // cells)            # block size along this axis
        edges = list(range(0, n, k))
        m = np.add.reduceat(m, edges, axis=axis) / np.diff(edges + [n]).reshape(
            [-1 if i == axis else 1 for i in range(2)])
        out.append(len(edges))
    finite = m[np.isfinite(m)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    return {"rows": out[0], "cols": out[1], "lo": lo, "hi": hi,
            "v": [round(float(v), 6) if np.isfinite(v) else 0.0 for v in m.reshape(-1)]}


def summary(a: np.ndarray) -> str:
    """``mean 0.01 std 0.90 min -2.31 max 2.80 rms 9.0e-01`` for a large tensor."""
    a = np.asarray(a)
    if a.dtype.kind not in "fciu" or not a.size:
        return fmt_shape(a.shape)
    x = a.astype(np.float64, copy=False)
    return (f"mean {fmt_number(x.mean())} std {fmt_number(x.std())} min {fmt_number(x.min())} "
            f"max {fmt_number(x.max())} rms {fmt_sci(np.sqrt(np.mean(x * x)))}")
