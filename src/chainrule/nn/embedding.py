"""``Embedding``: a table of learnt rows picked by integer indices."""
from __future__ import annotations

from typing import Any

import numpy as np

import chainrule as cr

from .._random import default_generator
from .module import Module

__all__ = ["Embedding"]


class Embedding(Module):
    """Rows of ``weight`` (``num_embeddings, embedding_dim``) picked by integer indices of any
    shape, as ``torch.nn.Embedding``; ``weight`` starts as ``N(0, 1)``, PyTorch's default.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> emb = cr.nn.Embedding(10, 3)
    >>> emb(np.array([[1, 2], [3, 4]])).shape
    (2, 2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *,
                 rng: np.random.Generator | None = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        rng = default_generator() if rng is None else rng
        dtype = np.dtype(cr.default_dtype() if dtype is None else dtype)
        values = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(dtype)
        self.weight = cr.Variable(values, name="weight")

    def forward(self, indices: Any) -> Any:
        return cr.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
