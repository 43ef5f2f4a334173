"""Reductions: sum, mean, max, min, and the broadcast pair sum_to / broadcast_like."""
from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import SOURCE
from .namespace import _count, _sum_to, norm_axes, sum_to_axes
from .registry import primitive


def _kw(axis, keepdims) -> str:
    parts = []
    if axis is not None:
        parts.append(f"axis={axis!r}")
    if keepdims:
        parts.append("keepdims=True")
    return "".join(", " + s for s in parts)


def _kept(F, g, x, axis, keepdims):
    """The upstream gradient with the reduced axes put back as size-1 axes."""
    if keepdims or x.ndim == 0 or axis is None:
        return g      # a full reduction's 0-d gradient broadcasts as it is
    return F.expand_dims(g, norm_axes(axis, x.ndim))


# d sum(x) = broadcast of the upstream gradient over the summed axes
sum = primitive(
    "sum", lambda x, *, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    (lambda F, g, out, x, *, axis=None, keepdims=False:
        F.broadcast_like(_kept(F, g, x, axis, keepdims), x),),
    lambda a, p, node: f"np.sum({a[0]}{_kw(p.get('axis'), p.get('keepdims'))})", "sum",
    axes=("axis", 0))

# d mean(x) = broadcast of g / n. A primitive (not sum / n) because n may be a free (None)
# dimension of a symbolic graph, known only at run time
mean = primitive(
    "mean", lambda x, *, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    (lambda F, g, out, x, *, axis=None, keepdims=False:
        F.broadcast_like(_kept(F, g, x, axis, keepdims) / F.count(x, axis), x),),
    lambda a, p, node: f"np.mean({a[0]}{_kw(p.get('axis'), p.get('keepdims'))})", "mean",
    axes=("axis", 0))


def _extremum_vjp(F, g, out, x, *, axis=None, keepdims=False):
    # routes g to the elements equal to the extremum, split evenly among ties
    hit = F.cast(x == _kept(F, out, x, axis, keepdims), x.dtype)
    share = _kept(F, g, x, axis, keepdims) / F.sum(hit, axis=axis, keepdims=True)
    return hit * share


max = primitive(
    "max", lambda x, *, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
    (_extremum_vjp,),
    lambda a, p, node: f"np.max({a[0]}{_kw(p.get('axis'), p.get('keepdims'))})", "max",
    axes=("axis", 0))
min = primitive(
    "min", lambda x, *, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
    (_extremum_vjp,),
    lambda a, p, node: f"np.min({a[0]}{_kw(p.get('axis'), p.get('keepdims'))})", "min",
    axes=("axis", 0))


def _count_code(a, p, node):
    axis = p.get("axis")
    if axis is None:
        return f"{a[0]}.size"
    axes = norm_axes(axis, node.inputs[0].ndim)
    return " * ".join(f"{a[0]}.shape[{i}]" for i in axes)


# how many elements a reduction over ``axis`` averages: a run-time number for free dims
count = primitive("count", lambda x, *, axis=None: np.asarray(_count(x, axis), dtype=x.dtype),
                  None, _count_code, "count", axes=("axis", 0))


def _sum_to_code(a, p, node):
    lead, keep = sum_to_axes(node.inputs[0].shape, p["shape"])
    axes = tuple(range(lead)) + keep
    ax = axes[0] if len(axes) == 1 else axes
    if not keep:
        return f"np.sum({a[0]}, axis={ax!r})"
    if not lead:
        return f"np.sum({a[0]}, axis={ax!r}, keepdims=True)"
    return f"np.sum({a[0]}, axis={tuple(range(lead))!r}).sum(axis={tuple(k - lead for k in keep)!r}, keepdims=True)"


# the reverse of broadcasting: sum a gradient down to an operand's shape
sum_to = primitive("sum_to", lambda x, *, shape: _sum_to(x, shape),
                   (lambda F, g, out, x, *, shape: F.broadcast_like(g, x),),
                   _sum_to_code, "sum_to")
# sum_to for a shape known only at run time: where two placeholders' free dims meet (x of
# batch 1 broadcast against y of batch 4), the gradient of x is reduced when the sizes are
# known. Compiled code for one batch size drops it (see graph/transforms)
sum_to_like = primitive(
    "sum_to_like", kernels.sum_to_like,
    (lambda F, g, out, x, like: F.broadcast_like(g, x), None),
    "_sum_to_like({0}, {1})", "sum_to", helper=SOURCE["_sum_to_like"],
    infer=lambda x, like: (like.shape, x.dtype))
# broadcast x to the run-time shape of ``like`` (whose free dims are known only then)
broadcast_like = primitive(
    "broadcast_like", lambda x, like: np.broadcast_to(x, like.shape),
    (lambda F, g, out, x, like: F.sum_to(g, x.shape), None),
    "np.broadcast_to({0}, {1}.shape)", "broadcast", fresh=False,
    infer=lambda x, like: (like.shape, x.dtype))
