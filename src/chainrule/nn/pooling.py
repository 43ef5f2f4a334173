"""Pooling modules over ``cr.max_pool2d`` and ``cr.avg_pool2d``."""
from __future__ import annotations

from typing import Any

import chainrule as cr

from .module import Module

__all__ = ["AvgPool2d", "MaxPool2d"]


class _Pool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        if ceil_mode:
            raise cr.ChainruleError(f"{type(self).__name__}: ceil_mode=True is not supported")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each window of ``(N, C, H, W)`` inputs, as ``torch.nn.MaxPool2d``
    (``stride`` defaults to ``kernel_size``); the gradient goes to each window's winner.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.MaxPool2d(2)(cr.tensor(np.arange(16.0).reshape(1, 1, 4, 4))).numpy()[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if dilation not in (1, (1, 1)) or return_indices:
            raise cr.ChainruleError("MaxPool2d: dilation and return_indices are not supported")

    def forward(self, x: Any) -> Any:
        return cr.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each window of ``(N, C, H, W)`` inputs, as ``torch.nn.AvgPool2d`` (zero
    padding counts in the window size, PyTorch's default ``count_include_pad=True``).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.AvgPool2d(2)(cr.tensor(np.arange(16.0).reshape(1, 1, 4, 4))).numpy()[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if not count_include_pad:
            raise cr.ChainruleError("AvgPool2d: count_include_pad=False is not supported")

    def forward(self, x: Any) -> Any:
        return cr.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
