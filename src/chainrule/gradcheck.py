"""Analytic against numerical gradients, by central differences.

The check runs in float64 whatever the inputs' dtype (finite differences in float32 measure
rounding, not derivatives) and projects the output on a fixed random direction, so any output
shape costs one backward pass and two forward passes per input element.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .core.tensor import Tensor
from .errors import GradcheckError


def _as_inputs(inputs) -> list[Tensor]:
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    out = []
    for x in inputs:
        if isinstance(x, Tensor):
            # C order, so that reshape(-1) below is a view the perturbations write through
            arr = np.array(x.numpy(), dtype=np.float64 if x.dtype.kind == "f" else x.dtype,
                           order="C")
            out.append(Tensor(arr, requires_grad=x.requires_grad and arr.dtype.kind == "f",
                              name=x.name))
        else:
            out.append(Tensor(np.array(x, dtype=np.float64, order="C"), requires_grad=True))
    return out


def _scalar(fn: Callable, xs: Sequence[Tensor], w) -> Tensor:
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise GradcheckError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return (out * w).sum() if w is not None else out.sum()


def numerical_grad(fn: Callable, inputs, eps: float = 1e-6, grad_output=None) -> list:
    """Central-difference gradients of ``sum(fn(*inputs) * grad_output)`` (``grad_output``
    defaults to ones), one array per input.

    >>> import chainrule as cr
    >>> [g.round(4).tolist() for g in cr.numerical_grad(lambda x: x ** 2, [[1.0, 2.0]])]
    [[2.0, 4.0]]
    """
    xs = _as_inputs(inputs)
    grads = []
    for x in xs:
        g = np.zeros(x.data.shape, dtype=np.float64)
        if x.data.dtype.kind == "f":
            flat = x.data.reshape(-1)   # a view: writes go into x.data
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                hi = _scalar(fn, xs, grad_output).item()
                flat[i] = old - eps
                lo = _scalar(fn, xs, grad_output).item()
                flat[i] = old
                g.reshape(-1)[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(fn: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """Compare the analytic gradients of ``fn(*inputs)`` with central differences.

    Returns True, or raises :class:`GradcheckError` naming the input, the worst element and
    both values. NaN on either side is reported, never passed.

    >>> import chainrule as cr
    >>> cr.gradcheck(lambda x, y: (x * y).tanh(), [[0.5, -1.0], [2.0, 0.3]])
    True
    """
    xs = _as_inputs(inputs)
    probe = fn(*xs)
    if not isinstance(probe, Tensor):
        raise GradcheckError(f"gradcheck: fn must return a Tensor, got {type(probe).__name__}")
    rng = np.random.default_rng(seed)
    w = Tensor(rng.uniform(0.5, 1.5, probe.shape) * rng.choice([-1.0, 1.0], probe.shape))
    from .autodiff import grad

    wanted = [x for x in xs if x.requires_grad]
    if not wanted:
        raise GradcheckError("gradcheck: no input requires grad")
    analytic = grad(_scalar(fn, xs, w), wanted, allow_unused=True)
    numeric = numerical_grad(fn, xs, eps=eps, grad_output=w)
    k = 0
    for i, x in enumerate(xs):
        if not x.requires_grad:
            continue
        a = analytic[k]
        k += 1
        a = np.zeros(x.shape) if a is None else np.asarray(a.numpy(), dtype=np.float64)
        n = numeric[i]
        label = f"input {i}" + (f" ('{x.name}')" if x.name else "") + \
            f" of shape {tuple(x.shape)}"
        if a.shape != n.shape:
            raise GradcheckError(f"gradcheck: {label}: analytic gradient has shape {a.shape}")
        bad = np.isnan(a) | np.isnan(n)
        if bad.any():
            j = np.unravel_index(np.argmax(bad), a.shape)
            raise GradcheckError(f"gradcheck: {label}: NaN at element {tuple(map(int, j))}: "
                                 f"analytic {a[j]!r}, numerical {n[j]!r}")
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        if (err > 0).any():
            j = np.unravel_index(np.argmax(err), a.shape)
            raise GradcheckError(
                f"gradcheck: {label}: gradients differ at element {tuple(map(int, j))}: "
                f"analytic {a[j]:.6g}, numerical {n[j]:.6g} "
                f"(|diff| {abs(a[j] - n[j]):.3g} > atol {atol} + rtol {rtol} * |numerical|)")
    return True
