"""Weight initialisation in place, with PyTorch's names, fans and gains (``torch.nn.init``).

Each function overwrites ``tensor.data`` with values drawn from ``cr.manual_seed``'s generator
(or the ``generator`` given), cast to the tensor's dtype, records nothing on any graph, and
returns the tensor. Fans follow PyTorch: for a weight of shape ``(out, in, *kernel)`` (Linear
``(out, in)``, Conv2d ``(O, C, kH, kW)``), ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._random import default_generator
from ..core.tensor import Tensor
from ..errors import ChainruleError

__all__ = [
    "calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]


def _target(tensor: Any, fn: str) -> np.ndarray:
    if not isinstance(tensor, Tensor) or tensor.data is None:
        what = type(tensor).__name__ if not isinstance(tensor, Tensor) else "a symbolic tensor"
        raise ChainruleError(f"nn.init.{fn} works on Variables (tensors with a value), got {what}")
    if tensor.data.dtype.kind not in "fc":
        raise ChainruleError(f"nn.init.{fn} needs a floating tensor, got dtype {tensor.dtype}")
    return tensor.data


def _fill(tensor: Tensor, values: Any) -> Tensor:
    data = tensor.data
    if data.flags.writeable:
        data[...] = values
    else:  # a read-only (broadcast) array: give the leaf a fresh one of the same shape
        tensor.data = np.broadcast_to(np.asarray(values, dtype=data.dtype), data.shape).copy()
    return tensor


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    return default_generator() if generator is None else generator


def _fans(shape: tuple[int, ...], fn: str) -> tuple[int, int]:
    if len(shape) < 2:
        raise ChainruleError(
            f"nn.init.{fn}: fan in and fan out need a tensor of 2 or more dimensions, got shape "
            f"{shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: tuple[int, ...], mode: str, fn: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ChainruleError(f"nn.init.{fn}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape, fn)
    return fan_in if mode == "fan_in" else fan_out


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain PyTorch recommends for ``nonlinearity`` (``param``: leaky ReLU's slope).

    Examples
    --------
    >>> calculate_gain("relu") == 2 ** 0.5, calculate_gain("tanh")
    (True, 1.6666666666666667)
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ChainruleError(f"negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ChainruleError(f"unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None) -> Tensor:
    """Fill with draws from U(a, b).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.zeros((2, 3), np.float32))
    >>> _ = cr.nn.init.uniform_(w, -1.0, 1.0)
    >>> bool(np.all(np.abs(w.data) <= 1.0)), w.dtype
    (True, dtype('float32'))
    """
    data = _target(tensor, "uniform_")
    return _fill(tensor, _rng(generator).uniform(a, b, size=data.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Tensor:
    """Fill with draws from N(mean, std²).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> w = cr.nn.init.normal_(cr.Variable(np.zeros(10_000)), mean=2.0, std=0.5)
    >>> round(float(w.data.mean()), 1), round(float(w.data.std()), 1)
    (2.0, 0.5)
    """
    data = _target(tensor, "normal_")
    return _fill(tensor, _rng(generator).normal(mean, std, size=data.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.init.constant_(cr.Variable(np.zeros(2)), 0.5).data
    array([0.5, 0.5])
    """
    _target(tensor, "constant_")
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.init.zeros_(cr.Variable(np.ones(2))).data
    array([0., 0.])
    """
    _target(tensor, "zeros_")
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.init.ones_(cr.Variable(np.zeros(2))).data
    array([1., 1.])
    """
    _target(tensor, "ones_")
    return _fill(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.nn.init.xavier_uniform_(cr.Variable(np.zeros((30, 20))))
    >>> bool(np.abs(w.data).max() <= np.sqrt(6 / 50))
    True
    """
    data = _target(tensor, "xavier_uniform_")
    if data.size == 0:
        return tensor
    fan_in, fan_out = _fans(data.shape, "xavier_uniform_")
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).uniform(-bound, bound, size=data.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std²) with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> w = cr.nn.init.xavier_normal_(cr.Variable(np.zeros((200, 300))))
    >>> bool(abs(w.data.std() - np.sqrt(2 / 500)) < 1e-3)
    True
    """
    data = _target(tensor, "xavier_normal_")
    if data.size == 0:
        return tensor
    fan_in, fan_out = _fans(data.shape, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _rng(generator).normal(0.0, std, size=data.shape))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Tensor:
    """He uniform: U(-b, b) with ``b = gain * sqrt(3 / fan)``, ``gain`` from
    ``calculate_gain(nonlinearity, a)``, ``fan`` the fan in or out (``mode``).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> w = cr.Variable(np.zeros((16, 3, 5, 5)))   # a Conv2d weight: fan_in = 3 * 5 * 5
    >>> _ = cr.nn.init.kaiming_uniform_(w, nonlinearity="relu")
    >>> bool(np.abs(w.data).max() <= np.sqrt(6 / 75))
    True
    """
    data = _target(tensor, "kaiming_uniform_")
    if data.size == 0:  # nothing to draw (PyTorch warns and does the same)
        return tensor
    fan = _fan(data.shape, mode, "kaiming_uniform_")
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, _rng(generator).uniform(-bound, bound, size=data.shape))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Tensor:
    """He normal: N(0, std²) with ``std = gain / sqrt(fan)``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> _ = cr.manual_seed(0)
    >>> w = cr.nn.init.kaiming_normal_(cr.Variable(np.zeros((300, 200))), mode="fan_out",
    ...                                nonlinearity="relu")
    >>> bool(abs(w.data.std() - np.sqrt(2 / 300)) < 1e-3)
    True
    """
    data = _target(tensor, "kaiming_normal_")
    if data.size == 0:
        return tensor
    fan = _fan(data.shape, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, _rng(generator).normal(0.0, std, size=data.shape))
