"""``cr.function``: graphs compiled to one straight-line NumPy function.

Each compiled value and gradient is checked against the same computation done eagerly (or by
hand in NumPy); the generated source is run on its own; the optimisations the compiler claims
(CSE, dead-code removal, constant folding, in-place accumulation) are checked in the source and
against the values.
"""
from __future__ import annotations

import inspect
import traceback

import numpy as np
import pytest

import chainrule as cr
from gates import Multiply

RNG = np.random.default_rng(0)
SHAPES = {"W": (3, 4), "b": (4,), "W2": (4, 4), "c": (1, 4), "w": (3,), "v": (4,), "s": ()}
VALUES = {k: RNG.normal(size=s) for k, s in SHAPES.items()}


def _batch(n: int, seed: int = 1) -> dict:
    """Arrays for the placeholders of every graph below, with batch size ``n``."""
    rng = np.random.default_rng(seed + n)
    return {"x": rng.normal(size=(n, 3)), "y": rng.integers(0, 4, n),
            "t": rng.uniform(0.1, 0.9, size=(n, 4)), "p": rng.integers(0, 2, n).astype(float)}


def _placeholders() -> dict:
    return {"x": cr.placeholder((None, 3), dtype=np.float64, name="x"),
            "y": cr.placeholder((None,), dtype=np.int64, name="y"),
            "t": cr.placeholder((None, 4), dtype=np.float64, name="t"),
            "p": cr.placeholder((None,), dtype=np.float64, name="p")}


def _variables(names) -> dict:
    return {k: cr.Variable(VALUES[k].copy(), name=k) for k in names}


def _mlp(d):
    h = cr.relu(d["x"] @ d["W"] + d["b"])
    return cr.cross_entropy(h @ d["W2"] + d["c"], d["y"])


# name, variables used, graph(dict of placeholders/arrays and Variables) -> scalar loss
GRAPHS = [
    ("mlp relu cross_entropy", "W b W2 c", _mlp),
    ("tanh layer mse", "W b", lambda d: cr.mse_loss(cr.tanh(d["x"] @ d["W"] + d["b"]), d["t"])),
    ("logistic regression", "w s", lambda d: cr.binary_cross_entropy(
        cr.sigmoid(d["x"] @ d["w"] + d["s"]), d["p"])),
    ("hinge loss", "W b", lambda d: cr.hinge_loss(d["x"] @ d["W"] + d["b"], d["y"])),
    ("softmax and log_softmax", "W b", lambda d: (cr.softmax(d["x"] @ d["W"] + d["b"])
                                                  * d["t"]).sum()
     - cr.log_softmax(d["x"] @ d["W"], axis=0).mean() + cr.log_softmax(d["x"] @ d["W"])[:, 0].sum()),
    ("max and min reductions", "W b", lambda d: (cr.max(d["x"] @ d["W"], axis=0) * d["b"]).sum()
     + cr.min(d["x"] @ d["W"] + d["b"], axis=1, keepdims=True).sum()
     + cr.max(cr.tanh(d["x"] @ d["W"])) - cr.min(d["x"] @ d["W"]) * 0.5),
    ("getitem with slices", "W b", lambda d: ((d["x"] @ d["W"])[:, 1:3] ** 2).sum()
     + ((d["x"] @ d["W"] + d["b"])[:, ::-1] * d["t"][..., ::-1]).sum()
     + (d["x"] @ d["W"])[:, None, 2].sum() + (d["x"] @ d["W"])[0].sum()),
    ("concatenate and stack", "W b", lambda d: (cr.concatenate(
        [d["x"] @ d["W"], cr.tanh(d["x"] @ d["W"] + d["b"]), d["x"]], axis=1) ** 2).sum()
     + (cr.stack([d["x"] @ d["W"], d["t"] * d["b"]], axis=1) * 0.5).sum()
     + (cr.stack([d["b"], d["b"] * 2.0]) ** 2).sum()),
    ("where clip maximum", "W b", lambda d: (cr.where(d["x"] @ d["W"] > 0, d["x"] @ d["W"],
                                                     (d["x"] @ d["W"]) * 0.1)
                                            + cr.clip(d["x"] @ d["W"] + d["b"], -0.5, 0.5)
                                            + cr.maximum(d["x"] @ d["W"], d["b"]) * d["t"]).sum()),
    ("broadcasting with bias", "W b c s", lambda d: ((d["x"] @ d["W"] + d["b"]) * d["c"] + d["s"]
                                                    - d["b"] * d["s"]).mean()),
    ("matmul with 1-D operands", "w v b W", lambda d: (d["x"] @ d["w"] * d["p"]).sum()
     + (d["v"] @ (d["x"] @ d["W"]).T).sum() + d["v"] @ d["b"] + (d["w"] @ d["W"] @ d["v"])),
    ("mean over the free axis", "W b", lambda d: ((d["x"] @ d["W"]).mean(axis=0) @ d["b"])
     + cr.tanh(d["x"] @ d["W"]).mean(axis=0).sum()),
]


def _eager(graph, names, arrays):
    """Loss and gradients computed eagerly, on fresh Variables holding the same values."""
    vs = _variables(names.split())
    d = {k: cr.tensor(a) for k, a in arrays.items()} | vs
    loss = graph(d)
    grads = cr.grad(loss, list(vs.values()))
    return [np.asarray(loss.numpy())] + [g.numpy() for g in grads]


def _compiled(graph, names):
    """A compiled function of every placeholder: [loss, *gradients w.r.t. the Variables]."""
    phs, vs = _placeholders(), _variables(names.split())
    loss = graph(phs | vs)
    grads = cr.grad(loss, list(vs.values()))
    return cr.function(list(phs.values()), [loss] + grads), vs


@pytest.mark.parametrize("name, names, graph", GRAPHS, ids=[g[0] for g in GRAPHS])
def test_compiled_values_and_gradients_equal_eager(name, names, graph):
    f, _ = _compiled(graph, names)
    for n in (5, 2):                     # one compiled function, two sizes of the free dim
        arrays = _batch(n)
        got = f(*arrays.values())
        want = _eager(graph, names, arrays)
        assert len(got) == len(want)
        assert got[0].shape == ()
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, names, graph", GRAPHS, ids=[g[0] for g in GRAPHS])
def test_source_runs_on_its_own(name, names, graph):
    f, vs = _compiled(graph, names)
    assert "chainrule" not in f.source
    namespace: dict = {}
    exec(f.source, namespace)
    arrays = _batch(3)
    # keyword parameters named after the Variables
    out = namespace["f"](*arrays.values(), **{n: v.data for n, v in vs.items()})
    want = f(*arrays.values())
    for o, w in zip(out, want):
        np.testing.assert_array_equal(np.asarray(o), w)


def test_single_output_is_an_array_and_list_of_one_is_a_list():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    w = cr.Variable(VALUES["w"].copy(), name="w")
    X = _batch(4)["x"]
    scalar = cr.function([x], (x @ w).sum())(X)
    assert isinstance(scalar, np.ndarray) and scalar.shape == ()
    np.testing.assert_allclose(scalar, (X @ VALUES["w"]).sum(), rtol=1e-12)
    (vec,) = cr.function([x], [x @ w])(X)
    np.testing.assert_allclose(vec, X @ VALUES["w"], rtol=1e-12)


# -- the seeds' sigmoid example, by hand ----------------------------------------------------
def test_sigmoid_layer_gradients_by_hand():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    W = cr.Variable(VALUES["W"][:, :2].copy(), name="W")
    b = cr.Variable(VALUES["b"][:2].copy(), name="b")
    loss = cr.sigmoid(x @ W + b).sum()
    dW, db = cr.grad(loss, [W, b])
    X = np.random.default_rng(3).normal(size=(6, 3))
    A = 1.0 / (1.0 + np.exp(-(X @ W.data + b.data)))
    want_dW, want_db = X.T @ (A * (1 - A)), np.sum(A * (1 - A), axis=0)

    np.testing.assert_allclose(dW.eval({x: X}), want_dW, rtol=1e-12)
    np.testing.assert_allclose(db.eval({x: X}), want_db, rtol=1e-12)
    f = cr.function([x], [loss, dW, db])
    got_loss, got_dW, got_db = f(X)
    np.testing.assert_allclose(got_loss, A.sum(), rtol=1e-12)
    np.testing.assert_allclose(got_dW, want_dW, rtol=1e-12)
    np.testing.assert_allclose(got_db, want_db, rtol=1e-12)


# -- training in the static style -----------------------------------------------------------
def _training_data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(16, 3))
    T = np.tanh(X @ rng.normal(size=(3, 4)))
    return X, T


def _eager_sgd(steps: int, lr: float, momentum: float = 0.0):
    X, T = _training_data()
    W, b = _variables(["W", "b"]).values()
    opt = cr.optim.SGD([W, b], lr=lr, momentum=momentum)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = cr.mse_loss(cr.tanh(cr.tensor(X) @ W + b), cr.tensor(T))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return W.data, b.data, losses


def test_compiled_sgd_step_matches_eager_steps():
    X, T = _training_data()
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    t = cr.placeholder((None, 4), dtype=np.float64, name="t")
    W, b = _variables(["W", "b"]).values()
    loss = cr.mse_loss(cr.tanh(x @ W + b), t)
    dW, db = cr.grad(loss, [W, b])
    lr = 0.3
    step = cr.function([x, t], loss, updates=[(W, W - lr * dW), (b, b - lr * db)])
    losses = [float(step(X, T)) for _ in range(8)]
    want_W, want_b, want_losses = _eager_sgd(8, lr)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, want_losses, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(W.data, want_W, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b.data, want_b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_optimizer_minimize_matches_eager_steps(momentum):
    X, T = _training_data()
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    t = cr.placeholder((None, 4), dtype=np.float64, name="t")
    W, b = _variables(["W", "b"]).values()
    loss = cr.mse_loss(cr.tanh(x @ W + b), t)
    opt = cr.optim.SGD([W, b], lr=0.2, momentum=momentum)
    step = opt.minimize(loss, [x, t])
    losses = [float(step(X, T)) for _ in range(6)]
    want_W, want_b, want_losses = _eager_sgd(6, 0.2, momentum)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, want_losses, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(W.data, want_W, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b.data, want_b, rtol=1e-6, atol=1e-6)


def test_variables_are_read_at_call_time():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    W = cr.Variable(VALUES["W"].copy(), name="W")
    f = cr.function([x], x @ W)
    X = _batch(2)["x"]
    np.testing.assert_allclose(f(X), X @ VALUES["W"], rtol=1e-12)
    W.data = np.ones((3, 4))                  # reassigned
    np.testing.assert_allclose(f(X), X @ np.ones((3, 4)), rtol=1e-12)
    W.data[...] = 0.0                         # written in place
    np.testing.assert_array_equal(f(X), np.zeros((2, 4)))


def test_updates_read_the_old_values_of_each_other():
    a = cr.Variable(np.array([1.0, 2.0]), name="a")
    b = cr.Variable(np.array([10.0, 20.0]), name="b")
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    f = cr.function([x], (x * a).sum(), updates=[(a, a + 0.5 * b), (b, b * 2.0 + a)])
    out = f(np.ones((1, 2)))
    np.testing.assert_allclose(out, 3.0)                 # the loss sees a before the update
    np.testing.assert_allclose(a.data, [6.0, 12.0])
    np.testing.assert_allclose(b.data, [21.0, 42.0])    # old a, not the new one


def test_subtracting_updates_read_the_old_values():
    a = cr.Variable(np.array([1.0, 2.0]), name="a")
    b = cr.Variable(np.array([10.0, 20.0]), name="b")
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    f = cr.function([x], x.sum(), updates=[(a, a - b), (b, b - a)])
    f(np.ones((1, 2)))
    np.testing.assert_allclose(a.data, [-9.0, -18.0])
    np.testing.assert_allclose(b.data, [9.0, 18.0])


def test_swap_update():
    a = cr.Variable(np.array([1.0, 2.0]), name="a")
    b = cr.Variable(np.array([10.0, 20.0]), name="b")
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    cr.function([x], x.sum(), updates=[(a, b), (b, a)])(np.ones((1, 2)))
    np.testing.assert_allclose(a.data, [10.0, 20.0])
    np.testing.assert_allclose(b.data, [1.0, 2.0])


def test_outputs_are_computed_before_the_updates():
    W = cr.Variable(np.array([[1.0, 2.0]]), name="W")
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    loss = (x @ W.T).sum()
    (dW,) = cr.grad(loss, [W])
    f = cr.function([x], [W.reshape(-1), W[0], W * 1.0, loss], updates=[(W, W - 0.5 * dW)])
    flat, row, same, value = f(np.ones((1, 2)))
    np.testing.assert_allclose(W.data, [[0.5, 1.5]])
    np.testing.assert_allclose(value, 3.0)
    np.testing.assert_allclose(flat, [1.0, 2.0])
    np.testing.assert_allclose(row, [1.0, 2.0])
    np.testing.assert_allclose(same, [[1.0, 2.0]])


# -- the source reads like hand-written backprop -------------------------------------------
def _mlp_step():
    phs = _placeholders()
    x, y = phs["x"], phs["y"]
    vs = _variables(["W", "b", "W2", "c"])
    loss = _mlp({"x": x, "y": y} | vs)
    grads = cr.grad(loss, list(vs.values()))
    updates = [(v, v - 0.1 * g) for v, g in zip(vs.values(), grads)]
    return cr.function([x, y], loss, updates=updates), vs


def test_source_reads_like_hand_written_backprop():
    f, vs = _mlp_step()
    lines = [ln.strip() for ln in f.source.splitlines()]
    assert "# forward" in lines and "# backward" in lines
    fwd, bwd = lines.index("# forward"), lines.index("# backward")
    assert fwd < bwd
    assert any(" @ W" in ln for ln in lines[fwd:bwd])          # the forward matmul
    end = next(i for i, ln in enumerate(lines) if i > bwd and ln.startswith("# update"))
    backward = lines[bwd + 1:end]
    assert backward
    for ln in backward:                       # every backward line names the op it comes from
        assert ln.split("#", 1)[1].strip().endswith("backward"), ln
    for name in vs:                           # dW = ..., named after the Variable
        assert any(ln.startswith(f"d{name} = ") for ln in backward), name
        assert f"{name} -= 0.1 * d{name}" in lines
    namespace: dict = {}
    exec(f.source, namespace)
    params = inspect.signature(namespace["f"]).parameters
    assert list(params)[:2] == ["x", "y"]
    assert sorted(list(params)[2:]) == sorted(vs)
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in vs)


def test_a_runtime_error_shows_the_generated_line():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    t = cr.placeholder((None, 4), dtype=np.float64, name="t")
    W = cr.Variable(VALUES["W"].copy(), name="W")
    f = cr.function([x, t], ((x @ W - t) ** 2).sum())
    with pytest.raises(ValueError) as info:
        f(np.ones((5, 3)), np.ones((3, 4)))   # both pass their placeholder's check
    text = "".join(traceback.format_exception(info.value))
    # (two batch sizes: the program that reuses no storage runs, ``sub = matmul - t``)
    assert "sub = matmul - t" in text
    assert "chainrule-compiled" in text


# -- the optimisations are real -------------------------------------------------------------
def _xw():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    W = cr.Variable(VALUES["W"].copy(), name="W")
    return x, W, _batch(4)["x"]


def test_common_subexpressions_are_computed_once():
    x, W, X = _xw()
    out = cr.tanh(x @ W) + cr.sigmoid(x @ W)
    f = cr.function([x], out)
    assert sum(" @ " in ln for ln in f.source.splitlines()) == 1
    Z = X @ VALUES["W"]
    np.testing.assert_allclose(f(X), np.tanh(Z) + 1 / (1 + np.exp(-Z)), rtol=1e-12)


def test_dead_nodes_are_dropped():
    x, W, X = _xw()
    V = cr.Variable(VALUES["W2"].copy(), name="V")
    unused = cr.exp(x @ W) @ V               # built, never asked for
    f = cr.function([x], cr.tanh(x @ W))
    assert unused.data is None
    assert "exp" not in f.source and "V" not in f.source
    assert len(f.program.eqns) == 2


def test_constants_are_folded():
    x, _, X = _xw()
    f = cr.function([x], (cr.tensor(2.0) * 3.0) * x)
    assert len(f.program.eqns) == 1
    assert "6.0" in f.source
    np.testing.assert_allclose(f(X), 6.0 * X, rtol=1e-6)


def test_fan_out_gradients_accumulate_in_place():
    x, W, X = _xw()
    h = cr.tanh(x @ W)
    loss = (h * h).sum() + (h * 2.0).sum()
    (dW,) = cr.grad(loss, [W])
    f = cr.function([x], dW)
    assert "= np.add(" in f.source and "out=" in f.source   # dx = np.add(dx, g, out=dx)
    H = np.tanh(X @ VALUES["W"])
    np.testing.assert_allclose(f(X), X.T @ ((2 * H + 2.0) * (1 - H ** 2)), rtol=1e-12)


# graphs where one gradient array reaches several places: add hands g to both inputs, a
# broadcast or reshape hands out views, and every one of those inputs fans out again
ALIASING = [
    ("add to two fanned-out inputs", "W W2", lambda d: (
        (cr.tanh(d["x"] @ d["W"]) + cr.sigmoid(d["x"] @ d["W"] @ d["W2"])) ** 2).sum()
     + (cr.tanh(d["x"] @ d["W"]) * cr.sigmoid(d["x"] @ d["W"] @ d["W2"])).sum()),
    ("reshape views fanned out", "W", lambda d: (
        (cr.tanh(d["x"] @ d["W"]).reshape(-1) + (d["x"] @ d["W"]).reshape(-1)) ** 2).sum()
     + (cr.tanh(d["x"] @ d["W"]) * (d["x"] @ d["W"])).sum()),
    ("broadcast bias fanned out", "W b", lambda d: (
        (d["x"] @ d["W"] + d["b"]) ** 2).sum() + (d["b"] * d["b"]).sum()
     + (cr.tanh(d["x"] @ d["W"]) + d["b"]).sum()),
    ("sum broadcast then fan-out", "W", lambda d: cr.tanh(d["x"] @ d["W"]).sum() ** 2
     + (cr.tanh(d["x"] @ d["W"]) ** 2).sum()),
    ("one tensor added to itself", "W", lambda d: ((cr.tanh(d["x"] @ d["W"])
                                                    + cr.tanh(d["x"] @ d["W"])) ** 2).sum()),
]


@pytest.mark.parametrize("name, names, graph", ALIASING, ids=[g[0] for g in ALIASING])
def test_no_aliasing_in_accumulated_gradients(name, names, graph):
    f, _ = _compiled(graph, names)
    for n in (4, 1):
        arrays = _batch(n)
        for g, w in zip(f(*arrays.values()), _eager(graph, names, arrays)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_slice_with_only_a_start():
    x, W, X = _xw()
    out = (x @ W)[:, 1:]
    f = cr.function([x], out)
    np.testing.assert_allclose(f(X), (X @ VALUES["W"])[:, 1:], rtol=1e-12)


def test_zero_d_constant_gradients_keep_dtype_and_arrayness():
    x = cr.placeholder((None, 2), dtype=np.float32, name="x")
    X = np.ones((1, 2), np.float32)
    w = cr.Variable(np.ones((), np.float32), name="w")
    (dw,) = cr.grad(x.sum() * 0.0 + w * 3.0, [w])
    assert dw.eval({x: X}).dtype == np.float32
    got = cr.function([x], dw)(X)
    assert got.dtype == np.float32 and got == 3.0
    v = cr.Variable(np.ones((1,), np.float32), name="v")
    (dv,) = cr.grad(v.reshape(()) + x.sum() * 0.0, [v])
    got = cr.function([x], dv)(X)
    assert got.dtype == np.float32 and got.shape == (1,)


def test_gradient_of_one_element():
    x, W, X = _xw()
    (dW,) = cr.grad((x @ W)[0, 1], [W])
    want = np.zeros((3, 4))
    want[:, 1] = X[0]
    np.testing.assert_allclose(dW.eval({x: X}), want, rtol=1e-12)
    np.testing.assert_allclose(cr.function([x], dW)(X), want, rtol=1e-12)


def test_strided_slice_along_the_free_dim():
    def graph(d):
        return ((d["x"] @ d["W"] + d["b"])[::2] * d["t"][::2]).sum() + (d["x"] @ d["W"])[1:].sum()
    f, _ = _compiled(graph, "W b")
    for n in (5, 2):
        arrays = _batch(n)
        for g, w in zip(f(*arrays.values()), _eager(graph, "W b", arrays)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_mean_over_the_free_axis_then_fan_out():
    graphs = [lambda h: (h.mean(axis=0) ** 2).sum() + (h * h).sum(),     # both orders of
              lambda h: (h * h).sum() + (h.mean(axis=0) ** 2).sum()]     # accumulation
    for fn in graphs:
        def graph(d):
            return fn(cr.tanh(d["x"] @ d["W"]))
        f, _ = _compiled(graph, "W")
        arrays = _batch(4)
        for g, w in zip(f(*arrays.values()), _eager(graph, "W", arrays)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_cse_tells_long_index_arrays_apart():
    x = cr.placeholder((None, 3000), dtype=np.float64, name="x")
    i1 = np.zeros(3000, dtype=np.int64)
    i2 = i1.copy()
    i2[1500] = 1
    out = x[:, i1].sum() * 10.0 + x[:, i2].sum()
    X = np.zeros((1, 3000))
    X[0, 1] = 1.0
    np.testing.assert_allclose(cr.function([x], out)(X), 1.0)


def test_constants_holding_inf_and_nan():
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    mask = cr.tensor(np.array([0.0, -np.inf]))
    f = cr.function([x], [x + mask, x * cr.tensor(np.array([np.nan, 1.0]))])
    masked, nanned = f(np.ones((1, 2)))
    np.testing.assert_array_equal(masked, [[1.0, -np.inf]])
    np.testing.assert_array_equal(nanned, [[np.nan, 1.0]])


def test_empty_constant_keeps_its_shape():
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    _, empty = cr.function([x], [x, cr.tensor(np.zeros((0, 2)))])(np.ones((1, 2)))
    assert empty.shape == (0, 2)


def test_a_tensor_that_is_not_a_variable_is_a_constant_of_the_compiled_function():
    # documented (docs/api.md): only Variables are read at call time; any other tensor, a
    # detached Variable included, is a constant captured when the function is compiled,
    # while Tensor.eval reads every leaf as it is now
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    V = cr.Variable(np.array([1.0, 2.0]), name="V")
    y = x * V.detach()
    f = cr.function([x], y)
    V.data[...] = 5.0
    X = np.ones((1, 2))
    np.testing.assert_array_equal(y.eval({x: X}), [[5.0, 5.0]])
    np.testing.assert_array_equal(f(X), [[1.0, 2.0]])


# -- errors ---------------------------------------------------------------------------------
def test_wrong_number_of_inputs():
    phs = _placeholders()
    f = cr.function([phs["x"], phs["t"]], (phs["x"].sum() + phs["t"].sum()))
    with pytest.raises(cr.GraphError, match="t"):
        f(np.ones((2, 3)))
    with pytest.raises(cr.GraphError):
        f(np.ones((2, 3)), np.ones((2, 4)), np.ones(2))


@pytest.mark.parametrize("bad", [np.ones((2, 4)), np.ones(3), np.ones((1, 2, 3))],
                         ids=["wrong fixed dim", "rank too low", "rank too high"])
def test_fed_array_of_wrong_shape_names_the_placeholder(bad):
    x = cr.placeholder((None, 3), dtype=np.float64, name="images")
    f = cr.function([x], x.sum())
    with pytest.raises(cr.GraphError, match="images"):
        f(bad)


def test_placeholder_missing_from_inputs_is_named_at_compile_time():
    phs = _placeholders()
    with pytest.raises(cr.GraphError, match="'t'"):
        cr.function([phs["x"]], phs["x"].sum() + phs["t"].sum())


def test_inputs_must_be_placeholders():
    W = cr.Variable(VALUES["W"].copy(), name="W")
    with pytest.raises(cr.GraphError):
        cr.function([W], W.sum())
    with pytest.raises(cr.GraphError):
        cr.function([cr.tensor(np.ones(3))], W.sum())
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    with pytest.raises(cr.GraphError):
        cr.function([x * 2.0], x.sum())


def test_update_of_the_wrong_shape():
    x, W, _ = _xw()
    with pytest.raises(cr.GraphError, match="W"):
        cr.function([x], (x @ W).sum(), updates=[(W, W.T)])
    with pytest.raises(cr.GraphError):
        cr.function([x], (x @ W).sum(), updates=[(W, W.sum(axis=0))])


def test_update_of_the_wrong_rank_with_a_free_dim():
    w = cr.Variable(np.array([1.0, 2.0]), name="w")
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    with pytest.raises(cr.GraphError, match="w"):
        cr.function([x], x.sum(), updates=[(w, w - 0.1 * x)])


# -- user-defined gates ---------------------------------------------------------------------
class Add2(cr.Function):
    def forward(self, x, y):
        return x + y

    def backward(self, dz):
        return dz, dz                          # the very upstream array, to both inputs


def _gate_graph(d):
    z = Multiply()(cr.tanh(d["x"] @ d["W"]), d["b"])
    return (z * z).sum() + z.mean()


def test_user_gate_values_and_gradients():
    x = cr.placeholder((4, 3), dtype=np.float64, name="x")
    vs = _variables(["W", "b"])
    loss = _gate_graph({"x": x} | vs)
    f = cr.function([x], [loss] + cr.grad(loss, list(vs.values())))
    arrays = {"x": _batch(4)["x"]}
    for g, w in zip(f(arrays["x"]), _eager(_gate_graph, "W b", arrays)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_user_gate_on_a_free_dim():
    f, _ = _compiled(_gate_graph, "W b")
    arrays = _batch(4)
    for g, w in zip(f(*arrays.values()), _eager(_gate_graph, "W b", arrays)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_user_gate_handing_one_array_to_two_fanned_out_inputs():
    # the product is built before and after the gate, so either order of accumulation is met
    for product_first in (True, False):
        def graph(d):
            h = cr.tanh(d["x"] @ d["W"])
            u, v = h * 2.0, h * 3.0
            p = (u * v).sum() if product_first else None
            s = Add2()(u, v)
            return (s * s).sum() + (p if product_first else (u * v).sum())
        x = cr.placeholder((4, 3), dtype=np.float64, name="x")
        vs = _variables(["W"])
        loss = graph({"x": x} | vs)
        f = cr.function([x], cr.grad(loss, [vs["W"]]))
        arrays = {"x": _batch(4)["x"]}
        (want,) = _eager(graph, "W", arrays)[1:]
        np.testing.assert_allclose(f(arrays["x"])[0], want, rtol=1e-10, atol=1e-12)


# -- higher order ---------------------------------------------------------------------------
def test_second_derivative_compiles():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    w = cr.Variable(VALUES["w"].copy(), name="w")
    (dw,) = cr.grad(cr.tanh(x * w).sum(), [w], create_graph=True)
    (d2w,) = cr.grad(dw.sum(), [w])
    u = np.array([0.5, -1.0, 2.0])
    (hvp,) = cr.grad((dw * u).sum(), [w])
    f = cr.function([x], [dw, d2w, hvp])
    X = _batch(5)["x"]
    got_dw, got_d2w, got_hvp = f(X)

    # eager double backward
    we = cr.Variable(VALUES["w"].copy())
    (dwe,) = cr.grad(cr.tanh(cr.tensor(X) * we).sum(), [we], create_graph=True)
    (d2we,) = cr.grad(dwe.sum(), [we])
    np.testing.assert_allclose(got_dw, dwe.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got_d2w, d2we.numpy(), rtol=1e-12)
    # by hand: d/dw sum tanh(xw) = sum_n x (1 - t^2); the Hessian is diagonal
    T = np.tanh(X * VALUES["w"])
    np.testing.assert_allclose(got_dw, (X * (1 - T ** 2)).sum(0), rtol=1e-12)
    hess_diag = (X ** 2 * -2 * T * (1 - T ** 2)).sum(0)
    np.testing.assert_allclose(got_d2w, hess_diag, rtol=1e-10)
    np.testing.assert_allclose(got_hvp, hess_diag * u, rtol=1e-10)


# -- what the compiled code hands out is the caller's own ----------------------------------
def test_outputs_are_fresh_arrays_the_caller_may_write_into():
    x = cr.placeholder((2, 3), dtype=np.float64, name="x")
    v = cr.Variable(np.array([1.0, 2.0, 3.0]), name="v")
    c = cr.tensor(np.array([1.0, 2.0]))
    # a folded constant, a broadcast gradient, an input, a Variable and a view of the input
    f = cr.function([x], [c * 2.0] + cr.grad(cr.sum(v * 2.0) + cr.sum(x), [v])
                    + [x * 1.0, v * 1.0, x.T, cr.reshape(x, (-1,))])
    xv = np.ones((2, 3))
    first = f(xv)
    for r in first:
        assert r.flags.writeable
        assert not np.shares_memory(r, xv) and not np.shares_memory(r, v.data)
        r *= 100
    again = f(xv)
    np.testing.assert_array_equal(again[0], [2.0, 4.0])
    np.testing.assert_array_equal(again[1], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(xv, np.ones((2, 3)))
    np.testing.assert_array_equal(v.data, [1.0, 2.0, 3.0])


def test_one_output_twice_is_two_arrays():
    x = cr.placeholder((3,), dtype=np.float64, name="x")
    y = cr.exp(x)
    a, b = cr.function([x], [y, y])(np.zeros(3))
    assert not np.shares_memory(a, b)


@pytest.mark.parametrize("other", ["w_old", "mul_old", "x"])
def test_snapshot_names_never_shadow_a_variable_or_a_line(other):
    x = cr.placeholder((2,), dtype=np.float64, name="x")
    w = cr.Variable(np.array([1.0, 2.0]), name="w")
    v = cr.Variable(np.array([5.0, 5.0]), name=other)
    f = cr.function([x], [w * 1.0, cr.sum(x * v)], updates=[(w, w * 2.0), (v, v + w)])
    old, total = f(np.ones(2))
    np.testing.assert_array_equal(old, [1.0, 2.0])
    assert float(total) == 10.0
    np.testing.assert_array_equal(w.data, [2.0, 4.0])
    np.testing.assert_array_equal(v.data, [6.0, 7.0])
    assert "chainrule" not in f.source


# -- a binary op whose operands are both broadcasts keeps one of them ------------------------
def _sum_plus_mean_of_tanh(x, v):
    t = cr.tanh(x * v)
    return cr.sum(t) + cr.mean(t)


@pytest.mark.parametrize("graph", [_sum_plus_mean_of_tanh,
                                   lambda x, v: cr.sum(v) + cr.sum(v + x),
                                   lambda x, v: cr.sum(v * 2.0) + cr.sum(v)])
@pytest.mark.parametrize("x_shape", [(3,), (2, 3), (None, 3)])
def test_gradient_from_two_broadcasts_compiles_to_eager(graph, x_shape):
    xv = np.random.default_rng(0).normal(size=(2, 3) if len(x_shape) == 2 else (3,))
    v0 = np.array([0.1, -0.2, 0.3])
    x = cr.placeholder(x_shape, dtype=np.float64, name="x")
    v = cr.Variable(v0.copy(), name="v")
    f = cr.function([x], cr.grad(graph(x, v), [v]))
    ve = cr.Variable(v0.copy())
    (want,) = cr.grad(graph(cr.tensor(xv), ve), [ve])
    (got,) = f(xv)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)


# -- what depends on a Variable is read at call time, masks included -------------------------
def test_relu_mask_of_a_variable_follows_the_variable():
    x = cr.placeholder((3,), dtype=np.float64, name="x")
    v = cr.Variable(np.array([1.0, -1.0, 1.0]), name="v")
    (dv,) = cr.grad(cr.sum(cr.relu(v) * x), [v])
    f = cr.function([x], dv)
    v.data[...] = [-1.0, 1.0, -1.0]
    np.testing.assert_array_equal(f(np.ones(3)), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(dv.eval({x: np.ones(3)}), [0.0, 1.0, 0.0])


def test_a_comparison_of_a_variable_is_a_line_of_the_compiled_code():
    x = cr.placeholder((3,), dtype=np.float64, name="x")
    v = cr.Variable(np.array([1.0, -1.0, 1.0]), name="v")
    f = cr.function([x], cr.where(v > 0, x, -x))
    assert "v > " in f.source
    v.data[...] = [-1.0, 1.0, 1.0]
    np.testing.assert_array_equal(f(np.ones(3)), [-1.0, 1.0, 1.0])


def test_l1_penalty_step_compiled_equals_eager_steps():
    rng = np.random.default_rng(0)
    xs, w0 = rng.normal(size=(5, 4, 3)), np.array([[0.05], [-0.02], [0.3]])
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    W = cr.Variable(w0.copy(), name="W")
    loss = cr.mean((x @ W) ** 2) + cr.abs(W).sum()
    (dW,) = cr.grad(loss, [W])
    step = cr.function([x], loss, updates=[(W, W - 0.1 * dW)])
    We = cr.Variable(w0.copy())
    for xb in xs:                     # the small weights change sign along the way
        got = step(xb)
        want = cr.mean((cr.tensor(xb) @ We) ** 2) + cr.abs(We).sum()
        (g,) = cr.grad(want, [We])
        We.data = We.data - 0.1 * g.numpy()
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
        np.testing.assert_allclose(W.data, We.data, rtol=1e-12)
    assert (np.sign(W.data) != np.sign(w0)).any()


# -- free dims of different inputs are independent ------------------------------------------
@pytest.mark.parametrize("nx, ny", [(1, 4), (4, 1), (3, 3)])
def test_two_independent_free_dims_compile_to_eval(nx, ny):
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    y = cr.placeholder((None, 3), dtype=np.float64, name="y")
    v = cr.Variable(np.array([0.5, -1.0, 2.0]), name="v")
    h = cr.exp(x * v) + cr.tanh(y * v)
    loss = cr.sum(h * h)
    outs = [h] + cr.grad(loss, [v, x, y])
    f = cr.function([x, y], outs)
    rng = np.random.default_rng(0)
    xv, yv = rng.normal(size=(nx, 3)), rng.normal(size=(ny, 3))
    feed = {x: xv, y: yv}
    for got, t in zip(f(xv, yv), outs):
        np.testing.assert_allclose(got, t.eval(feed), rtol=1e-12)
    # eager, with the placeholders' values as tensors that require grad
    xe, ye = cr.tensor(xv, requires_grad=True), cr.tensor(yv, requires_grad=True)
    ve = cr.Variable(v.data.copy())
    he = cr.exp(xe * ve) + cr.tanh(ye * ve)
    want = cr.grad(cr.sum(he * he), [ve, xe, ye])
    for got, w in zip(f(xv, yv)[1:], want):
        np.testing.assert_allclose(got, w.numpy(), rtol=1e-12)


def test_grad_with_respect_to_a_placeholder_needs_nothing_more():
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    (dx,) = cr.grad(cr.sum(cr.tanh(x) * x), [x])
    assert not x.requires_grad
    xv = np.array([[0.5, -1.0]])
    want = np.tanh(xv) + xv * (1 - np.tanh(xv) ** 2)
    np.testing.assert_allclose(cr.function([x], dx)(xv), want, rtol=1e-12)
    (d2,) = cr.grad(cr.sum(dx), [x])          # and again
    assert d2.eval({x: xv}).shape == (1, 2)
