"""Shape primitives: reshape, transpose, indexing, concatenate, stack, and their inverses."""
from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import SOURCE
from .namespace import _pick, norm_axes
from .registry import primitive


def _render_index(index) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for i in items:
        if isinstance(i, slice):
            start, stop = ("" if v is None else repr(v) for v in (i.start, i.stop))
            parts.append(f"{start}:{stop}" + ("" if i.step is None else f":{i.step!r}"))
        elif i is None:
            parts.append("None")
        elif i is Ellipsis:
            parts.append("...")
        elif isinstance(i, np.ndarray):
            parts.append(f"np.array({i.tolist()!r})")
        else:
            parts.append(repr(i))
    return ", ".join(parts) if parts else "()"


reshape = primitive("reshape", lambda x, *, shape: np.reshape(x, shape),
                    (lambda F, g, out, x, *, shape: F.reshape_like(g, x),),
                    "{0}.reshape({shape})", "reshape", fresh=False)
# reshape to the run-time shape of ``like``: the inverse of any reshape, free dims included
reshape_like = primitive("reshape_like", lambda x, like: np.reshape(x, like.shape),
                         (lambda F, g, out, x, like: F.reshape_like(g, x), None),
                         "{0}.reshape({1}.shape)", "reshape", fresh=False,
                         infer=lambda x, like: (like.shape, x.dtype))
expand_dims = primitive("expand_dims", lambda x, *, axis: np.expand_dims(x, axis),
                        (lambda F, g, out, x, *, axis: F.reshape_like(g, x),),
                        "np.expand_dims({0}, {axis})", "expand_dims", fresh=False,
                        axes=("axis", 1))


def _transpose_vjp(F, g, out, x, *, axes=None):
    return F.transpose(g, None if axes is None else tuple(np.argsort(axes).tolist()))


def _transpose_code(x: str, axes) -> str:
    if axes is None or tuple(axes) == tuple(range(len(axes)))[::-1]:
        return f"{x}.T"
    n = len(axes)
    if n >= 2 and tuple(axes) == tuple(range(n - 2)) + (n - 1, n - 2):
        return f"np.swapaxes({x}, -1, -2)"
    return f"np.transpose({x}, {tuple(axes)!r})"


transpose = primitive(
    "transpose", lambda x, *, axes=None: np.transpose(x, axes), (_transpose_vjp,),
    lambda a, p, node: _transpose_code(a[0], p.get("axes")),
    "transpose", fresh=False, axes=("axes", 0))

# d x[i] = scatter of g into zeros at i (repeated integer indices add up)
getitem = primitive("getitem", lambda x, *, index: x[index],
                    (lambda F, g, out, x, *, index: F.scatter_add(g, x, index),),
                    lambda a, p, node: f"{a[0]}[{_render_index(p['index'])}]", "[]", fresh=False)
scatter_add = primitive(
    "scatter_add", lambda g, like, *, index: kernels.scatter_add(g, like, index),
    (lambda F, g, out, x, like, *, index: F.getitem(g, index), None),
    lambda a, p, node: f"_scatter_add({a[0]}, {a[1]}, np.s_[{_render_index(p['index'])}])",
    "scatter", infer=lambda g, like, **p: (like.shape, g.dtype), helper=SOURCE["_scatter_add"])

# x[range(N), labels]: each row's entry at its label (the correct-class score)
pick = primitive("pick", _pick, (lambda F, g, out, x, labels: F.unpick(g, x, labels), None),
                 "{0}[np.arange(len({1})), {1}]", "pick", fresh=True,
                 infer=lambda x, labels: (labels.shape, x.dtype))
unpick = primitive(
    "unpick", kernels.unpick, (lambda F, g, out, x, like, labels: F.pick(g, labels), None, None),
    "_unpick({0}, {1}, {2})", "unpick", infer=lambda g, like, labels: (like.shape, g.dtype),
    helper=SOURCE["_unpick"])
one_hot = primitive("one_hot", kernels.one_hot, None, "_one_hot({0}, {1})", "one_hot",
                    infer=lambda labels, like: (like.shape, like.dtype), helper=SOURCE["_one_hot"])


def _concat_vjp(F, g, out, *xs, axis=0):
    ax = norm_axes(axis, out.ndim)[0]
    grads, start = [], 0
    for x in xs:
        n = x.shape[ax]
        if n is None:
            raise NotImplementedError("concatenate along a free (None) dimension")
        grads.append(F.getitem(g, (slice(None),) * ax + (slice(start, start + n),)))
        start += n
    return tuple(grads)


concatenate = primitive(
    "concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis), _concat_vjp,
    lambda a, p, node: f"np.concatenate([{', '.join(a)}], axis={p.get('axis', 0)!r})", "concat",
    axes=("axis", 0))


def _stack_vjp(F, g, out, *xs, axis=0):
    ax = norm_axes(axis, out.ndim)[0]
    return tuple(F.getitem(g, (slice(None),) * ax + (i,)) for i in range(len(xs)))


stack = primitive(
    "stack", lambda *xs, axis=0: np.stack(xs, axis=axis), _stack_vjp,
    lambda a, p, node: f"np.stack([{', '.join(a)}], axis={p.get('axis', 0)!r})", "stack",
    axes=("axis", 1))
