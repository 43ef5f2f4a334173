"""Gradient clipping with PyTorch's rules (``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_``): they rescale or clamp the ``.grad`` of each parameter in place, between
``backward()`` and ``optimizer.step()``."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core.tensor import Tensor, tensor
from ..errors import ChainruleError

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


def _write(grad: Tensor, values: np.ndarray) -> None:
    if grad.data.flags.writeable:
        grad.data[...] = values
    else:  # a gradient handed out as a read-only (broadcast) view: replace it
        grad.data = np.array(values, dtype=grad.data.dtype)


def _vector_norm(values: np.ndarray, norm_type: float) -> Any:
    values = values.ravel()
    if values.size == 0:
        return values.dtype.type(0)
    return values.dtype.type(np.linalg.norm(values, ord=norm_type))


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector
    (``norm_type`` may be ``float('inf')``); each gradient is multiplied by
    ``min(1, max_norm / (total_norm + 1e-6))``. Parameters without a gradient are skipped.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        The parameters whose ``.grad`` to clip (``model.parameters()``).
    max_norm : float
        The largest norm allowed.
    norm_type : float
        The p of the p-norm.
    error_if_nonfinite : bool
        Raise ``ChainruleError`` when the total norm is NaN or infinite (otherwise the
        gradients are scaled by it and become NaN, as in PyTorch).

    Returns
    -------
    Tensor
        The total norm of the gradients before clipping, a 0-d tensor.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.zeros(2))
    >>> w.grad = cr.tensor(np.array([3.0, 4.0]))
    >>> cr.nn.utils.clip_grad_norm_([w], max_norm=1.0).item()
    5.0
    >>> w.grad.data.round(6)
    array([0.6, 0.8])
    """
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    dtype = np.result_type(*[g.data.dtype for g in grads])
    norms = np.array([_vector_norm(g.data, norm_type) for g in grads], dtype=dtype)
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise ChainruleError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{total}; pass error_if_nonfinite=False to scale by it anyway")
    coef = dtype.type(max_norm) / (total + dtype.type(1e-6))
    if coef < 1:
        for g in grads:
            _write(g, g.data * coef.astype(g.data.dtype))
    return tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.zeros(3))
    >>> w.grad = cr.tensor(np.array([-3.0, 0.5, 4.0]))
    >>> cr.nn.utils.clip_grad_value_(w, 1.0)
    >>> w.grad.data
    array([-1. ,  0.5,  1. ])
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        _write(g, np.clip(g.data, -clip_value, clip_value))
