"""The thin Tensor: a value, its gradient, and the op that produced it.

A Tensor is also its own graph node: ``op`` is the primitive that made it, ``inputs`` the
tensors it was made from and ``params`` the op's static arguments (axis, shape, ...). Leaves
have ``op is None``. A placeholder is a leaf with no value yet (``data is None``); any tensor
computed from one is *symbolic*: it carries a shape and dtype, and a value only under ``eval``.

Operators and methods (``+``, ``@``, ``.sum``) are attached by :mod:`chainrule.ops`, which
reads them from the op registry, so this class holds state and nothing else.
"""
from __future__ import annotations

import itertools
from typing import Any, Optional

import numpy as np

from .._config import default_dtype
from ..errors import ChainruleError, GraphError, capture_site, describe


# Creation order: every tensor gets the next number, so a tensor's number is larger than its
# inputs'. Walking numbers downwards is a topological order for free (see autodiff).
_next_seq = itertools.count().__next__


class Tensor:
    """An n-dimensional value that remembers how it was computed.

    Build one with :func:`chainrule.tensor`, :func:`chainrule.Variable` or
    :func:`chainrule.placeholder`, or as the result of an op.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.numpy().tolist()
    [2.0, -4.0, 6.0]
    """

    # _free (symbolic tensors): the placeholders whose free dims this one's may come from
    __slots__ = ("data", "grad", "requires_grad", "name", "op", "inputs", "params", "site",
                 "_free", "_shape", "_dtype", "_consumed", "_origin", "seq", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected operator
    __array_ufunc__ = None     # ... and NumPy ufuncs never unwrap a Tensor silently

    def __init__(self, data: Any, *, dtype=None, requires_grad: bool = False,
                 name: Optional[str] = None):
        arr = _to_array(data, dtype)
        if requires_grad and arr.dtype.kind not in "fc":
            raise ChainruleError(
                f"only floating-point tensors can require gradients, got dtype {arr.dtype}"
                f" (make it float, e.g. cr.tensor(x, dtype=np.float32))")
        self.data = arr
        self.grad: Optional[Tensor] = None
        self.requires_grad = requires_grad
        self.name = name
        self.op = None
        self.inputs = ()
        self.params = None
        self.site = capture_site() if requires_grad else ()
        self.seq = _next_seq()
        self._shape = None
        self._dtype = None

    # -- what it holds ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        d = self.data
        return d.shape if d is not None else self._shape

    @property
    def dtype(self) -> np.dtype:
        d = self.data
        return d.dtype if d is not None else self._dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Optional[int]:
        if self.data is not None:
            return int(self.data.size)
        if any(n is None for n in self._shape):
            return None
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    @property
    def is_symbolic(self) -> bool:
        """True for a placeholder or anything computed from one (no value until ``eval``)."""
        return self.data is None

    @property
    def is_placeholder(self) -> bool:
        return self.data is None and self.op is None

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        # rows as tensors in the graph (t[0], t[1], ...); len() bounds it, since an index past
        # the end is reported as a ShapeError rather than the IndexError iteration expects
        for i in range(len(self)):
            yield self[i]

    # -- getting the value out -------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The value as an ndarray (the array itself, not a copy)."""
        if self.data is None:
            raise GraphError(
                f"{self._describe()} is symbolic (it depends on a placeholder) and has no value;"
                f" use .eval({{placeholder: array}}) or cr.function")
        return self.data

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def item(self):
        """The value of a one-element tensor as a Python scalar."""
        return self.numpy().item()

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def eval(self, feed: Optional[dict] = None) -> np.ndarray:
        """Evaluate, feeding placeholders from ``feed`` (placeholder -> array).

        >>> import chainrule as cr, numpy as np
        >>> x = cr.placeholder((None,), name="x")
        >>> (x * 2).eval({x: np.array([1.0, 2.0])}).tolist()
        [2.0, 4.0]
        """
        from ..graph.evaluate import evaluate

        return evaluate([self], feed or {})[0]

    # -- graph -----------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """The same value as a new leaf that records nothing."""
        if self.data is None:
            raise GraphError(f"cannot detach symbolic {self._describe()}")
        return Tensor(self.data, name=self.name)

    def backward(self, grad=None, *, retain_graph: Optional[bool] = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires grad.

        ``grad`` is the upstream gradient (defaults to 1 for a one-element tensor).
        """
        from ..autodiff import backward

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def _describe(self) -> str:
        what = self.op.name if self.op is not None else (
            "placeholder" if self.data is None else "tensor")
        label = f" '{self.name}'" if self.name else ""
        return f"{what}{label} of shape {_fmt_shape(self.shape)}"

    def __repr__(self) -> str:
        extra = []
        if self.name:
            extra.append(f"name={self.name!r}")
        if self.op is not None:
            extra.append(f"op={self.op.name}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.data is None:
            kind = "placeholder" if self.op is None else "symbolic"
            body = f"{kind}, shape={_fmt_shape(self._shape)}, dtype={self._dtype}"
        else:
            body = np.array2string(self.data, separator=", ", precision=4, threshold=20,
                                   prefix="tensor(")
            if self.data.dtype != default_dtype() and self.data.dtype.kind == "f" or \
                    self.data.dtype.kind not in "fbi":
                extra.append(f"dtype={self.data.dtype}")
        return f"tensor({', '.join([body] + extra)})"

    # Comparisons return tensors (like NumPy), so hashing stays by identity, explicitly:
    # placeholders are dict keys in feeds.
    __hash__ = object.__hash__

    def _repr_html_(self):
        # Jupyter shows a tensor as its graph with the stepper, within a size and time limit
        from ..viz.notebook import tensor_html

        return tensor_html(self)


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _to_array(data: Any, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.numpy()
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":  # Python floats follow the default dtype, as in PyTorch
        arr = arr.astype(default_dtype(), copy=False)
    elif arr.dtype.kind == "i":
        arr = arr.astype(np.int64, copy=False)
    return arr


def tensor(data: Any, *, dtype=None, requires_grad: bool = False,
           name: Optional[str] = None) -> Tensor:
    """A tensor from an array-like.

    Python floats become :func:`chainrule.default_dtype` (float32 unless changed), Python
    ints int64; a NumPy array keeps its dtype.

    >>> import chainrule as cr
    >>> cr.tensor([1.0, 2.0]).dtype
    dtype('float32')
    """
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def Variable(value: Any, *, name: Optional[str] = None, dtype=None) -> Tensor:
    """A trainable leaf (``requires_grad=True``): the values W, b that gradient descent moves.

    >>> import chainrule as cr
    >>> w = cr.Variable([[0.5, -1.0]], name="W")
    >>> w.requires_grad, w.is_leaf
    (True, True)
    """
    arr = _to_array(value, dtype)
    if arr.dtype.kind not in "fc":
        arr = arr.astype(default_dtype())  # Variable(3) is a trainable 3.0, not an error
    return Tensor(arr, requires_grad=True, name=name)


def placeholder(shape=None, *, dtype=None, name: Optional[str] = None) -> Tensor:
    """A symbolic input with no value yet; ``None`` in ``shape`` means any size.

    >>> import chainrule as cr
    >>> x = cr.placeholder((None, 3), name="x")
    >>> (x * 2).shape
    (None, 3)
    """
    if shape is None:
        raise ChainruleError("placeholder needs a shape, e.g. (None, 784); use None for a free dim")
    shape = tuple(None if n is None else int(n) for n in (
        shape if isinstance(shape, (tuple, list)) else (shape,)))
    t = make_leaf(None, name=name, site=capture_site(), shape=shape,
                  dtype=np.dtype(dtype) if dtype is not None else default_dtype())
    t._free = frozenset((t.seq,) if None in shape else ())
    return t


def make_leaf(data, *, name=None, site=(), shape=None, dtype=None) -> Tensor:
    """A leaf that records nothing, built without ``__init__``'s conversions: a constant
    (``data`` an ndarray) or a placeholder (``data`` None, with ``shape`` and ``dtype``)."""
    t = Tensor.__new__(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = False
    t.name = name
    t.op = None
    t.inputs = ()
    t.params = None
    t.site = site
    t.seq = _next_seq()
    t._shape = shape
    t._dtype = dtype
    return t


__all__ = ["Tensor", "tensor", "Variable", "placeholder", "describe"]
