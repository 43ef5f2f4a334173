"""``Dropout``: the module over ``cr.dropout``, switched off by ``eval()``."""
from __future__ import annotations

from typing import Any

import chainrule as cr

from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    survivors by ``1 / (1 - p)``; the identity in evaluation mode.

    Masks come from the generator ``cr.manual_seed`` seeds, in eager and compiled code alike
    (a compiled step draws a fresh mask on every call).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> drop = cr.nn.Dropout(0.5).eval()
    >>> drop(cr.tensor(np.ones(3))).numpy()
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise cr.ChainruleError(f"Dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Any) -> Any:
        if not self.training or self.p == 0.0:
            return x
        return cr.dropout(x, self.p, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}"
