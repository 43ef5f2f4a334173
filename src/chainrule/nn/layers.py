"""Layers: ``Linear``, ``Sequential``, activations and ``Dropout``."""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

import chainrule as cr

from .._random import default_generator
from .module import Module

__all__ = ["Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Dropout"]


class Linear(Module):
    """Affine map ``y = x @ weight + bias``.

    The weight is stored as ``(in_features, out_features)``, the transpose of PyTorch's
    layout, so the forward pass is one ``matmul`` with no transpose node in the graph (and
    no strided copy in NumPy). Initialisation follows PyTorch's default: weight and bias
    drawn from ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.

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
        weight = rng.uniform(-bound, bound, size=(self.in_features, self.out_features))
        self.weight = cr.Variable(weight.astype(dtype), name="weight")
        if bias:
            values = rng.uniform(-bound, bound, size=(self.out_features,))
            self.bias = cr.Variable(values.astype(dtype), name="bias")
        else:
            self.bias = None

    def forward(self, x: Any) -> Any:
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Sequential(Module):
    """Modules applied one after another; submodules are named ``"0"``, ``"1"``, ...

    Examples
    --------
    >>> import chainrule as cr
    >>> model = cr.nn.Sequential(cr.nn.Linear(2, 4), cr.nn.ReLU(), cr.nn.Linear(4, 1))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]


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


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    survivors by ``1 / (1 - p)``; the identity in evaluation mode.

    The mask is drawn with NumPy when the layer runs, so in a compiled graph it would be a
    constant; dropout is therefore refused on symbolic inputs with unknown sizes.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> drop = cr.nn.Dropout(0.5).eval()
    >>> drop(cr.tensor(np.ones(3))).numpy()
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise cr.ChainruleError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x: Any) -> Any:
        if not self.training or self.p == 0.0:
            return x
        shape = tuple(x.shape)
        if any(size is None for size in shape):
            raise cr.ChainruleError(
                "Dropout needs a concrete input shape to draw its mask; run it eagerly or "
                "call model.eval() before compiling"
            )
        rng = default_generator() if self.rng is None else self.rng
        keep = rng.random(shape) >= self.p
        dtype = getattr(x, "dtype", None) or cr.default_dtype()
        mask = keep.astype(dtype) / np.asarray(1.0 - self.p, dtype=dtype)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
