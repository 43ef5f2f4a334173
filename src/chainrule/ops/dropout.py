"""Dropout, with masks from the generator ``cr.manual_seed`` seeds, eager and compiled alike.

The mask is a primitive of its own, ``dropout_mask``, with no gradient (the gradient of
``x * mask`` is the mul gate's ``g * mask``). Eager code draws it from
:func:`chainrule._random.default_generator` when the op runs; compiled code draws it on the
line that prints it, ``(rng.random(x.shape, dtype=...) >= p) * scale``, from the generator the
compiled function is handed at each call (the same default generator). So a compiled and an
eager run from the same seed draw the same masks, and a run resumed with the generator's
state continues the same stream. Random primitives are never constant-folded or shared
between two uses (``graph/ir``): each use is a fresh draw.
"""
from __future__ import annotations

import numpy as np

from .._random import default_generator
from ..core.tensor import Tensor
from ..errors import ShapeError
from . import elementwise as ew
from .registry import lift, primitive

# primitives whose every evaluation draws from the generator (the compiler reads this)
RANDOM_OPS = {"dropout_mask"}


def _draw_dtype(dtype: np.dtype) -> np.dtype:
    # Generator.random draws float32 or float64 only
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _mask(like: np.ndarray, *, p: float) -> np.ndarray:
    keep = default_generator().random(like.shape, dtype=_draw_dtype(like.dtype)) >= p
    return keep * np.asarray(1.0 / (1.0 - p), dtype=like.dtype)


def _mask_code(a, p, node) -> str:
    dtype = node.inputs[0].dtype
    scale = f"np.{dtype.name}({1.0 / (1.0 - p['p'])!r})"
    return (f"(rng.random({a[0]}.shape, dtype=np.{_draw_dtype(dtype).name}) >= {p['p']!r}) "
            f"* {scale}")


# 0 with probability p, else 1 / (1 - p); ``like`` gives the shape and dtype
dropout_mask = primitive("dropout_mask", _mask, None, _mask_code, "dropout mask",
                         infer=lambda like, *, p: (like.shape, like.dtype))


def dropout(x, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The identity when ``training`` is false. Masks come from the generator that
    ``cr.manual_seed`` seeds, in eager and compiled code alike.

    >>> import chainrule as cr, numpy as np
    >>> _ = cr.manual_seed(0)
    >>> y = cr.dropout(cr.tensor(np.ones(1000)), p=0.25)
    >>> sorted(set(y.numpy().tolist())), bool(abs(y.numpy().mean() - 1) < 0.1)
    ([0.0, 1.3333333333333333], True)
    """
    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"dropout: p must be in [0, 1], got {p}")
    x = x if isinstance(x, Tensor) else lift(np.asarray(x), None)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return ew.mul(x, 0.0)
    return ew.mul(x, dropout_mask(x, p=float(p)))
