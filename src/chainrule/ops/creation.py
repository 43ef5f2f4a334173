"""Tensor creation, as PyTorch: ``zeros ones full arange linspace eye rand randn`` and
``zeros_like ones_like``.

Shapes are given as ints or one tuple (``cr.zeros(2, 3)`` or ``cr.zeros((2, 3))``); floats
take :func:`chainrule.default_dtype` unless ``dtype=`` says otherwise; ``requires_grad=True``
makes a trainable leaf. ``rand``/``randn`` draw from the generator ``cr.manual_seed`` seeds.
The ``*_like`` functions of a symbolic tensor are a node (``full_like``, no gradient), so
they work on free (``None``) dimensions and in compiled code.
"""
from __future__ import annotations

import numpy as np

from .._config import default_dtype
from .._random import default_generator
from ..core.tensor import Tensor
from ..errors import ChainruleError, GraphError
from .registry import primitive


def _shape(size: tuple, op: str) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        shape = tuple(int(n) for n in size)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: a shape is ints or one tuple of ints, got {size!r}") from None
    if any(n < 0 for n in shape):
        raise ChainruleError(f"{op}: negative dimension in shape {shape}")
    return shape


def _float_dtype(dtype) -> np.dtype:
    return default_dtype() if dtype is None else np.dtype(dtype)


def _leaf(arr: np.ndarray, requires_grad: bool, name: str | None = None) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad, name=name)


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros.

    >>> import chainrule as cr
    >>> cr.zeros(2, 3).shape, cr.zeros((2,)).dtype
    ((2, 3), dtype('float32'))
    """
    return _leaf(np.zeros(_shape(size, "zeros"), _float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones.

    >>> import chainrule as cr
    >>> cr.ones(3).numpy().tolist()
    [1.0, 1.0, 1.0]
    """
    return _leaf(np.ones(_shape(size, "ones"), _float_dtype(dtype)), requires_grad)


def _fill_dtype(value, dtype) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    if isinstance(value, float):
        return default_dtype()
    return np.asarray(value).dtype


def full(size, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value as PyTorch's (a float
    gives the default dtype, an int int64, a bool bool).

    >>> import chainrule as cr
    >>> cr.full((2, 2), 7).numpy().tolist()
    [[7, 7], [7, 7]]
    """
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _leaf(np.full(_shape(size, "full"), fill_value, _fill_dtype(fill_value, dtype)),
                 requires_grad)


def arange(start, end=None, step=1, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` up to but not including ``end`` (``arange(n)`` is
    ``0..n-1``). Integers give int64, any float the default dtype, as PyTorch.

    >>> import chainrule as cr
    >>> cr.arange(4).numpy().tolist(), cr.arange(0, 1, 0.25).numpy().tolist()
    ([0, 1, 2, 3], [0.0, 0.25, 0.5, 0.75])
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                   for v in (start, end, step))
        dtype = np.int64 if ints else default_dtype()
    if step == 0:
        raise ChainruleError("arange: step must not be zero")
    # computed in float64 (or int64) and then cast, so a float32 arange has the same length
    # and values as PyTorch's
    wide = np.int64 if np.dtype(dtype).kind in "iu" else np.float64
    return _leaf(np.arange(start, end, step, dtype=wide).astype(dtype), requires_grad)


def linspace(start, end, steps: int | None = None, *, num: int | None = None, dtype=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (NumPy's
    ``num`` is accepted for ``steps``).

    >>> import chainrule as cr
    >>> cr.linspace(0, 1, 5).numpy().tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    n = steps if steps is not None else num
    if n is None:
        raise TypeError("linspace: missing steps (the number of values)")
    if int(n) < 0:
        raise ChainruleError(f"linspace: steps must be non-negative, got {n}")
    arr = np.linspace(start, end, int(n), dtype=np.float64)
    return _leaf(arr.astype(_float_dtype(dtype)), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """The ``n`` x ``m`` identity matrix (square by default).

    >>> import chainrule as cr
    >>> cr.eye(2).numpy().tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    m = n if m is None else m
    if int(n) < 0 or int(m) < 0:
        raise ChainruleError(f"eye: negative size ({n}, {m})")
    return _leaf(np.eye(int(n), int(m), dtype=_float_dtype(dtype)), requires_grad)


def _random(draw, size, dtype, requires_grad, op) -> Tensor:
    shape = _shape(size, op)
    dt = _float_dtype(dtype)
    if dt.kind != "f":
        raise ChainruleError(f"{op}: draws floating-point values, not dtype {dt}")
    if dt in (np.float32, np.float64):
        arr = draw(default_generator(), shape, dt)
    else:                                   # float16: draw in float32, then round
        arr = draw(default_generator(), shape, np.dtype(np.float32)).astype(dt)
    return _leaf(arr, requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform values in [0, 1) from the generator ``cr.manual_seed`` seeds.

    >>> import chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> a = cr.rand(3)
    >>> _ = cr.manual_seed(0)
    >>> bool((cr.rand(3).numpy() == a.numpy()).all())
    True
    """
    return _random(lambda gen, shape, dt: gen.random(shape, dtype=dt), size, dtype,
                   requires_grad, "rand")


def randn(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal values from the generator ``cr.manual_seed`` seeds.

    >>> import chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> cr.randn(2, 3).shape
    (2, 3)
    """
    return _random(lambda gen, shape, dt: gen.standard_normal(shape, dtype=dt), size, dtype,
                   requires_grad, "randn")


# a constant of a symbolic tensor's run-time shape: a node, so free dims are filled at run time
full_like_p = primitive(
    "full_like", lambda x, *, value, dtype: np.full(x.shape, value, dtype=dtype), None,
    lambda a, p, node: f"np.full({a[0]}.shape, {p['value']!r}, dtype=np.{p['dtype'].name})",
    "full_like", infer=lambda x, *, value, dtype: (x.shape, dtype))


def _like(x, value, dtype, requires_grad, op) -> Tensor:
    if not isinstance(x, Tensor):
        x = Tensor(x)
    dt = x.dtype if dtype is None else np.dtype(dtype)
    if x.data is None:
        if requires_grad:
            raise GraphError(f"{op} of a symbolic tensor cannot require grad: make the "
                             f"trainable value a cr.Variable of a fixed shape")
        return full_like_p(x, value=value, dtype=dt)
    return _leaf(np.full(x.shape, value, dtype=dt), requires_grad)


def zeros_like(x, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``x``'s shape and dtype (a free dim of a placeholder stays free).

    >>> import chainrule as cr
    >>> cr.zeros_like(cr.ones(2)).numpy().tolist()
    [0.0, 0.0]
    """
    return _like(x, 0, dtype, requires_grad, "zeros_like")


def ones_like(x, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones of ``x``'s shape and dtype (a free dim of a placeholder stays free).

    >>> import chainrule as cr
    >>> cr.ones_like(cr.zeros(2, dtype="float64")).dtype
    dtype('float64')
    """
    return _like(x, 1, dtype, requires_grad, "ones_like")
