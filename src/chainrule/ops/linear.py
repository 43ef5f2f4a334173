"""``linear``: ``x @ weight.T`` for a weight stored as PyTorch stores it, (out, in).

A rule of its own rather than ``x @ transpose(weight)``, for speed: through the composition
the weight's gradient arrives as ``(x.T @ g).T``, a transposed view, and every optimizer step
then reads it with a stride of a whole row (measured on the large benchmark MLP's first layer,
784x512 float32: the SGD update on the view cost ~0.7 ms more than on a contiguous array).
Here the gradient is ``g.T @ x``, contiguous in the weight's own layout, and the forward pass
is ``x @ W.T``: BLAS reads the transposed view as it is, nothing is copied.
"""
from __future__ import annotations

import numpy as np

from .registry import primitive


def _linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return np.matmul(x, weight.T)


# out = x W^T, so gx = g W and gW = g^T x (batch dimensions of x summed by the engine)
def _linear_dx(F, g, out, x, weight):
    return F.matmul(g, weight)


def _linear_dw(F, g, out, x, weight):
    if x.ndim == 1:                          # (in,) -> (out,): an outer product
        return F.expand_dims(g, -1) * x
    return F.matmul(F.mT(g), x)


linear = primitive("linear", _linear, (_linear_dx, _linear_dw), "{0} @ {1}.T", "linear")
