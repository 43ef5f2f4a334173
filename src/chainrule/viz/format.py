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
