"""Normalisation modules: ``BatchNorm1d``/``BatchNorm2d`` (with running statistics as
buffers), ``LayerNorm`` and ``GroupNorm``, over the ops of ``chainrule/ops/normalization.py``.

Batch norm's buffers are updated in place by an eager training step. In a graph built in
training mode, the module registers the new running mean, variance and
``num_batches_tracked + 1`` as side updates of the output (``graph/state.py``), so any
compiled step that computes the output (``cr.function``, ``opt.minimize``) writes all three,
as the eager step does; in evaluation mode a compiled function reads them when it runs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import chainrule as cr

from ..graph.state import add_side_updates, read
from ..ops import elementwise as ew
from ..ops.normalization import batch_norm_running_stats
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm"]


def _dtype(dtype: Any) -> np.dtype:
    return np.dtype(cr.default_dtype() if dtype is None else dtype)


class _BatchNorm(Module):
    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype: Any = None) -> None:
        super().__init__()
        if momentum is None:
            raise cr.ChainruleError(f"{type(self).__name__}: momentum=None (a cumulative "
                                    "average) is not supported; give a number")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = _dtype(dtype)
        if self.affine:
            self.weight = cr.Variable(np.ones(self.num_features, dtype), name="weight")
            self.bias = cr.Variable(np.zeros(self.num_features, dtype), name="bias")
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches seen (in place)."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Any) -> Any:
        ndim = len(x.shape)
        if ndim not in self._ndims:
            wanted = " or ".join(f"{n}-d" for n in self._ndims)
            raise cr.ShapeError(f"{type(self).__name__} expects {wanted} input, got shape "
                                f"{tuple(x.shape)}")
        # in a graph, running statistics are read through graph nodes so that compiled code
        # uses their values at call time (ops on them would otherwise be folded into constants)
        symbolic = isinstance(x, cr.Tensor) and x.data is None
        rm, rv, count = self.running_mean, self.running_var, self.num_batches_tracked
        if not self.training and self.track_running_stats:
            if symbolic:
                rm, rv = read(rm), read(rv)
            return cr.batch_norm(x, rm, rv, self.weight, self.bias, training=False,
                                 eps=self.eps)
        # training, or no running statistics to use: the batch's own statistics
        update = self.training and self.track_running_stats
        if not symbolic:        # eager: the op updates the running statistics in place
            out = cr.batch_norm(x, rm if update else None, rv if update else None,
                                self.weight, self.bias, training=True, momentum=self.momentum,
                                eps=self.eps)
            if update:
                count.data += 1
            return out
        out = cr.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        if update:              # a compiled step that computes ``out`` writes these
            new_mean, new_var = batch_norm_running_stats(x, read(rm), read(rv), self.momentum)
            add_side_updates(out, [(rm, new_mean), (rv, new_var),
                                   (count, ew.add(read(count), 1))])
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs, as ``torch.nn.BatchNorm1d``.

    ``weight`` starts at ones and ``bias`` at zeros; the buffers ``running_mean`` (zeros),
    ``running_var`` (ones) and ``num_batches_tracked`` are in the state dict. Training uses
    the batch's statistics and updates the running ones (variance unbiased); ``eval()``
    uses the running ones.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> bn = cr.nn.BatchNorm1d(2, dtype=np.float64)
    >>> out = bn(cr.tensor(np.array([[1.0, 10.0], [3.0, 30.0]])))
    >>> bn.running_mean.numpy().tolist(), int(bn.num_batches_tracked.item())
    ([0.2, 2.0], 1)
    """

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs per channel, as ``torch.nn.BatchNorm2d``
    (see :class:`BatchNorm1d` for parameters and buffers).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> bn = cr.nn.BatchNorm2d(3)
    >>> sorted(bn.state_dict())
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    _ndims = (4,)


class LayerNorm(Module):
    """Normalisation over the trailing ``normalized_shape`` axes of each sample, as
    ``torch.nn.LayerNorm``; ``weight`` (ones) and ``bias`` (zeros) have that shape.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> cr.nn.LayerNorm(2, eps=0.0)(cr.tensor(np.array([[1.0, 3.0]]))).numpy()
    array([[-1.,  1.]])
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *,
                 dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
            else tuple(normalized_shape)
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = _dtype(dtype)
        self.weight = cr.Variable(np.ones(self.normalized_shape, dtype), name="weight") \
            if self.elementwise_affine else None
        self.bias = cr.Variable(np.zeros(self.normalized_shape, dtype), name="bias") \
            if self.elementwise_affine and bias else None

    def forward(self, x: Any) -> Any:
        return cr.layer_norm(x, self.normalized_shape, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalisation of each sample over groups of channels (and all spatial axes), as
    ``torch.nn.GroupNorm``; per-channel ``weight`` (ones) and ``bias`` (zeros).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> gn = cr.nn.GroupNorm(2, 4)
    >>> gn(cr.tensor(np.random.default_rng(0).standard_normal((3, 4, 5, 5)))).shape
    (3, 4, 5, 5)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, dtype: Any = None) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise cr.ChainruleError(f"GroupNorm: num_groups={num_groups} must divide "
                                    f"num_channels={num_channels}")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps = float(eps)
        self.affine = bool(affine)
        dtype = _dtype(dtype)
        self.weight = cr.Variable(np.ones(self.num_channels, dtype), name="weight") \
            if self.affine else None
        self.bias = cr.Variable(np.zeros(self.num_channels, dtype), name="bias") \
            if self.affine else None

    def forward(self, x: Any) -> Any:
        return cr.group_norm(x, self.num_groups, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
