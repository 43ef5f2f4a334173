"""Matrix product, with NumPy's rules for 1-D operands and batched leading dimensions."""
from __future__ import annotations

import numpy as np

from .registry import primitive


def _matmul_vjp(F, g, out, x, y):
    # d(x @ y) = dx @ y + x @ dy, so gx = g @ y^T and gy = x^T @ g; 1-D operands are
    # promoted to matrices the way NumPy promotes them, and batch dims are summed by the engine
    if x.ndim == 1 and y.ndim == 1:          # dot product
        return g * y, g * x
    if x.ndim == 1:                          # (k,) @ (..., k, n) -> (..., n)
        gx = F.matmul(y, g) if y.ndim == 2 else \
            F.matmul(F.expand_dims(g, -2), F.mT(y))           # (..., 1, k), summed to (k,)
        gy = F.expand_dims(x, -1) * F.expand_dims(g, -2)      # (..., k, n)
        return gx, gy
    if y.ndim == 1:                          # (..., m, k) @ (k,) -> (..., m)
        gx = F.expand_dims(g, -1) * y                         # (..., m, k)
        gy = F.matmul(F.mT(x), g) if x.ndim == 2 else \
            F.expand_dims(g, -1) * x                          # summed to (k,) by the engine
        return gx, gy
    return F.matmul(g, F.mT(y)), F.matmul(F.mT(x), g)


matmul = primitive("matmul", np.matmul, _matmul_vjp, "{0} @ {1}", "@")
