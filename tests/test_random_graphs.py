"""Random graphs over the op table, computed every way chainrule can and by PyTorch.

Each case is a seeded random DAG: placeholders with a free batch dim, Variables, constants
(NumPy arrays and Python floats, on either side of an operator), ops drawn from the rows of
``tests/op_table.py``, fan-out (a node may feed many) and broadcasting (operands of shapes
(B, F), (1, F), (F,), (B, 1) and ()). Its loss and the gradients with respect to every
Variable and placeholder are computed

* eagerly, by ``eval`` of the symbolic graph, by ``cr.function`` and by the printed source
  run on its own, all against PyTorch, to first and second order;
* as a compiled training step (``updates=``) against the same steps taken eagerly, with the
  Variables changed between calls (they are read at call time).

Seeded and small: a few seconds, enough cases to have found the bugs of issue 7 (two
broadcasts feeding one add, masks frozen at build time).
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule as cr
from op_table import BY_NAME

torch = pytest.importorskip("torch")

B, F = 3, 4
CASES = 30
UNARY = ["tanh", "sigmoid", "relu", "abs", "neg", "square"]
BINARY = ["add", "sub", "mul", "maximum", "minimum"]
REDUCE = ["sum", "mean", "max"]
SHAPES = [(B, F), (1, F), (F,), (B, 1), ()]


class Graph:
    """A random program: leaves, then steps, each reading earlier nodes by index."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.rng = rng
        # y's batch is 1 in every other graph: two free dims, fed different sizes
        self.placeholders = [rng.normal(size=(B, F)), rng.normal(size=(B if seed % 2 else 1, 1))]
        self.variables = [np.asarray(rng.normal(size=s)) for s in [(F,), (1, F), (), (F, F)]]
        self.steps = []
        n = len(self.placeholders) + len(self.variables) - 1     # the (F, F) one feeds matmul
        shapes = [(B, F), (B, 1), (F,), (1, F), ()]
        for _ in range(rng.integers(6, 14)):
            kind = rng.choice(["unary", "binary", "binary", "const", "reduce", "matmul",
                               "softmax", "where"])
            i = int(rng.integers(n))          # any earlier node: fan-out comes for free
            j = int(rng.integers(n))
            s = shapes[i]
            if kind == "unary":
                step, shape = ("unary", str(rng.choice(UNARY)), i), s
            elif kind == "binary":
                step, shape = ("binary", str(rng.choice(BINARY)), i, j), _broadcast(s, shapes[j])
            elif kind == "const":
                c = float(rng.normal()) if rng.random() < 0.5 else \
                    np.asarray(rng.normal(size=SHAPES[rng.integers(len(SHAPES))]))
                step = ("const", str(rng.choice(BINARY)), i, c, bool(rng.random() < 0.5))
                shape = _broadcast(s, np.shape(c))
            elif kind == "reduce" and s:
                axis = int(rng.integers(-len(s), len(s)))
                step, shape = ("reduce", str(rng.choice(REDUCE)), i, axis), \
                    tuple(1 if k == axis % len(s) else m for k, m in enumerate(s))
            elif kind == "matmul" and s and s[-1] == F:
                step, shape = ("matmul", i), s
            elif kind == "softmax" and s:
                step, shape = ("softmax", i), s
            elif kind == "where":
                step, shape = ("where", i, j), _broadcast(s, shapes[j])
            else:
                continue
            self.steps.append(step)
            shapes.append(shape)
            n += 1
        # the loss: every node nobody reads, weighted, summed
        read = {k for st in self.steps for k in _reads(st)}
        self.ends = [k for k in range(2, n) if k not in read] or [n - 1]
        self.weights = [float(rng.uniform(0.5, 1.5)) for _ in self.ends]

    def run(self, lib, placeholders, variables):
        """The loss computed with ``lib`` (chainrule or torch) from the given leaves."""
        nodes = list(placeholders) + list(variables[:3])
        W = variables[3]
        for st in self.steps:
            kind = st[0]
            if kind == "unary":
                out = lib.row(st[1], nodes[st[2]])
            elif kind == "binary":
                out = lib.row(st[1], nodes[st[2]], nodes[st[3]])
            elif kind == "const":
                _, name, i, c, left = st
                c = lib.const(c)
                out = lib.row(name, c, nodes[i]) if left else lib.row(name, nodes[i], c)
            elif kind == "reduce":
                out = lib.row(st[1], nodes[st[2]], axis=st[3], keepdims=True)
            elif kind == "matmul":
                out = lib.row("matmul", nodes[st[1]], W)
            elif kind == "softmax":
                out = lib.row("softmax", nodes[st[1]], axis=-1)
            else:                               # a mask that depends on the graph's values
                out = lib.where(nodes[st[1]], nodes[st[2]])
            nodes.append(out)
        loss = None
        for k, w in zip(self.ends, self.weights):
            term = lib.row("sum", nodes[k], axis=None, keepdims=False) * w
            loss = term if loss is None else loss + term
        return loss


def _reads(step) -> tuple:
    """The nodes a step reads."""
    kind = step[0]
    if kind in ("matmul", "softmax"):
        return (step[1],)
    if kind == "where":
        return step[1:3]
    if kind == "binary":
        return step[2:4]
    return (step[2],)


def _broadcast(a, b):
    return tuple(np.broadcast_shapes(a, b))


class Chainrule:
    @staticmethod
    def row(name, *xs, **kw):
        return BY_NAME[name].cr(*xs, **kw)

    @staticmethod
    def const(c):
        return c                                 # Python floats and NumPy arrays as they are

    @staticmethod
    def where(x, y):
        return cr.where(x > y, x, y * 0.5)


class Torch:
    @staticmethod
    def row(name, *xs, **kw):
        return BY_NAME[name].torch(*xs, **kw)

    @staticmethod
    def const(c):
        return torch.tensor(np.asarray(c, dtype=np.float64))

    @staticmethod
    def where(x, y):
        return torch.where(x > y, x, y * 0.5)


def _torch_grads(g: Graph, variables, second=None):
    tps = [torch.tensor(p, requires_grad=True) for p in g.placeholders]
    tvs = [torch.tensor(v, requires_grad=True) for v in variables]
    loss = g.run(Torch, tps, tvs)
    leaves = tvs + tps
    grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(x) if d is None else d for x, d in zip(leaves, grads)]
    out = [loss.detach().numpy()] + [d.detach().numpy(force=True) for d in grads]
    if second is not None:
        total = sum((d * torch.tensor(u)).sum() for d, u in zip(grads[:len(tvs)], second))
        h = torch.autograd.grad(total, tvs, allow_unused=True) if total.requires_grad else \
            [None] * len(tvs)
        out += [np.zeros_like(v) if d is None else d.numpy(force=True)
                for v, d in zip(variables, h)]
    return out


def _zeros_for_none(grads, like):
    return [np.zeros(np.shape(x)) if d is None else np.asarray(
        d.numpy() if isinstance(d, cr.Tensor) else d) for d, x in zip(grads, like)]


@pytest.mark.parametrize("seed", range(CASES))
def test_random_graph_every_way_against_torch(seed):
    g = Graph(seed)
    us = [g.rng.normal(size=np.shape(v)) for v in g.variables]
    want = _torch_grads(g, g.variables, second=us)
    n_leaves = len(g.variables) + len(g.placeholders)
    like = g.variables + g.placeholders

    # eager, first and second order
    ps = [cr.tensor(p, requires_grad=True) for p in g.placeholders]
    vs = [cr.Variable(v.copy()) for v in g.variables]
    loss = g.run(Chainrule, ps, vs)
    grads = cr.grad(loss, vs + ps, create_graph=True, allow_unused=True)
    total = sum(((d * u).sum() for d, u in zip(grads[:len(vs)], us) if d is not None),
                cr.tensor(0.0, dtype=np.float64))
    second = cr.grad(total, vs, allow_unused=True) if total.requires_grad else [None] * len(vs)
    eager = [loss.numpy()] + _zeros_for_none(grads, like) + _zeros_for_none(second, g.variables)

    # symbolic: placeholders with a free batch dim, gradients w.r.t. Variables and placeholders
    phs = [cr.placeholder((None, F), dtype=np.float64, name="x"),
           cr.placeholder((None, 1), dtype=np.float64, name="y")]
    svs = [cr.Variable(v.copy(), name=f"v{i}") for i, v in enumerate(g.variables)]
    sloss = g.run(Chainrule, phs, svs)
    sgrads = cr.grad(sloss, svs + phs, allow_unused=True, create_graph=True)
    sgrads = [d if d is not None else cr.tensor(np.zeros(np.shape(x))) for d, x in
              zip(sgrads, like)]
    stotal = sum(((d * u).sum() for d, u in zip(sgrads[:len(svs)], us)),
                 cr.tensor(0.0, dtype=np.float64))
    ssecond = cr.grad(stotal, svs, allow_unused=True) if stotal.requires_grad else \
        [None] * len(svs)
    ssecond = [d if d is not None else cr.tensor(np.zeros(np.shape(v))) for d, v in
               zip(ssecond, g.variables)]
    outs = [sloss] + sgrads + ssecond
    feed = dict(zip(phs, g.placeholders))
    evaluated = [t.eval(feed) for t in outs]
    f = cr.function(phs, outs)
    compiled = f(*g.placeholders)
    ways = [("eager", eager), ("eval", evaluated), ("compiled", compiled)]
    namespace: dict = {}
    exec(f.source, namespace)
    takes = inspect.signature(namespace["f"]).parameters
    same = g.placeholders[0].shape[0] == g.placeholders[1].shape[0]
    named = {f"v{i}": v for i, v in enumerate(g.variables) if f"v{i}" in takes}
    alone = namespace["f"](*g.placeholders, **named) if same else None
    alone = list(alone) if isinstance(alone, tuple) else [alone]
    if same:
        ways.append(("source alone", alone))   # (printed for one batch size: see cr.function)

    for way, got in ways:
        assert len(got) == len(want), way
        for k, (a, b) in enumerate(zip(got, want)):
            what = "loss" if k == 0 else f"gradient {k - 1}" if k <= n_leaves else \
                f"second order {k - 1 - n_leaves}"
            assert np.shape(a) == np.shape(b), f"{way}: {what}"
            np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=1e-9,
                                       atol=1e-10, err_msg=f"seed {seed}, {way}: {what}")


@pytest.mark.parametrize("seed", range(0, CASES, 2))
def test_random_graph_compiled_steps_equal_eager_steps(seed):
    """A compiled step ``updates=[(v, v - lr * dv)]`` against the same steps taken eagerly,
    fed new batches, with the Variables moved by hand between calls."""
    g = Graph(seed)
    phs = [cr.placeholder((None, F), dtype=np.float64, name="x"),
           cr.placeholder((None, 1), dtype=np.float64, name="y")]
    svs = [cr.Variable(v.copy(), name=f"v{i}") for i, v in enumerate(g.variables)]
    sloss = g.run(Chainrule, phs, svs)
    grads = cr.grad(sloss, svs, allow_unused=True)
    updates = [(v, v - 0.05 * d) for v, d in zip(svs, grads) if d is not None]
    step = cr.function(phs, sloss, updates=updates)
    evs = [cr.Variable(v.copy()) for v in g.variables]
    rng = np.random.default_rng(seed + 1000)
    for _ in range(3):
        batch = [rng.normal(size=(B, F)), rng.normal(size=(B, 1))]
        got = step(*batch)
        loss = g.run(Chainrule, [cr.tensor(b) for b in batch], evs)
        egrads = cr.grad(loss, evs, allow_unused=True)
        for v, d in zip(evs, egrads):
            if d is not None:
                v.data = np.asarray(v.data - 0.05 * d.numpy())
        np.testing.assert_allclose(got, loss.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"seed {seed}: loss")
        for k, (v, e) in enumerate(zip(svs, evs)):
            np.testing.assert_allclose(v.data, e.data, rtol=1e-10, atol=1e-12,
                                       err_msg=f"seed {seed}: Variable {k}")
        for v, e in zip(svs, evs):            # moved by hand: the next call must see it
            noise = rng.normal(size=np.shape(e.data)) * 0.3
            v.data = np.asarray(v.data + noise)
            e.data = np.asarray(e.data + noise)
