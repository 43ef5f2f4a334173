"""Max and average pooling over (N, C, H, W), as ``torch.nn.functional``'s.

Both are primitives: a pooling window is a fixed gather of pixels, and its gradient is the
matching scatter. Each forward and backward kernel is written once, as NumPy source shared by
eager execution and compiled code (which prints it above the function), and each backward is
itself a registry op whose own gradient is the forward gather again, so double backward is a
graph too:

* max: ``max_pool2d`` -> ``max_pool2d_scatter`` (each window's gradient to its winner, ties
  split evenly) -> ``max_pool2d_gather`` (the winners' entries, averaged over ties) -> scatter.
  The winner is piecewise constant in ``x``: no gradient flows through the choice itself;
* average: ``avg_pool2d`` -> ``avg_pool2d_scatter`` (g / window size back over each window)
  -> ``avg_pool2d`` again.

Windows are strided slices, one per kernel offset, combined with pairwise ``np.maximum`` /
``+``: a 2x2 max pool is two ``np.maximum`` calls (``.max(axis=(3, 5))`` on a reshaped view is
~30x slower). New arrays are channels-last in memory (NCHW views), like the conv's outputs,
so a CNN's activations keep one memory order end to end.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from .namespace import A, T
from .registry import lift, primitive

SOURCE = {
    "_pool_windows": '''\
def _pool_windows(x, kernel, stride, padding, fill):
    # the padded image (channels-last memory, NCHW view) and one strided view per offset
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        xp = np.full((n, h + 2 * ph, w + 2 * pw, c), fill, dtype=x.dtype).transpose(0, 3, 1, 2)
        xp[:, :, ph:ph + h, pw:pw + w] = x
    else:
        xp = x
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    return xp, [xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                for i in range(kh) for j in range(kw)]
''',
    "_like_layout": '''\
def _like_layout(g, x):
    # g in x's memory order: a gradient reshaped back from a flatten is NCHW while a conv's
    # activations are channels-last, and NumPy loops over mixed orders ~7x slower
    if (g.strides[1] < g.strides[3]) == (x.strides[1] < x.strides[3]) or g.ndim != 4:
        return g
    if x.strides[1] < x.strides[3]:
        return np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(g)
''',
    "_max_pool2d": '''\
def _max_pool2d(x, kernel, stride, padding):
    if kernel == stride == (2, 2) and padding == (0, 0):   # pairwise: rows, then columns
        oh, ow = x.shape[2] // 2, x.shape[3] // 2
        rows = np.maximum(x[:, :, 0:2 * oh:2], x[:, :, 1:2 * oh:2])
        return np.maximum(rows[:, :, :, 0:2 * ow:2], rows[:, :, :, 1:2 * ow:2])
    _, wins = _pool_windows(x, kernel, stride, padding, -np.inf)
    out = wins[0].copy()
    for win in wins[1:]:
        np.maximum(out, win, out=out)
    return out
''',
    "_max_pool2d_scatter": '''\
def _max_pool2d_scatter(g, x, out, kernel, stride, padding):
    # each window's gradient to the pixel(s) equal to its maximum, split evenly among ties
    n, c, h, w = x.shape
    ph, pw = padding
    xp, wins = _pool_windows(x, kernel, stride, padding, -np.inf)
    g = _like_layout(g, out)
    hits = [win == out for win in wins]
    if sum(np.count_nonzero(hit) for hit in hits) > out.size:     # ties: split g evenly
        count = hits[0].astype(g.dtype)
        for hit in hits[1:]:
            count += hit
        g = g / count
    gx = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=g.dtype).transpose(0, 3, 1, 2)
    _, gwins = _pool_windows(gx, kernel, stride, (0, 0), 0)
    if kernel[0] <= stride[0] and kernel[1] <= stride[1]:    # windows apart: written once
        for gwin, hit in zip(gwins, hits):
            np.multiply(hit, g, out=gwin)
    else:
        for gwin, hit in zip(gwins, hits):
            gwin += hit * g
    return gx[:, :, ph:ph + h, pw:pw + w]
''',
    "_max_pool2d_gather": '''\
def _max_pool2d_gather(g, x, out, kernel, stride, padding):
    # the transpose of the scatter: each window's winners' entries, averaged over ties
    _, wins = _pool_windows(x, kernel, stride, padding, -np.inf)
    gp, gwins = _pool_windows(g, kernel, stride, padding, 0)
    hits = [win == out for win in wins]
    count = hits[0].astype(g.dtype)
    total = gwins[0] * hits[0]
    for hit, gwin in zip(hits[1:], gwins[1:]):
        count += hit
        total += gwin * hit
    return total / count
''',
    "_avg_pool2d": '''\
def _avg_pool2d(x, kernel, stride, padding):
    # zero padding counts in the window size, as PyTorch's count_include_pad=True
    _, wins = _pool_windows(x, kernel, stride, padding, 0)
    out = wins[0].copy()
    for win in wins[1:]:
        out += win
    out *= np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=out.dtype)
    return out
''',
    "_avg_pool2d_scatter": '''\
def _avg_pool2d_scatter(g, like, kernel, stride, padding):
    n, c, h, w = like.shape
    ph, pw = padding
    share = _like_layout(g, like) * np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=g.dtype)
    gx = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=g.dtype).transpose(0, 3, 1, 2)
    _, gwins = _pool_windows(gx, kernel, stride, (0, 0), 0)
    for gwin in gwins:
        gwin += share
    return gx[:, :, ph:ph + h, pw:pw + w]
''',
}

_namespace: dict = {"np": np}
for _text in SOURCE.values():
    exec(compile(_text, "<chainrule pooling kernels>", "exec"), _namespace)  # noqa: S102 our own source
_K = {name: _namespace[name] for name in SOURCE}


def _helper(*names: str) -> str:
    return "\n\n\n".join(SOURCE[n].rstrip() for n in ("_pool_windows", "_like_layout") + names) + "\n"


def _args(p) -> str:
    return f"{p['kernel']!r}, {p['stride']!r}, {p['padding']!r}"


def _max_code(a, p, node) -> str:
    if p["kernel"] == p["stride"] == (2, 2) and p["padding"] == (0, 0):
        _, _, h, w = node.inputs[0].shape
        x = a[0]
        oh, ow = 2 * (h // 2), 2 * (w // 2)
        return (f"$_rows = np.maximum({x}[:, :, 0:{oh}:2], {x}[:, :, 1:{oh}:2])\n"
                f"np.maximum($_rows[:, :, :, 0:{ow}:2], $_rows[:, :, :, 1:{ow}:2])")
    return f"_max_pool2d({a[0]}, {_args(p)})"


def _infer(x, *, kernel, stride, padding):
    n, c, h, w = x.shape
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return (n, c, oh, ow), x.dtype


max_pool2d_p = primitive(
    "max_pool2d", lambda x, **p: _K["_max_pool2d"](x, p["kernel"], p["stride"], p["padding"]),
    (lambda F, g, out, x, **p: F.max_pool2d_scatter(g, x, out, **p),),
    _max_code, "max pool", helper=_helper("_max_pool2d"), infer=_infer)
# d scatter(g) = gather(gg): both linear in g; the winners do not move under a small change
max_pool2d_scatter = primitive(
    "max_pool2d_scatter",
    lambda g, x, out, **p: _K["_max_pool2d_scatter"](g, x, out, p["kernel"], p["stride"],
                                                      p["padding"]),
    (lambda F, gg, o, g, x, out, **p: F.max_pool2d_gather(gg, x, out, **p), None, None),
    lambda a, p, node: f"_max_pool2d_scatter({a[0]}, {a[1]}, {a[2]}, {_args(p)})",
    "max pool back", helper=_helper("_max_pool2d_scatter"),
    infer=lambda g, x, out, **p: (x.shape, g.dtype))
max_pool2d_gather = primitive(
    "max_pool2d_gather",
    lambda g, x, out, **p: _K["_max_pool2d_gather"](g, x, out, p["kernel"], p["stride"],
                                                     p["padding"]),
    (lambda F, gg, o, g, x, out, **p: F.max_pool2d_scatter(gg, x, out, **p), None, None),
    lambda a, p, node: f"_max_pool2d_gather({a[0]}, {a[1]}, {a[2]}, {_args(p)})",
    "max pool gather", helper=_helper("_max_pool2d_gather"),
    infer=lambda g, x, out, **p: (out.shape, g.dtype))

# d avg_pool = scatter of g / (kh kw) over each window, whose own gradient is avg_pool again
avg_pool2d_p = primitive(
    "avg_pool2d", lambda x, **p: _K["_avg_pool2d"](x, p["kernel"], p["stride"], p["padding"]),
    (lambda F, g, out, x, **p: F.avg_pool2d_scatter(g, x, **p),),
    lambda a, p, node: f"_avg_pool2d({a[0]}, {_args(p)})", "avg pool",
    helper=_helper("_avg_pool2d"), infer=_infer)
avg_pool2d_scatter = primitive(
    "avg_pool2d_scatter",
    lambda g, like, **p: _K["_avg_pool2d_scatter"](g, like, p["kernel"], p["stride"],
                                                    p["padding"]),
    (lambda F, gg, o, g, like, **p: F.avg_pool2d(gg, **p), None),
    lambda a, p, node: f"_avg_pool2d_scatter({a[0]}, {a[1]}, {_args(p)})", "avg pool back",
    helper=_helper("_avg_pool2d_scatter"), infer=lambda g, like, **p: (like.shape, g.dtype))


def _kernel_call(name):
    return lambda *arrays, **p: _K["_" + name](*arrays, p["kernel"], p["stride"], p["padding"])


A.__dict__.update(max_pool2d_scatter=_kernel_call("max_pool2d_scatter"),
                  max_pool2d_gather=_kernel_call("max_pool2d_gather"),
                  avg_pool2d=_kernel_call("avg_pool2d"),
                  avg_pool2d_scatter=_kernel_call("avg_pool2d_scatter"))
T.__dict__.update(max_pool2d_scatter=lambda g, x, out, **p: max_pool2d_scatter(g, x, out, **p),
                  max_pool2d_gather=lambda g, x, out, **p: max_pool2d_gather(g, x, out, **p),
                  avg_pool2d=lambda x, **p: avg_pool2d_p(x, **p),
                  avg_pool2d_scatter=lambda g, like, **p: avg_pool2d_scatter(g, like, **p))


def _pair(v, what: str, op: str) -> tuple:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(n) for n in v)
    if len(v) != 2:
        raise ShapeError(f"{op}: {what} must be an int or a pair, got {v}")
    return v


def _pool(prim, op: str, x, kernel_size, stride, padding) -> Tensor:
    x = x if isinstance(x, Tensor) else lift(np.asarray(x), None)
    if x.ndim == 3:     # one image (C, H, W)
        from . import shape as sh

        return sh.getitem(_pool(prim, op, sh.expand_dims(x, axis=0), kernel_size, stride,
                                padding), index=0)
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected x of shape (N, C, H, W), got {x.shape}")
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else _pair(stride, "stride", op)
    padding = _pair(padding, "padding", op)
    if min(kernel) < 1 or min(stride) < 1:
        raise ShapeError(f"{op}: kernel_size {kernel} and stride {stride} must be >= 1")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2 or min(padding) < 0:
        raise ShapeError(f"{op}: padding {padding} must be at most half the kernel {kernel}")
    _, _, h, w = x.shape
    if h is None or w is None or h + 2 * padding[0] < kernel[0] or \
            w + 2 * padding[1] < kernel[1]:
        raise ShapeError(f"{op}: a {kernel} window does not fit x of shape {x.shape} with "
                         f"padding {padding}")
    return prim(x, kernel=kernel, stride=stride, padding=padding)


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Maximum over each window, as ``torch.nn.functional.max_pool2d``.

    The gradient goes to each window's largest element (ties split evenly). ``stride``
    defaults to ``kernel_size``; ``padding`` (at most half the kernel) pads with -inf.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> cr.max_pool2d(x, 2).numpy()[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    return _pool(max_pool2d_p, "max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over each window, as ``torch.nn.functional.avg_pool2d``.

    Zero padding counts in every window's size (PyTorch's ``count_include_pad=True``).

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> cr.avg_pool2d(x, 2).numpy()[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    return _pool(avg_pool2d_p, "avg_pool2d", x, kernel_size, stride, padding)
