"""Convolution as a hand-written NumPy floor does it: a window copy (im2col) and one matmul.

``conv2d`` is a composition of a few primitives, each of which prints as the line a person
would write:

* ``im2col`` -- the input's sliding windows copied into one matrix, one row per output pixel,
  columns ordered (kh, kw, C). Inside, the image is channels-last (NHWC): each window row is
  then a run of contiguous channel vectors, the fastest copy (the API stays NCHW: the result
  of a conv is an NCHW *view* of NHWC memory, which the next ReLU, pooling and conv read in
  that memory order for free);
* ``affine`` -- ``cols @ W + b``, with the bias gradient a matrix-vector product with a ones
  vector (``np.sum(axis=0)`` over many short rows is ~30x slower);
* ``reshape`` and ``transpose`` -- views back to (N, O, OH, OW).

The gradient of ``im2col`` is ``col2im`` (each window row added back where it came from) and
the gradient of ``col2im`` is ``im2col``: the pair is closed, so the gradient of a conv is
itself a graph of convolution primitives, differentiable again and compilable. The weight's
gradient is ``cols.T @ g`` (matmul's own rule), reusing the forward's window copy, and an input
that needs no gradient (the images of a first layer) never has its ``col2im`` computed.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from . import linalg
from . import shape as sh
from .namespace import A, T
from .registry import lift, primitive


def _pair(v, what: str) -> tuple:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(n) for n in v)
    if len(v) != 2:
        raise ShapeError(f"conv2d: {what} must be an int or a pair, got {v}")
    return v


def _out_size(size: int, k: int, s: int, pad: tuple, d: int) -> int:
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def _windows(x: np.ndarray, kernel, stride, padding, dilation) -> tuple:
    """The padded NHWC image and its (N, OH, OW, kh, kw, C) window view (no copy)."""
    n, c, h, w = x.shape
    (kh, kw), (sh_, sw), ((pt, pb), (pl, pr)), (dh, dw) = kernel, stride, padding, dilation
    xh = x.transpose(0, 2, 3, 1)
    if pt or pb or pl or pr:
        xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
        xp[:, pt:pt + h, pl:pl + w] = xh
    else:
        xp = xh
    oh = _out_size(h, kh, sh_, (pt, pb), dh)
    ow = _out_size(w, kw, sw, (pl, pr), dw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"a {kh}x{kw} kernel (dilation {dh}x{dw}) does not fit the padded "
                         f"{h + pt + pb}x{w + pl + pr} image")
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh_, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False)
    return xp, view


def im2col_array(x: np.ndarray, *, kernel, stride, padding, dilation) -> np.ndarray:
    """(N, C, H, W) -> (N*OH*OW, kh*kw*C): every window as a row, columns (kh, kw, C)."""
    _, view = _windows(x, kernel, stride, padding, dilation)
    n, oh, ow, kh, kw, c = view.shape
    return view.reshape(n * oh * ow, kh * kw * c)


def col2im_array(g: np.ndarray, like: np.ndarray, *, kernel, stride, padding,
                 dilation) -> np.ndarray:
    """The transpose of :func:`im2col_array`: each row's entries added back to their pixels."""
    n, c, h, w = like.shape
    (kh, kw), (sh_, sw), ((pt, pb), (pl, pr)), (dh, dw) = kernel, stride, padding, dilation
    oh = _out_size(h, kh, sh_, (pt, pb), dh)
    ow = _out_size(w, kw, sw, (pl, pr), dw)
    out = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=g.dtype)
    g6 = g.reshape(n, oh, ow, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            out[:, i * dh:i * dh + sh_ * (oh - 1) + 1:sh_,
                j * dw:j * dw + sw * (ow - 1) + 1:sw] += g6[:, :, :, i, j]
    return out[:, pt:pt + h, pl:pl + w].transpose(0, 3, 1, 2)


def _slice(start: str, stop: str, step: int) -> str:
    return f"{start}:{stop}" + (f":{step}" if step != 1 else "")


def _im2col_code(a, p, node) -> str:
    x = a[0]
    _, c, h, w = node.inputs[0].shape
    (kh, kw), (sh_, sw), ((pt, pb), (pl, pr)), (dh, dw) = (
        p["kernel"], p["stride"], p["padding"], p["dilation"])
    lines = []
    if pt or pb or pl or pr:
        lines.append(f"$_pad = np.zeros(({x}.shape[0], {h + pt + pb}, {w + pl + pr}, {c}), "
                     f"dtype={x}.dtype)")
        lines.append(f"$_pad[:, {pt}:{pt + h}, {pl}:{pl + w}] = np.transpose({x}, (0, 2, 3, 1))")
        src = "$_pad"
    else:
        src = f"np.transpose({x}, (0, 2, 3, 1))"
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    pick = ""
    if (sh_, sw, dh, dw) != (1, 1, 1, 1):
        pick = f"[:, ::{sh_}, ::{sw}, :, ::{dh}, ::{dw}]"
    lines.append(f"np.lib.stride_tricks.sliding_window_view({src}, ({span_h}, {span_w}), "
                 f"axis=(1, 2)){pick}.transpose(0, 1, 2, 4, 5, 3).reshape(-1, {kh * kw * c})")
    return "\n".join(lines)


def _scatter_geometry(p, node) -> tuple:
    """What both scatters back into the image print with: the image's channels and size, the
    kernel, the row and column slices of one kernel offset, and the crop of the padding."""
    _, c, h, w = node.inputs[1].shape
    (kh, kw), (sh_, sw), ((pt, pb), (pl, pr)), (dh, dw) = (
        p["kernel"], p["stride"], p["padding"], p["dilation"])
    oh = _out_size(h, kh, sh_, (pt, pb), dh)
    ow = _out_size(w, kw, sw, (pl, pr), dw)
    i0 = "$_i" if dh == 1 else f"$_i * {dh}"
    j0 = "$_j" if dw == 1 else f"$_j * {dw}"
    rows = _slice(i0, f"{i0} + {sh_ * (oh - 1) + 1}", sh_)
    cols = _slice(j0, f"{j0} + {sw * (ow - 1) + 1}", sw)
    crop = f"[:, {pt}:{pt + h}, {pl}:{pl + w}]" if pt or pb or pl or pr else ""
    return c, h, w, kh, kw, (pt, pb, pl, pr), oh, ow, rows, cols, crop


def _col2im_code(a, p, node) -> str:
    g = a[0]
    c, h, w, kh, kw, (pt, pb, pl, pr), oh, ow, rows, cols, crop = _scatter_geometry(p, node)
    return "\n".join([
        (f"$ = np.zeros(({g}.shape[0] // {oh * ow}, {h + pt + pb}, {w + pl + pr}, {c}), "
         f"dtype={g}.dtype)"),
        f"$_rows = {g}.reshape(-1, {oh}, {ow}, {kh}, {kw}, {c})",
        f"for $_i in range({kh}):",
        f"    for $_j in range({kw}):",
        f"        $[:, {rows}, {cols}] += $_rows[:, :, :, $_i, $_j]",
        f"np.transpose(${crop}, (0, 3, 1, 2))",
    ])


def _im2col_infer(x, **p):
    n, c, h, w = x.shape
    (kh, kw), (sh_, sw), ((pt, pb), (pl, pr)), (dh, dw) = (
        p["kernel"], p["stride"], p["padding"], p["dilation"])
    oh = _out_size(h, kh, sh_, (pt, pb), dh)
    ow = _out_size(w, kw, sw, (pl, pr), dw)
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"conv2d: a {kh}x{kw} kernel does not fit a {h}x{w} image with "
                         f"padding {p['padding']}")
    return (None if n is None else n * oh * ow, kh * kw * c), x.dtype


# d im2col = col2im: each window row's gradient goes back to the pixels it was copied from
im2col = primitive(
    "im2col", im2col_array,
    (lambda F, g, out, x, **p: F.col2im(g, x, **p),),
    _im2col_code, "conv windows", infer=_im2col_infer)
# d col2im = im2col: the transpose of a transpose
col2im = primitive(
    "col2im", col2im_array,
    (lambda F, g, out, rows, like, **p: F.im2col(g, **p), None),
    _col2im_code, "conv windows back", infer=lambda g, like, **p: (like.shape, g.dtype))


def _col2im_matmul_code(a, p, node) -> str:
    # node is the col2im this line replaces: its second input has the image's shape
    g, wmat = a[0], a[1]
    c, h, w, kh, kw, (pt, pb, pl, pr), oh, ow, rows, cols, crop = _scatter_geometry(p, node)
    return "\n".join([
        f"$_prods = np.matmul({g}, {wmat}.reshape({kh * kw}, {c}, -1).transpose(0, 2, 1))",
        (f"$ = np.zeros(({g}.shape[0] // {oh * ow}, {h + pt + pb}, {w + pl + pr}, {c}), "
         f"dtype={g}.dtype)"),
        f"for $_i in range({kh}):",
        f"    for $_j in range({kw}):",
        f"        $[:, {rows}, {cols}] += $_prods[$_i * {kw} + $_j].reshape(-1, {oh}, {ow}, {c})",
        f"np.transpose(${crop}, (0, 3, 1, 2))",
    ])


# col2im(g @ W.T) as compiled code writes it (graph/transforms fuses the pair): one batched
# product per kernel offset, then adds of contiguous blocks (the strided adds of col2im on
# g @ W.T run ~3x slower on few channels). It exists only in compiled programs
col2im_matmul = primitive(
    "col2im_matmul",
    lambda g, wmat, like, **p: col2im_array(g @ wmat.T, like, **p), None,
    _col2im_matmul_code, "conv windows back",
    infer=lambda g, wmat, like, **p: (like.shape, g.dtype))


def sum_rows_array(x: np.ndarray) -> np.ndarray:
    """Column sums of a matrix as one matrix-vector product (fast for many short rows)."""
    return np.ones(x.shape[0], dtype=x.dtype) @ x


# sum over rows: d = g broadcast back to every row
sum_rows = primitive(
    "sum_rows", sum_rows_array, (lambda F, g, out, x: F.broadcast_like(g, x),),
    "np.ones(len({0}), dtype={0}.dtype) @ {0}", "sum rows",
    infer=lambda x: ((x.shape[1],), x.dtype))


def _affine(x, w, b):
    out = x @ w
    out += b
    return out


# x @ W + b on row matrices: one gate so that the bias gradient is a matrix-vector product
# (the engine's generic broadcast reduction sums many short rows, ~30x slower) and the compiled
# line adds the bias in place, as written by hand
affine = primitive(
    "affine", _affine,
    (lambda F, g, out, x, w, b: F.matmul(g, F.mT(w)),
     lambda F, g, out, x, w, b: F.matmul(F.mT(x), g),
     lambda F, g, out, x, w, b: F.sum_rows(g)),
    lambda a, p, node: f"$ = {a[0]} @ {a[1]}\nnp.add($, {a[2]}, out=$)", "x @ W + b")


def _known(n, x: str) -> str:
    """A size as a literal, or read from the array at run time when it is free."""
    return str(n) if n is not None else f"{x}.shape[1]"


def _unrows_infer(x, *, size):
    n = x.shape[0]
    return (None if n is None else n // (size[0] * size[1]), x.shape[1]) + tuple(size), x.dtype


def _rows_infer(x):
    n, c, h, w = x.shape
    return (None if n is None else n * h * w, c), x.dtype


# (N*OH*OW, O) rows -> (N, O, OH, OW): a view of channels-last memory, and back
unrows = primitive(
    "unrows", lambda x, *, size: x.reshape(-1, size[0], size[1], x.shape[1]).transpose(0, 3, 1, 2),
    (lambda F, g, out, x, *, size: F.rows(g),),
    lambda a, p, node: f"{a[0]}.reshape(-1, {p['size'][0]}, {p['size'][1]}, "
                       f"{_known(node.inputs[0].shape[1], a[0])}).transpose(0, 3, 1, 2)",
    # marked fresh although a view: its input is the conv's own product, read by nothing
    # else, so the ReLU after a conv may reuse the storage in compiled code (``out=``)
    "to NCHW", fresh=True, infer=_unrows_infer)
rows = primitive(
    "rows", lambda x: x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]),
    (lambda F, g, out, x: F.unrows(g, size=x.shape[2:]),),
    lambda a, p, node: f"np.transpose({a[0]}, (0, 2, 3, 1)).reshape("
                       f"-1, {_known(node.inputs[0].shape[1], a[0])})",
    "to rows", fresh=False, infer=_rows_infer)

A.__dict__.update(im2col=im2col_array, col2im=col2im_array, sum_rows=sum_rows_array,
                  rows=lambda x: x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]),
                  unrows=lambda x, *, size: x.reshape(-1, size[0], size[1], x.shape[1])
                  .transpose(0, 3, 1, 2))
T.__dict__.update(im2col=lambda g, **p: im2col(g, **p),
                  col2im=lambda g, like, **p: col2im(g, like, **p), sum_rows=sum_rows,
                  rows=rows, unrows=lambda x, *, size: unrows(x, size=tuple(size)))


def _padding(padding, kernel, dilation, stride) -> tuple:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ShapeError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', "
                             f"got {padding!r}")
        if stride != (1, 1):
            raise ShapeError("conv2d: padding='same' needs stride 1 (as in PyTorch)")
        # PyTorch puts the odd pixel of an even kernel's padding at the end
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ShapeError(f"conv2d: negative padding {padding}")
    return (ph, ph), (pw, pw)


def _as_tensor(v) -> Tensor:
    return v if isinstance(v, Tensor) else lift(np.asarray(v), None)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : Tensor
        Images (N, C, H, W) (or one image (C, H, W)).
    weight : Tensor
        Filters (O, C / groups, kH, kW).
    bias : Tensor, optional
        (O,), added to every output pixel.
    stride, dilation : int or pair
    padding : int, pair, "same" or "valid"
        Zeros added on both sides ("same": as much as keeps H and W, stride 1 only).
    groups : int
        Split the channels into this many independent convolutions.

    Examples
    --------
    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> w = cr.tensor(np.ones((1, 1, 2, 2)))
    >>> cr.conv2d(x, w, stride=2).numpy()[0, 0].tolist()
    [[10.0, 18.0], [42.0, 50.0]]
    """
    x, weight = _as_tensor(x), _as_tensor(weight)
    if x.ndim == 3:      # one image: a batch of one, as PyTorch allows
        out = conv2d(sh.expand_dims(x, axis=0), weight, bias, stride, padding, dilation, groups)
        return sh.getitem(out, index=0)
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv2d: expected x (N, C, H, W) and weight (O, C/groups, kH, kW), "
                         f"got {x.shape} and {weight.shape}")
    _, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if h is None or w is None or c is None or None in (cg, kh, kw):
        raise ShapeError(f"conv2d: the channel, spatial and kernel sizes must be known, got x "
                         f"of shape {x.shape} and weight {weight.shape} (only the batch size "
                         f"and the number of filters may be None)")
    if min(kh, kw) < 1:
        raise ShapeError(f"conv2d: empty kernel {weight.shape}")
    if groups < 1 or c % groups or (o is None and groups > 1) or (o or 0) % groups \
            or c // groups != cg:
        raise ShapeError(f"conv2d: x has {c} channels and weight {weight.shape} with groups="
                         f"{groups}: weight must be (O, C/groups, kH, kW), O divisible by groups")
    if bias is not None:
        bias = _as_tensor(bias)
        if bias.ndim != 1 or None not in (o, bias.shape[0]) and bias.shape != (o,):
            raise ShapeError(f"conv2d: bias of shape {bias.shape} for {o} output channels")
    stride_, dilation_ = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(stride_) < 1 or min(dilation_) < 1:
        raise ShapeError(f"conv2d: stride {stride} and dilation {dilation} must be >= 1")
    pad = _padding(padding, (kh, kw), dilation_, stride_)
    if _out_size(h, kh, stride_[0], pad[0], dilation_[0]) <= 0 or \
            _out_size(w, kw, stride_[1], pad[1], dilation_[1]) <= 0:
        raise ShapeError(f"conv2d: a {kh}x{kw} kernel (dilation {dilation_}) does not fit x of "
                         f"shape {x.shape} with padding {pad}")
    if groups > 1:      # independent convolutions on channel slices, joined again
        og = o // groups
        parts = [_conv(sh.getitem(x, index=(slice(None), slice(i * cg, (i + 1) * cg))),
                       sh.getitem(weight, index=slice(i * og, (i + 1) * og)),
                       None if bias is None else sh.getitem(bias, index=slice(i * og, (i + 1) * og)),
                       stride_, pad, dilation_) for i in range(groups)]
        return sh.concatenate(*parts, axis=1)
    return _conv(x, weight, bias, stride_, pad, dilation_)


def _conv(x: Tensor, weight: Tensor, bias, stride, pad, dilation) -> Tensor:
    _, c, h, w = x.shape
    _, _, kh, kw = weight.shape
    cols = im2col(x, kernel=(kh, kw), stride=stride, padding=pad, dilation=dilation)
    # filters as a (kh*kw*C, O) matrix, rows in the windows' column order
    wmat = sh.reshape(sh.transpose(weight, axes=(2, 3, 1, 0)), shape=(kh * kw * c, -1))
    out = linalg.matmul(cols, wmat) if bias is None else affine(cols, wmat, bias)
    oh = _out_size(h, kh, stride[0], pad[0], dilation[0])
    ow = _out_size(w, kw, stride[1], pad[1], dilation[1])
    return unrows(out, size=(oh, ow))
