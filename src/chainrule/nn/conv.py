"""``Conv2d``: the module over ``cr.conv2d``, with PyTorch's parameters and initialisation."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import chainrule as cr

from .._random import default_generator
from .module import Module

__all__ = ["Conv2d"]


def _pair(value: Any, what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < 0 for v in pair):
        raise cr.ChainruleError(f"Conv2d: {what} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


class Conv2d(Module):
    """2-D convolution (cross-correlation) over ``(N, C, H, W)`` inputs, as ``torch.nn.Conv2d``.

    ``weight`` has shape ``(out_channels, in_channels // groups, kH, kW)`` and ``bias``
    ``(out_channels,)``, both drawn from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = in_channels // groups * kH * kW`` (PyTorch's default). ``padding`` is an int,
    a pair, ``"same"`` or ``"valid"``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> conv = cr.nn.Conv2d(1, 4, 3, padding=1)
    >>> conv.weight.shape, conv(cr.tensor(np.zeros((2, 1, 8, 8), np.float32))).shape
    ((4, 1, 3, 3), (2, 4, 8, 8))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, rng: np.random.Generator | None = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise cr.ChainruleError(f"Conv2d: only padding_mode='zeros' is supported, got "
                                    f"{padding_mode!r}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise cr.ChainruleError(f"Conv2d: groups={groups} must divide in_channels="
                                    f"{in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups = int(groups)
        rng = default_generator() if rng is None else rng
        dtype = np.dtype(cr.default_dtype() if dtype is None else dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        fan_in = int(np.prod(shape[1:]))
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight = cr.Variable(rng.uniform(-bound, bound, shape).astype(dtype), name="weight")
        if bias:
            values = rng.uniform(-bound, bound, (self.out_channels,)).astype(dtype)
            self.bias = cr.Variable(values, name="bias")
        else:
            self.bias = None

    def forward(self, x: Any) -> Any:
        return cr.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, groups=self.groups)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) \
                else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
