"""Batch, layer and group normalisation, as ``torch.nn.functional``'s.

Batch norm in training is one primitive, ``batch_norm_train``: its statistics are sums over
every axis but the channels, which on a CNN's channels-last memory are one matrix-vector
product with a ones vector (``np.sum(axis=(0, 2, 3))`` over many short rows is ~30x slower),
and its gradient has the closed form of the batch-norm paper, written against ``F`` so that it
is a graph again (double backward, compiled code). ``channel_sum`` is that per-channel sum as a
primitive of its own (its gradient a broadcast), shared by the rule and the running-statistic
updates.

Layer norm and group norm are compositions of ``mean`` and elementwise ops: their axes are
the trailing ones, where NumPy's reductions are already fast, and composing keeps every order
of derivative correct with no rule to write.

The running statistics of batch norm are updated in place in eager mode. A compiled step gets
them as tensors, from :func:`batch_norm_running_stats`, to pass as updates
(``cr.function(..., updates=[(running_mean, new_mean), ...])``): the new values are then
computed and written by the compiled step itself.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from . import elementwise as ew
from . import reduction as red
from . import shape as sh
from .namespace import A, T
from .registry import lift, primitive


def channel_sum_array(x: np.ndarray) -> np.ndarray:
    """Sum over every axis but axis 1: one matvec when the channels are innermost in memory."""
    c = x.shape[1]
    if x.ndim == 2:
        return np.ones(x.shape[0], dtype=x.dtype) @ x
    last = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
    if last.flags.c_contiguous:
        return np.ones(x.size // c if c else 0, dtype=x.dtype) @ last.reshape(-1, c)
    return np.sum(x, axis=(0,) + tuple(range(2, x.ndim)))


def _per_channel_shape(ndim: int, c) -> tuple:
    return (1, c) + (1,) * (ndim - 2)


def _channel_sum_code(a, p, node) -> str:
    x = node.inputs[0]
    if x.ndim == 2:
        return f"np.ones(len({a[0]}), dtype={a[0]}.dtype) @ {a[0]}"
    axes = (0,) + tuple(range(2, x.ndim)) + (1,)
    return (f"np.ones({a[0]}.size // {x.shape[1]}, dtype={a[0]}.dtype) @ "
            f"np.transpose({a[0]}, {axes}).reshape(-1, {x.shape[1]})")


# d channel_sum = g broadcast back over the batch and spatial axes
channel_sum = primitive(
    "channel_sum", channel_sum_array,
    (lambda F, g, out, x: F.broadcast_like(F.per_channel(g, x), x),),
    _channel_sum_code, "sum per channel", infer=lambda x: ((x.shape[1],), x.dtype))

_AXES = {2: (0,), 3: (0, 2), 4: (0, 2, 3), 5: (0, 2, 3, 4)}


def _per_channel_a(v, like):
    return v.reshape(_per_channel_shape(like.ndim, like.shape[1]))


A.__dict__.update(
    channel_sum=channel_sum_array, per_channel=_per_channel_a,
    channel_count=lambda x: np.asarray(x.size // x.shape[1] if x.shape[1] else 0, x.dtype))
T.__dict__.update(
    channel_sum=channel_sum,
    per_channel=lambda v, like: sh.reshape(v, shape=_per_channel_shape(like.ndim, like.shape[1])),
    channel_count=lambda x: red.count(x, axis=_AXES[x.ndim]))


def _batch_norm_train(x, w, b, *, eps):
    m = x.size // x.shape[1] if x.shape[1] else 0
    shape = _per_channel_shape(x.ndim, x.shape[1])
    xc = x - (channel_sum_array(x) / m).reshape(shape)
    var = channel_sum_array(xc * xc) / m
    scale = w / np.sqrt(var + eps)
    xc *= scale.reshape(shape)
    xc += b.reshape(shape)
    return xc


def _batch_norm_vjp(F, g, out, x, w, b, *, eps):
    # with xc = x - mean and inv = 1 / sqrt(var + eps) over the m values of each channel:
    # gb = sum(g), gw = inv sum(g xc), gx = w inv (g - gb / m - xc inv^2 sum(g xc) / m).
    # Written with xc rather than xhat = xc inv: two passes fewer over the batch
    m = F.channel_count(x)
    m = m + (m == 0)          # an empty batch: its sums are 0 and so are the gradients
    xc = x - F.per_channel(F.channel_sum(x) / m, x)
    inv = (F.channel_sum(xc * xc) / m + eps) ** -0.5
    gb = F.channel_sum(g)
    gxc = F.channel_sum(g * xc)
    scale = w * inv
    gx = g * F.per_channel(scale, x) - (xc * F.per_channel(scale * inv * inv * gxc / m, x)
                                        + F.per_channel(scale * gb / m, x))
    return gx, inv * gxc, gb


def _batch_norm_code(a, p, node) -> str:
    x, w, b = a
    nd = node.inputs[0].ndim
    c = node.inputs[0].shape[1]
    shape = _per_channel_shape(nd, c)
    axes = (0,) + tuple(range(2, nd)) + (1,)
    rows = f"np.transpose({x}, {axes}).reshape(-1, {c})" if nd > 2 else x
    return "\n".join([
        f"$_ones = np.ones({x}.size // {c}, dtype={x}.dtype)",
        f"$ = {x} - ($_ones @ {rows} / len($_ones)).reshape({shape})",
        f"$_var = $_ones @ np.transpose($ * $, {axes}).reshape(-1, {c}) / len($_ones)"
        if nd > 2 else "$_var = $_ones @ ($ * $) / len($_ones)",
        f"$ *= ({w} / np.sqrt($_var + {p['eps']!r})).reshape({shape})",
        f"np.add($, {b}.reshape({shape}), out=$)",
    ])


# the batch's own statistics: mean and biased variance per channel (training mode)
batch_norm_train = primitive(
    "batch_norm_train", _batch_norm_train, _batch_norm_vjp, _batch_norm_code, "batch norm",
    infer=lambda x, w, b, **p: (x.shape, x.dtype))


def _as_tensor(v, like=None) -> Tensor:
    if isinstance(v, Tensor):
        return v
    arr = np.asarray(v)
    if like is not None and arr.dtype != like.dtype:
        arr = arr.astype(like.dtype)
    return lift(arr, None)


def _array(v):
    return v.data if isinstance(v, Tensor) else v


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (axis 1 of (N, C) or (N, C, H, W)), as PyTorch's.

    In training the batch's mean and biased variance are used, and ``running_mean`` /
    ``running_var`` (arrays or tensors, may be None) are updated in place with ``momentum``
    (the running variance unbiased). Otherwise the running statistics are used. On a
    symbolic graph, running statistics given as tensors (Variables or module buffers) are
    updated by any compiled step that computes the output (see ``graph/state.py``).

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> cr.batch_norm(x, rm, rv, training=True, eps=0.0).numpy().tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> rm.tolist(), rv.tolist()
    ([0.2, 2.0], [1.1, 20.9])
    """
    x = _as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected x of shape (N, C, ...), got {x.shape}")
    c = x.shape[1]
    weight = _as_tensor(np.ones(c, x.dtype) if weight is None else weight, x)
    bias = _as_tensor(np.zeros(c, x.dtype) if bias is None else bias, x)
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v is not None and tuple(np.shape(_array(v)) if not isinstance(v, Tensor)
                                   else v.shape) != (c,):
            raise ShapeError(f"batch_norm: {name} of shape {np.shape(_array(v))} for "
                             f"x of shape {x.shape} with {c} channels")
    if training:
        if x.data is not None and x.shape[0] * int(np.prod(x.shape[2:])) == 1:
            raise ShapeError(f"batch_norm: training needs more than one value per channel, "
                             f"got x of shape {x.shape}")
        out = batch_norm_train(x, weight, bias, eps=float(eps))
        if running_mean is None or running_var is None:
            return out
        if x.data is not None:
            if x.size == 0:         # nothing to learn from an empty batch
                return out
            _update_running(x.data, _array(running_mean), _array(running_var), momentum)
        elif isinstance(running_mean, Tensor) and isinstance(running_var, Tensor):
            # a graph: computing ``out`` in a compiled step also writes the new statistics
            from ..graph.state import add_side_updates

            new_mean, new_var = batch_norm_running_stats(x, _graph_read(running_mean, x),
                                                         _graph_read(running_var, x), momentum)
            add_side_updates(out, [(running_mean, new_mean), (running_var, new_var)])
        return out
    if running_mean is None or running_var is None:
        raise ShapeError("batch_norm: evaluation mode (training=False) needs running_mean "
                         "and running_var")
    rm = _graph_read(_as_tensor(running_mean, x), x)
    rv = _graph_read(_as_tensor(running_var, x), x)
    shape = _per_channel_shape(x.ndim, c)
    scale = ew.mul(weight, ew.powc(ew.add(rv, eps), p=-0.5))
    shift = ew.sub(bias, ew.mul(rm, scale))
    return ew.add(ew.mul(x, sh.reshape(scale, shape=shape)), sh.reshape(shift, shape=shape))


def _graph_read(state: Tensor, x: Tensor) -> Tensor:
    """On a graph, a buffer with a value (no gradient) read through a node, so that compiled
    code reads it when it runs instead of freezing what it held at build time."""
    if x.data is None and state.data is not None and not state.requires_grad:
        from ..graph.state import read

        return read(state)
    return state


def _update_running(x: np.ndarray, rm: np.ndarray, rv: np.ndarray, momentum: float) -> None:
    m = x.size // x.shape[1]
    mean = channel_sum_array(x) / m
    xc = x - mean.reshape(_per_channel_shape(x.ndim, x.shape[1]))
    var = channel_sum_array(xc * xc) / max(m - 1, 1)
    rm *= 1 - momentum
    rm += momentum * mean.astype(rm.dtype, copy=False)
    rv *= 1 - momentum
    rv += momentum * var.astype(rv.dtype, copy=False)


def batch_norm_running_stats(x, running_mean, running_var, momentum: float = 0.1) -> tuple:
    """The running mean and (unbiased) variance after one training batch ``x``, as tensors.

    What :func:`batch_norm` writes in place in eager mode; on a symbolic graph, pass the pairs
    to ``cr.function(updates=[(running_mean, new_mean), (running_var, new_var)])`` so the
    compiled step updates them.

    >>> import chainrule as cr, numpy as np
    >>> rm, rv = cr.Variable(np.zeros(1)), cr.Variable(np.ones(1))
    >>> x = cr.placeholder((None, 1), dtype=np.float64)
    >>> from chainrule.ops.normalization import batch_norm_running_stats
    >>> m, v = batch_norm_running_stats(x, rm, rv)
    >>> f = cr.function([x], [m, v], updates=[(rm, m), (rv, v)])
    >>> _ = f(np.array([[1.0], [3.0]]))
    >>> rm.numpy().tolist(), rv.numpy().tolist()
    ([0.2], [1.1])
    """
    x = _as_tensor(x)
    rm, rv = _as_tensor(running_mean, x), _as_tensor(running_var, x)
    m = T.channel_count(x)
    mean = ew.div(channel_sum(x), m)
    xc = ew.sub(x, T.per_channel(mean, x))
    var = ew.div(channel_sum(ew.mul(xc, xc)), ew.sub(m, 1.0))
    new_mean = ew.add(ew.mul(rm, 1.0 - momentum), ew.mul(mean, momentum))
    new_var = ew.add(ew.mul(rv, 1.0 - momentum), ew.mul(var, momentum))
    return new_mean, new_var


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes, as PyTorch's.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor(np.array([[1.0, 3.0], [2.0, 2.0]]))
    >>> cr.layer_norm(x[:1], 2, eps=0.0).numpy()[0].tolist()
    [-1.0, 1.0]
    """
    x = _as_tensor(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != tuple(shape):
        raise ShapeError(f"layer_norm: normalized_shape {shape} does not end x's shape {x.shape}")
    out = _standardize(x, tuple(range(-k, 0)), eps)
    if weight is not None:
        out = ew.mul(out, weight)
    if bias is not None:
        out = ew.add(out, bias)
    return out


def _standardize(x: Tensor, axes: tuple, eps: float) -> Tensor:
    xc = ew.sub(x, red.mean(x, axis=axes, keepdims=True))
    var = red.mean(ew.mul(xc, xc), axis=axes, keepdims=True)
    return ew.mul(xc, ew.powc(ew.add(var, eps), p=-0.5))


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over groups of channels (and all spatial axes), as PyTorch's.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor(np.array([[[1.0], [3.0], [5.0], [5.0]]]))
    >>> cr.group_norm(x, 2, eps=0.0).numpy().ravel()[:2].tolist()
    [-1.0, 1.0]
    """
    x = _as_tensor(x)
    if x.ndim < 2 or x.shape[1] is None or x.shape[1] % num_groups:
        raise ShapeError(f"group_norm: {num_groups} groups do not divide the channels of x "
                         f"of shape {x.shape}")
    rest = x.shape[1:]
    if any(n is None for n in rest):
        raise ShapeError(f"group_norm: only the batch size may be None, got {x.shape}")
    size = int(np.prod(rest)) // num_groups
    n = x.shape[0]
    grouped = sh.reshape(x, shape=(-1 if n is None else n, num_groups, size))
    out = sh.reshape(_standardize(grouped, (-1,), eps), shape=(-1 if n is None else n,) + tuple(rest))
    shape = _per_channel_shape(x.ndim, x.shape[1])
    if weight is not None:
        out = ew.mul(out, sh.reshape(_as_tensor(weight, x), shape=shape))
    if bias is not None:
        out = ew.add(out, sh.reshape(_as_tensor(bias, x), shape=shape))
    return out
