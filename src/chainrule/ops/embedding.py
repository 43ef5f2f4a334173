"""Embedding lookup: rows of a weight matrix picked by integer indices of any shape.

A primitive with a scatter-add backward (repeated indices add up), itself a primitive whose
gradient is the lookup again, so the pair closes under differentiation.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from .namespace import A, T
from .registry import lift, primitive

SOURCE = '''\
def _embedding_scatter(g, like, indices):
    out = np.zeros(like.shape, dtype=g.dtype)
    np.add.at(out, indices.ravel(), g.reshape(indices.size, like.shape[1]))  # repeats add up
    return out
'''
_namespace: dict = {"np": np}
exec(compile(SOURCE, "<chainrule embedding kernel>", "exec"), _namespace)  # noqa: S102 our own source
embedding_scatter_array = _namespace["_embedding_scatter"]


def _lookup(indices: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return np.take(weight, indices, axis=0)


# d weight[indices] = the rows of g added back at their indices
embedding_p = primitive(
    "embedding", _lookup,
    (None, lambda F, g, out, indices, weight: F.embedding_scatter(g, weight, indices)),
    "np.take({1}, {0}, axis=0)", "embedding",
    infer=lambda indices, weight: (tuple(indices.shape) + (weight.shape[1],), weight.dtype))
embedding_scatter = primitive(
    "embedding_scatter", embedding_scatter_array,
    (lambda F, gg, out, g, like, indices: F.embedding(indices, gg), None, None),
    "_embedding_scatter({0}, {1}, {2})", "embedding back", helper=SOURCE,
    infer=lambda g, like, indices: (like.shape, g.dtype))

A.__dict__.update(embedding=_lookup, embedding_scatter=embedding_scatter_array)
T.__dict__.update(embedding=lambda indices, weight: embedding_p(indices, weight),
                  embedding_scatter=lambda g, like, indices: embedding_scatter(g, like, indices))


def embedding(indices, weight) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` of any shape.

    >>> import chainrule as cr, numpy as np
    >>> w = cr.Variable(np.arange(6.0).reshape(3, 2))
    >>> out = cr.embedding(np.array([[2, 0], [2, 2]]), w)
    >>> out.shape
    (2, 2, 2)
    >>> out.sum().backward()
    >>> w.grad.numpy()[:, 0].tolist()
    [1.0, 0.0, 3.0]
    """
    indices = indices if isinstance(indices, Tensor) else lift(np.asarray(indices), None)
    weight = weight if isinstance(weight, Tensor) else lift(np.asarray(weight), None)
    if indices.dtype.kind not in "iu":
        raise ShapeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    if indices.data is not None and indices.size and weight.shape[0] is not None and (
            indices.data.min() < -weight.shape[0] or indices.data.max() >= weight.shape[0]):
        raise ShapeError(f"embedding: indices out of range for {weight.shape[0]} embeddings "
                         f"(min {indices.data.min()}, max {indices.data.max()})")
    return embedding_p(indices, weight)
