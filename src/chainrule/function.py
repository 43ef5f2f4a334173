"""Your own gates: a forward rule and a backward rule over NumPy arrays.

>>> import chainrule as cr
>>> class Multiply(cr.Function):
...     def forward(self, x, y):
...         self.x, self.y = x, y
...         return x * y
...     def backward(self, dz):
...         return dz * self.y, dz * self.x
>>> a, b = cr.Variable(3.0), cr.Variable(-4.0)
>>> z = Multiply()(a, b)
>>> z.backward()
>>> a.grad.item(), b.grad.item()
(-4.0, 3.0)
"""
from __future__ import annotations

import copy

import numpy as np

from .core.tensor import Tensor
from .errors import ChainruleError
from .ops.namespace import A
from .ops.registry import apply, primitive


class Function:
    """Base class of user-defined gates. Override ``forward`` and ``backward``.

    ``forward(self, *arrays)`` gets NumPy arrays and returns one array, caching on ``self``
    whatever ``backward`` needs. ``backward(self, grad)`` gets the upstream gradient and
    returns one gradient per input (a single array for a one-input gate). Broadcast
    gradients are reduced to each input's shape by the engine. Each call works on its own
    copy of the gate, so one instance can be applied many times.
    """

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray):
        raise NotImplementedError

    def __call__(self, *inputs) -> Tensor:
        return apply(_gate, inputs, {"fn": copy.copy(self)})

    @property
    def name(self) -> str:
        return type(self).__name__


def _grads_of(fn: Function, g, n: int) -> tuple:
    gs = fn.backward(g)
    if not isinstance(gs, (tuple, list)):
        gs = (gs,)
    if len(gs) != n:
        raise ChainruleError(f"{fn.name}.backward returned {len(gs)} gradients for {n} inputs")
    return tuple(None if v is None else np.asarray(v) for v in gs)


def _forward(*arrays, fn):
    out = fn.forward(*arrays)
    return np.asarray(out)


def _vjp(F, g, out, *xs, fn):
    if F is A:
        return _grads_of(fn, g, len(xs))
    # in a graph of gradients the user's backward is one node per input; it runs after this
    # gate's forward (it depends on ``out``), so the cached arrays on ``fn`` are current
    return tuple(apply(_gate_grad, (g, out, x), {"fn": fn, "index": i, "n": len(xs)})
                 for i, x in enumerate(xs))


def _grad_impl(g, out, like, *, fn, index, n):
    gs = _grads_of(fn, g, n)
    if gs[index] is None:
        return np.zeros(like.shape, g.dtype)
    return A.sum_to(gs[index], like.shape) if gs[index].shape != like.shape else gs[index]


# In compiled source a gate is a name bound to its instance (``gate_Multiply``); such source
# runs where the compiled function put those names, not standalone.
_gate = primitive("function", _forward, _vjp,
                  lambda a, p, node: f"{p['gate']}.forward({', '.join(a)})", "function",
                  fresh=False)
# the user's backward is not itself differentiable: higher-order gradients stop here
_gate_grad = primitive(
    "function_grad", _grad_impl, None,
    lambda a, p, node: f"_gate_grad({p['gate']}, {a[0]}, {a[2]}, {p['index']})",
    "function_grad", fresh=False, infer=lambda g, out, like, **p: (like.shape, like.dtype),
    helper="""\
def _gate_grad(gate, g, like, index):
    grads = gate.backward(g)
    grads = grads if isinstance(grads, (tuple, list)) else (grads,)
    if grads[index] is None:
        return np.zeros(like.shape, g.dtype)
    gx = np.asarray(grads[index])
    lead = gx.ndim - like.ndim      # a broadcast gradient, summed back to the input's shape
    keep = tuple(i + lead for i, n in enumerate(like.shape) if n == 1 and gx.shape[i + lead] != 1)
    if lead or keep:
        gx = gx.sum(axis=tuple(range(lead)) + keep, keepdims=True).reshape(like.shape)
    return gx
""")
