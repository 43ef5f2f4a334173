"""Graph-wide state kept in contextvars: grad mode, default dtype, anomaly mode.

Contextvars rather than module globals so that threads and async tasks each see their own
setting, and a ``with`` block always restores what it found.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import numpy as np

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("grad_enabled", default=True)
_default_dtype: contextvars.ContextVar[np.dtype] = contextvars.ContextVar(
    "default_dtype", default=np.dtype(np.float32)
)
_anomaly: contextvars.ContextVar[bool] = contextvars.ContextVar("anomaly", default=False)
# While a backward rule builds a graph of gradients: the node whose rule is running, so every
# gradient node knows which forward node it came from (compiled source comments, drawings)
backward_origin: contextvars.ContextVar = contextvars.ContextVar("backward_origin", default=None)

# Read on the hot path of every op: bind the getters once.
grad_enabled = _grad_enabled.get
anomaly_enabled = _anomaly.get


def is_grad_enabled() -> bool:
    """Whether new operations are recorded for differentiation."""
    return _grad_enabled.get()


@contextlib.contextmanager
def _set(var: contextvars.ContextVar, value) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def no_grad():
    """Context manager that stops recording: results carry no graph.

    >>> import chainrule as cr
    >>> w = cr.Variable(2.0)
    >>> with cr.no_grad():
    ...     y = w * 3
    >>> y.requires_grad
    False
    """
    return _set(_grad_enabled, False)


def enable_grad():
    """Context manager that turns recording back on inside a ``no_grad`` block."""
    return _set(_grad_enabled, True)


def detect_anomaly():
    """Context manager: the first op whose forward or backward result holds NaN or Inf
    raises :class:`chainrule.GraphError` naming the op and the line of user code that built it.

    >>> import chainrule as cr
    >>> x = cr.Variable([0.0])
    >>> with cr.detect_anomaly():
    ...     try:
    ...         cr.log(x)
    ...     except cr.GraphError as e:
    ...         print("caught")
    caught
    """
    return _set(_anomaly, True)


def default_dtype() -> np.dtype:
    """The dtype Python floats become (float32 unless changed)."""
    return _default_dtype.get()


def set_default_dtype(dtype) -> None:
    """Set the dtype Python floats become, e.g. ``np.float64`` for gradient checking."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"default dtype must be a floating dtype, got {dt}")
    _default_dtype.set(dt)
