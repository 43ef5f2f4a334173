"""Symbolic graphs: built on placeholders with free (None) dimensions, evaluated with a feed,
differentiated with cr.grad into symbolic gradients, all against the same computation done
eagerly. (cr.function, the compiler of these graphs, has tests of its own.)"""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

RNG = np.random.default_rng(0)
W_VAL = RNG.normal(size=(3, 4))
B_VAL = RNG.normal(size=(4,))


def _params():
    return cr.Variable(W_VAL.copy(), name="W"), cr.Variable(B_VAL.copy(), name="b")


# name, graph(x, labels, W, b) -> Tensor, where x is (N, 3) float and labels (N,) int in [0, 4).
# Each is built once on placeholders with N free and once eagerly on arrays.
GRAPHS = [
    ("affine", lambda x, y, W, b: x @ W + b),
    ("tanh layer summed", lambda x, y, W, b: cr.tanh(x @ W + b).sum()),
    ("mean over the free axis", lambda x, y, W, b: (x @ W).mean(axis=0)),
    ("mean of everything", lambda x, y, W, b: cr.mean(cr.sigmoid(x @ W) * b)),
    ("max over the free axis", lambda x, y, W, b: cr.max(x @ W, axis=0) * b),
    ("min over features",
                    lambda x, y, W, b: cr.min(x @ W + b, axis=1, keepdims=True)),
    ("relu and clip", lambda x, y, W, b: cr.clip(cr.relu(x @ W + b), None, 1.0)),
    ("softmax", lambda x, y, W, b: cr.softmax(x @ W + b)),
    ("log_softmax over the free axis", lambda x, y, W, b: cr.log_softmax(x @ W, axis=0)),
    ("cross_entropy with fed labels", lambda x, y, W, b: cr.cross_entropy(x @ W + b, y)),
    ("cross_entropy none", lambda x, y, W, b: cr.cross_entropy(x @ W + b, y, reduction="none")),
    ("hinge_loss with fed labels", lambda x, y, W, b: cr.hinge_loss(x @ W + b, y)),
    ("mse against a fed target", lambda x, y, W, b: cr.mse_loss(x @ W, x @ W * 0.5 + b)),
    ("binary cross-entropy", lambda x, y, W, b: cr.binary_cross_entropy(
        cr.sigmoid(x @ W), cr.sigmoid(x @ W * 2.0 + b))),
    ("transpose and reshape",
                        lambda x, y, W, b: cr.reshape((x @ W).T, (-1,)) * 2.0),
    ("reshape keeping the free dim", lambda x, y, W, b: cr.reshape(x @ W, (-1, 2, 2)) * 2.0),
    ("transpose", lambda x, y, W, b: (x @ W).T * b[:, None]),
    ("getitem basic", lambda x, y, W, b: (x @ W + b)[:, 1:3]),
    ("getitem of the first row", lambda x, y, W, b: (x @ W + b)[0]),
    ("concatenate along features", lambda x, y, W, b: cr.concatenate([x @ W, x * 2.0], axis=1)),
    ("stack", lambda x, y, W, b: cr.stack([x @ W, x @ W * b], axis=1)),
    ("where", lambda x, y, W, b: cr.where(x @ W > 0.0, x @ W, b)),
    ("maximum with broadcasting", lambda x, y, W, b: cr.maximum(x @ W, b)),
    ("batched matmul of a free batch", lambda x, y, W, b: cr.reshape(x, (-1, 1, 3)) @ W),
    ("vector-matrix", lambda x, y, W, b: (x @ W).sum(axis=0) @ (W.T * 1.0)),
]


def _feed(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.integers(0, 4, size=n)


def _weights(shape, seed):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape)


@pytest.mark.parametrize("name, graph", [g if type(g) is not tuple else
                                         pytest.param(*g, id=g[0]) for g in GRAPHS])
def test_eval_and_symbolic_grad_equal_eager(name, graph):
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    labels = cr.placeholder((None,), dtype=np.int64, name="labels")
    W, b = _params()
    sym = graph(x, labels, W, b)
    assert sym.data is None
    # the upstream gradient is fed too, so one symbolic gradient serves every batch size
    upstream = cr.placeholder(sym.shape, dtype=np.float64, name="G")
    dW, db = cr.grad(sym, [W, b], grad_outputs=upstream, allow_unused=True)
    for n, seed in [(2, 1), (5, 2)]:
        xv, yv = _feed(n, seed)
        feed = {x: xv, labels: yv}
        We, be = _params()
        eager = graph(cr.tensor(xv), yv, We, be)
        assert sym.eval(feed).shape == eager.shape
        np.testing.assert_allclose(sym.eval(feed), eager.numpy(), rtol=1e-12, atol=1e-12)
        G = _weights(eager.shape, seed)
        want = cr.grad(eager, [We, be], grad_outputs=cr.tensor(G), allow_unused=True)
        for got, w in zip((dW, db), want):
            if w is None:
                assert got is None
            else:
                np.testing.assert_allclose(got.eval({**feed, upstream: G}), w.numpy(),
                                           rtol=1e-10, atol=1e-12)


def test_free_dimensions_are_kept():
    x = cr.placeholder((None, 3), name="x")
    assert x.shape == (None, 3) and x.size is None and x.ndim == 2 and x.is_leaf
    assert (x * 2.0).shape == (None, 3)
    assert x.sum(axis=1).shape == (None,)
    assert x.sum(axis=0).shape == (3,)
    assert (x @ np.ones((3, 5))).shape == (None, 5)
    assert cr.placeholder((4, 3)).size == 12


def test_placeholder_dtype_defaults_to_default_dtype():
    assert cr.placeholder((2,)).dtype == np.float32
    assert cr.placeholder((2,), dtype=np.float64).dtype == np.float64
    # a fed array is cast to the placeholder's dtype
    x = cr.placeholder((2,), name="x")
    assert (x * 2.0).eval({x: np.array([1.0, 2.0])}).dtype == np.float32


def test_variables_are_read_at_eval_time():
    x = cr.placeholder((None,), dtype=np.float64, name="x")
    w = cr.Variable(np.array(2.0), name="w")
    y = x * w
    assert y.eval({x: np.array([1.0, 3.0])}).tolist() == [2.0, 6.0]
    w.data = np.array(-1.0)            # what an optimizer step does
    assert y.eval({x: np.array([1.0, 3.0])}).tolist() == [-1.0, -3.0]
    (dw,) = cr.grad(y.sum(), [w])
    assert dw.eval({x: np.array([1.0, 3.0])}) == 4.0


def test_eval_of_a_value_is_the_value():
    t = cr.tensor([1.0, 2.0])
    assert t.eval().tolist() == [1.0, 2.0]


def test_symbolic_second_order():
    x = cr.placeholder((None,), dtype=np.float64, name="x")
    w = cr.Variable(np.array([0.5, -1.0, 2.0]), name="w")
    y = cr.tanh(x[:, None] * w).sum()         # sum_ij tanh(x_i w_j)
    (dw,) = cr.grad(y, [w])
    (d2w,) = cr.grad((dw * dw).sum(), [w])
    xv = np.array([0.3, -0.7])
    t = np.tanh(xv[:, None] * w.numpy())
    dw_want = ((1 - t ** 2) * xv[:, None]).sum(axis=0)
    np.testing.assert_allclose(dw.eval({x: xv}), dw_want, rtol=1e-12)
    # d/dw_j (dw_j^2) = 2 dw_j * sum_i -2 t (1 - t^2) x_i^2
    d2_want = 2 * dw_want * (-2 * t * (1 - t ** 2) * xv[:, None] ** 2).sum(axis=0)
    np.testing.assert_allclose(d2w.eval({x: xv}), d2_want, rtol=1e-12)
    # and the same from the eager graph with create_graph
    we = cr.Variable(w.numpy().copy())
    (dwe,) = cr.grad(cr.tanh(cr.tensor(xv)[:, None] * we).sum(), [we], create_graph=True)
    (d2e,) = cr.grad((dwe * dwe).sum(), [we])
    np.testing.assert_allclose(d2w.eval({x: xv}), d2e.numpy(), rtol=1e-12)


def test_symbolic_max_gradient_routes_to_the_winner():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    w = cr.Variable(np.array([1.0, 2.0, 3.0]), name="w")
    y = (x * w).max(axis=1).sum()
    (dw,) = cr.grad(y, [w])
    xv = np.array([[3.0, 1.0, 0.5], [0.0, 1.0, 1.0], [1.0, 1.5, 1.0]])
    # rows' winners: column 0 (3.0), column 2 (3.0), a tie of columns 1 and 2 (3.0 each)
    np.testing.assert_allclose(dw.eval({x: xv}), [3.0, 0.75, 1.0 + 0.5], rtol=1e-12)


def test_symbolic_gradient_is_named_after_its_variable():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    W, b = _params()
    dW, db = cr.grad(cr.tanh(x @ W + b).sum(), [W, b])
    assert (dW.name, db.name) == ("dW", "db")
    assert dW.shape == (3, 4) and db.shape == (4,)


# -- shape inference never indexes real data with stand-in sizes ---------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", [cr.cross_entropy, cr.hinge_loss])
def test_losses_on_a_free_batch_with_labels_given_as_an_array(loss, reduction):
    labels = np.array([0, 2, 1, 2])
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    W = cr.Variable(np.eye(3) * 0.5, name="W")
    out = loss(x @ W, labels, reduction=reduction)
    assert out.shape == ((4,) if reduction == "none" else ())
    xv = np.random.default_rng(0).normal(size=(4, 3))
    We = cr.Variable(np.eye(3) * 0.5)
    eager = loss(cr.tensor(xv) @ We, labels, reduction=reduction)
    np.testing.assert_allclose(out.eval({x: xv}), eager.numpy(), rtol=1e-12)
    g = np.ones(out.shape)
    (dW,) = cr.grad(out, [W], grad_outputs=g)
    (dWe,) = cr.grad(eager, [We], grad_outputs=g)
    np.testing.assert_allclose(cr.function([x], dW)(xv), dWe.numpy(), rtol=1e-12)


def test_integer_index_into_a_free_dim():
    x = cr.placeholder((None,), dtype=np.float64, name="x")
    out = x[np.array([2, 2, 0])]
    assert out.shape == (3,)
    np.testing.assert_array_equal(out.eval({x: np.arange(4.0)}), [2.0, 2.0, 0.0])
