"""Matrix product, with NumPy's rules for 1-D operands and batched leading dimensions."""
from __future__ import annotations

import numpy as np

from .registry import primitive


# d(x @ y) = dx @ y + x @ dy, so gx = g @ y^T and gy = x^T @ g. 1-D operands are promoted to
# matrices the way NumPy promotes them; batch dimensions are summed by the engine. One rule per
# operand: the input batch of a first layer needs no gradient, and its matmul is never done.
def _matmul_dx(F, g, out, x, y):
    if x.ndim == 1 and y.ndim == 1:          # dot product
        return g * y
    if x.ndim == 1:                          # (k,) @ (..., k, n) -> (..., n)
        return F.matmul(y, g) if y.ndim == 2 else F.matmul(F.expand_dims(g, -2), F.mT(y))
    if y.ndim == 1:                          # (..., m, k) @ (k,) -> (..., m)
        return F.expand_dims(g, -1) * y
    return F.matmul(g, F.mT(y))


def _matmul_dy(F, g, out, x, y):
    if x.ndim == 1 and y.ndim == 1:
        return g * x
    if x.ndim == 1:
        return F.expand_dims(x, -1) * F.expand_dims(g, -2)
    if y.ndim == 1:
        return F.matmul(F.mT(x), g) if x.ndim == 2 else F.expand_dims(g, -1) * x
    return F.matmul(F.mT(x), g)


matmul = primitive("matmul", np.matmul, (_matmul_dx, _matmul_dy), "{0} @ {1}", "@")
