"""Layers that hold weights or reshape: ``Linear``, ``Identity``, ``Flatten``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import chainrule as cr

from .._random import default_generator
from ..ops.linear import linear
from .module import Module

__all__ = ["Flatten", "Identity", "Linear"]


def _uniform(rng: np.random.Generator, bound: float, shape: tuple, dtype: Any) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Linear(Module):
    """Affine map ``y = x @ weight.T + bias``, as ``torch.nn.Linear``.

    The weight has PyTorch's shape ``(out_features, in_features)``, so state dicts move both
    ways. The product is one primitive (``x @ W.T`` on a transposed view, no copy) whose
    weight gradient comes out in the weight's own layout (see ``chainrule/ops/linear.py``).
    Initialisation follows PyTorch's default: weight and bias drawn from
    ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of each input and output sample.
    bias : bool
        Whether to add a learnt bias.
    rng : numpy.random.Generator, optional
        Source of the initial values; ``cr.manual_seed``'s default generator otherwise.
    dtype : numpy dtype, optional
        Parameter dtype; ``cr.default_dtype()`` otherwise.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> layer = cr.nn.Linear(3, 2)
    >>> layer.weight.shape
    (2, 3)
    >>> layer(cr.tensor(np.ones((4, 3), dtype=np.float32))).shape
    (4, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        rng = default_generator() if rng is None else rng
        dtype = np.dtype(cr.default_dtype() if dtype is None else dtype)
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        shape = (self.out_features, self.in_features)
        self.weight = cr.Variable(_uniform(rng, bound, shape, dtype), name="weight")
        if bias:
            self.bias = cr.Variable(_uniform(rng, bound, (self.out_features,), dtype),
                                    name="bias")
        else:
            self.bias = None

    def forward(self, x: Any) -> Any:
        out = linear(x, self.weight)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input unchanged (a placeholder layer, as ``torch.nn.Identity``).

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0])
    >>> cr.nn.Identity()(x) is x
    True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:   # accepts and ignores, as PyTorch
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merges axes ``start_dim`` .. ``end_dim`` into one (from axis 1: the batch stays).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.Flatten()(cr.tensor(np.zeros((2, 3, 4, 5)))).shape
    (2, 60)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x: Any) -> Any:
        return cr.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
