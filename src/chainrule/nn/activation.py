"""Activation modules: each calls the op of the same name."""
from __future__ import annotations

from typing import Any

import chainrule as cr

from .module import Module

__all__ = ["GELU", "LeakyReLU", "ReLU", "Sigmoid", "Tanh"]


class ReLU(Module):
    """Elementwise ``max(0, x)``."""

    def forward(self, x: Any) -> Any:
        return cr.relu(x)


class Sigmoid(Module):
    """Elementwise ``1 / (1 + exp(-x))``."""

    def forward(self, x: Any) -> Any:
        return cr.sigmoid(x)


class Tanh(Module):
    """Elementwise hyperbolic tangent."""

    def forward(self, x: Any) -> Any:
        return cr.tanh(x)


class GELU(Module):
    """Gaussian error linear unit ``x * Phi(x)`` (``approximate="tanh"``: the tanh form).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.GELU()(cr.tensor(np.array([0.0, 1.0]))).numpy().round(4)
    array([0.    , 0.8413])
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise cr.ChainruleError(f"GELU approximate must be 'none' or 'tanh', got "
                                    f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x: Any) -> Any:
        return cr.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.LeakyReLU(0.1)(cr.tensor(np.array([-2.0, 3.0]))).numpy()
    array([-0.2,  3. ])
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Any:
        return cr.leaky_relu(x, negative_slope=self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"
