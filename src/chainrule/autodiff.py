"""Reverse mode: one walk over the topological order, one VJP per node.

``grad`` is the primitive; ``Tensor.backward`` is sugar that writes into ``.grad``. Broadcast
gradients are reduced to each operand's shape here, after every VJP, and nowhere else.
"""
from __future__ import annotations

from heapq import heappop, heappush
from typing import Optional, Sequence

import numpy as np

from . import _malloc
from ._config import _grad_enabled, anomaly_enabled, backward_origin
from .core.tensor import Tensor, _next_seq, _to_array
from .core.toposort import toposort
from .errors import GraphError, ShapeError, describe
from .ops import registry as _reg
from .ops.namespace import A, T
from .ops.reduction import sum_to_like as _sum_to_like


def _seed(root: Tensor, grad, symbolic: bool) -> object:
    """The gradient that starts the sweep: 1 for a one-element output, else given."""
    if grad is None:
        if root.shape and (root.size is None or root.size != 1):
            raise GraphError(
                f"backward from {root._describe()} needs a gradient argument: only a "
                f"one-element output has an implicit gradient of 1")
        one = np.ones(root.shape, dtype=root.dtype)
        return _reg._const(one) if symbolic else one
    if isinstance(grad, Tensor):
        arr = grad if symbolic else grad.numpy()
    else:
        arr = _to_array(grad, root.dtype)
        arr = _reg._const(arr) if symbolic else arr
    # a free (None) dim on either side fits any size
    if len(arr.shape) != len(root.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(arr.shape, root.shape)):
        raise ShapeError(f"gradient of shape {tuple(arr.shape)} given for {root._describe()}")
    return arr


def _sweep(roots: Sequence[Tensor], seeds: Sequence, wanted: Optional[dict],
           retain_graph: bool, graph_mode: bool) -> dict:
    """Send gradients from ``roots`` back through the graph.

    Returns id -> (tensor, gradient) for every leaf reached (``wanted is None``), or for the
    tensors in ``wanted``. ``graph_mode`` runs the backward rules on tensors (the gradient is a
    graph); otherwise on arrays.

    The walk takes tensors newest first (a heap on creation number): a tensor is made after
    its inputs, so by the time one is taken, every tensor that used it has sent its share and
    its gradient is complete. That is a topological order with no sort to build first, and
    each tensor is touched once.
    """
    F = T if graph_mode else A
    anomaly = anomaly_enabled()
    # keyed by creation number; the heap holds plain negated numbers (not tuples holding
    # tensors), so the walk allocates nothing the garbage collector has to trace
    waiting: dict[int, Tensor] = {}
    grads: dict[int, object] = {}
    heap: list = []
    for r, s in zip(roots, seeds):
        seq = getattr(r, "seq", None)
        if seq is None:      # a root that records nothing (a constant): give it a number
            seq = r.seq = _next_seq()
        if seq in grads:
            grads[seq] = grads[seq] + s
        else:
            grads[seq] = s
            waiting[seq] = r
            heappush(heap, -seq)
    out: dict[int, object] = {}
    # A chain's shortcut (eager): when one tensor alone is pending, its gradient is complete
    # (nothing left to run can send it more), so it is taken next without the heap and dicts
    nxt = nxt_g = None
    while heap or nxt is not None:
        if nxt is not None:
            t, g, nxt = nxt, nxt_g, None
        else:
            seq = -heappop(heap)
            t = waiting.pop(seq)
            g = grads.pop(seq)
        op = t.op
        if graph_mode and getattr(g, "_origin", None) is not None and g._origin[0] == "vjp":
            g._origin = ("grad", t, g._origin[1])   # the whole gradient of t: printed as d<t>
        if op is None:
            if wanted is None or id(t) in wanted:
                out[id(t)] = (t, g)
            continue
        if wanted is not None and id(t) in wanted:
            out[id(t)] = (t, g)
        if t._consumed:
            raise GraphError(
                f"backward through {t._describe()} a second time, but its graph was released "
                f"by the first backward; pass retain_graph=True to the first one\n"
                f"  built at {describe(t.site)}")
        inputs = t.inputs
        params = t.params
        if graph_mode:
            token = backward_origin.set(t)
            try:
                gxs = op.vjps(F, g, t, inputs, params, [x.requires_grad for x in inputs])
                for x, gx in zip(inputs, gxs):
                    if gx is not None and x.requires_grad:
                        _receive(F, x, gx, grads, waiting, heap, op, t, anomaly)
            finally:
                backward_origin.reset(token)
        else:
            # the eager hot path: NumPy rules on arrays, one per input that needs a gradient
            out_data = t.data
            if op.vjp_tuple:
                rules = op.vjp
                if len(inputs) == 1:
                    datas = (inputs[0].data,)
                    gxs = (rules[0](F, g, out_data, *datas, **params) if params else
                           rules[0](F, g, out_data, *datas),)
                elif len(inputs) == 2 and not params:
                    # binary ops spelled out: a comprehension would be a call of its own
                    x, y = inputs
                    rx, ry = rules
                    datas = (x.data, y.data)
                    gxs = (None if rx is None or not x.requires_grad else
                           rx(F, g, out_data, *datas),
                           None if ry is None or not y.requires_grad else
                           ry(F, g, out_data, *datas))
                else:
                    datas = tuple([x.data for x in inputs])
                    gxs = [None if rule is None or not x.requires_grad else
                           rule(F, g, out_data, *datas, **params) if params else
                           rule(F, g, out_data, *datas) for x, rule in zip(inputs, rules)]
            else:
                datas = tuple([x.data for x in inputs])
                gxs = op.vjp(F, g, out_data, *datas, **params)
            for x, d, gx in zip(inputs, datas, gxs):
                if gx is None or not x.requires_grad:
                    continue
                if gx.shape != d.shape:
                    gx = F.sum_to(gx, d.shape)   # the one place broadcasting is undone
                # a gradient has its input's dtype; builtin dtypes are singletons, so ``is``
                # settles the common case before the slower ``!=``
                if gx.dtype is not d.dtype and gx.dtype != d.dtype:
                    gx = gx.astype(d.dtype)
                if anomaly:
                    _reg.check_finite(op, gx, t.site, "backward")
                if nxt is not None:     # a second input of t gets a gradient: back to the heap
                    grads[nxt.seq] = nxt_g
                    waiting[nxt.seq] = nxt
                    heappush(heap, -nxt.seq)
                    nxt = None
                xseq = x.seq
                prev = grads.get(xseq)
                if prev is None:
                    if heap:
                        grads[xseq] = gx
                        waiting[xseq] = x
                        heappush(heap, -xseq)
                    else:
                        nxt, nxt_g = x, gx
                else:
                    grads[xseq] = prev + gx
        if not retain_graph:
            # the graph stays readable (draw, explain) while you hold its output, but its
            # backward is spent, as in PyTorch
            t._consumed = True
    return out


def _receive(F, x: Tensor, gx, grads: dict, waiting: dict, heap: list, op, t: Tensor,
             anomaly: bool) -> None:
    """Input ``x`` of ``t`` receives its share ``gx`` (a tensor); fan-out adds up."""
    shape = x.shape
    if gx.shape != shape and None in shape:
        gx = _sum_to_like(gx, x)     # the one place broadcasting is undone (at run time
    elif gx.shape != shape:          # where a free dim may be the one broadcast)
        gx = F.sum_to(gx, shape)
    elif None in shape and getattr(t, "_free", frozenset()) - getattr(x, "_free", frozenset()):
        # t's free dims may come from another placeholder than x's (x of batch 1 broadcast
        # against y of batch 4): undone when the sizes are known
        gx = _sum_to_like(gx, x)
    dtype = x.dtype
    if gx.dtype != dtype:            # a gradient has its input's dtype, as in PyTorch
        gx = F.cast(gx, dtype)
    if anomaly:
        _reg.check_finite(op, gx, t.site, "backward")
    prev = grads.get(x.seq)
    if prev is None:
        grads[x.seq] = gx
        waiting[x.seq] = x
        heappush(heap, -x.seq)
    else:
        grads[x.seq] = prev + gx


def _owned(arr: np.ndarray, seen: set) -> np.ndarray:
    # a gradient handed to a user may be a read-only broadcast view, or the very array another
    # leaf got (add passes g to both inputs): copy those so in-place edits stay private
    if arr.base is not None or not arr.flags.writeable or id(arr) in seen:
        arr = arr.copy()
    seen.add(id(arr))
    return arr


def backward(root: Tensor, grad=None, *, retain_graph: Optional[bool] = None,
             create_graph: bool = False) -> None:
    """Accumulate gradients of ``root`` into ``.grad`` of every leaf that requires grad.

    Gradients add up across calls, as in PyTorch; set ``.grad = None`` (or use an
    optimizer's ``zero_grad``) between steps.
    """
    if root.data is None:
        raise GraphError(f"backward() on symbolic {root._describe()}: use cr.grad(loss, "
                         f"[params]) for symbolic gradients, or evaluate with a feed first")
    if not root.requires_grad:
        raise GraphError(f"backward() on {root._describe()} that does not require grad: "
                         f"nothing it was computed from is a Variable (or it was built under "
                         f"cr.no_grad())")
    if retain_graph is None:
        retain_graph = create_graph
    if not _malloc._done:
        _malloc.keep_heap()
    seed = _seed(root, grad, False)
    token = _grad_enabled.set(create_graph)
    try:
        got = _sweep([root], [_reg._const(seed) if create_graph else seed], None,
                     retain_graph, create_graph)
    finally:
        _grad_enabled.reset(token)
    seen: set = set()
    for leaf, g in got.values():
        if create_graph:
            leaf.grad = g if leaf.grad is None else leaf.grad + g
        elif leaf.grad is None:
            leaf.grad = Tensor(_owned(g, seen))
        else:
            leaf.grad.data = leaf.grad.data + g


def grad(outputs, inputs, grad_outputs=None, *, retain_graph: Optional[bool] = None,
         create_graph: bool = False, allow_unused: bool = False) -> list:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    With ``create_graph=True``, or when the graph is symbolic (built on placeholders), the
    gradients are themselves tensors in a graph: differentiable again, drawable, compilable.

    >>> import chainrule as cr
    >>> x = cr.Variable(3.0)
    >>> (dx,) = cr.grad(x ** 3, [x], create_graph=True)
    >>> (d2x,) = cr.grad(dx, [x])
    >>> dx.item(), d2x.item()
    (27.0, 18.0)
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        gos = [None] * len(outs)
    elif isinstance(outputs, Tensor) and not (
            isinstance(grad_outputs, (list, tuple)) and len(grad_outputs) == 1
            and (grad_outputs[0] is None or isinstance(grad_outputs[0], (Tensor, np.ndarray)))):
        gos = [grad_outputs]       # one output: its gradient, any array-like
    else:
        gos = list(grad_outputs)
        if len(gos) != len(outs):
            raise GraphError(f"cr.grad got {len(gos)} grad_outputs for {len(outs)} outputs")
    for x in ins:
        if not isinstance(x, Tensor):
            raise TypeError(f"cr.grad inputs must be tensors, got {type(x).__name__}")
        if not x.requires_grad and not x.is_placeholder:
            raise GraphError(f"cr.grad with respect to {x._describe()}, which does not require "
                             f"grad (make it a cr.Variable)")
    # a placeholder is differentiable as it is: the nodes between it and the outputs are
    # marked as requiring grad for this sweep (and its gradient graph), then unmarked
    marked = _paths_from([x for x in ins if not x.requires_grad], outs)
    for t in marked:
        t.requires_grad = True
    try:
        return _grad(outs, ins, gos, retain_graph, create_graph, allow_unused)
    finally:
        for t in marked:
            t.requires_grad = False


def _paths_from(starts: list, outs: list) -> list:
    """The tensors on a differentiable path from ``starts`` to ``outs`` that do not require
    grad (``starts`` included), or [] when there are no starts."""
    if not starts:
        return []
    on = {id(x) for x in starts}
    order = toposort(outs)
    for t in order:
        if t.op is not None and t.op.vjp is not None and any(id(x) in on for x in t.inputs):
            on.add(id(t))
    return [t for t in dict.fromkeys([*starts, *order]) if id(t) in on and not t.requires_grad]


def _grad(outs: list, ins: list, gos: list, retain_graph, create_graph: bool,
          allow_unused: bool) -> list:
    symbolic = any(o.data is None for o in outs)
    graph_mode = create_graph or symbolic
    if retain_graph is None:
        retain_graph = graph_mode
    seeds = [_seed(o, go, graph_mode) for o, go in zip(outs, gos)]
    # an output computed without a gradient (a mask) sends none
    roots = [(o, s) for o, s in zip(outs, seeds) if o.requires_grad or o.op is None]
    token = _grad_enabled.set(graph_mode)
    try:
        got = _sweep([o for o, _ in roots], [s for _, s in roots], {id(x): x for x in ins},
                     retain_graph, graph_mode)
    finally:
        _grad_enabled.reset(token)
    result = []
    for x in ins:
        hit = got.get(id(x))
        if hit is None:
            if not allow_unused:
                raise GraphError(f"{x._describe()} does not reach the outputs; pass "
                                 f"allow_unused=True to get None for it")
            result.append(None)
            continue
        g = hit[1]
        if not graph_mode:
            g = Tensor(g)
        elif symbolic and g.name is None and x.name:
            g.name = "d" + x.name
        result.append(g)
    return result
