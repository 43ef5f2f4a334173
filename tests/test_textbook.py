"""The worked examples of the backprop notes, each with its numbers."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def var(v):
    return cr.Variable(np.asarray(v, dtype=np.float64))


def test_add_then_multiply_circuit():
    # f = (x + y) z at x=-2, y=5, z=-4: q = 3, f = -12; df/dx = df/dy = z = -4, df/dz = q = 3
    x, y, z = var(-2.0), var(5.0), var(-4.0)
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


NEURON = dict(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
# dot = 1, f = sigmoid(1) = 0.73, local gradient (1 - f) f = 0.20
NEURON_GRADS = dict(w0=-0.20, x0=0.39, w1=-0.39, x1=-0.59, w2=0.20)


def _neuron_from_gates(w0, x0, w1, x1, w2):
    dot = w0 * x0 + w1 * x1 + w2
    return 1.0 / (1.0 + cr.exp(-dot))


def _neuron_from_sigmoid(w0, x0, w1, x1, w2):
    return cr.sigmoid(w0 * x0 + w1 * x1 + w2)


@pytest.mark.parametrize("build", [_neuron_from_gates, _neuron_from_sigmoid],
                         ids=["primitive gates", "sigmoid gate"])
def test_sigmoid_neuron(build):
    vs = {k: var(v) for k, v in NEURON.items()}
    f = build(**vs)
    f.backward()
    assert f.item() == pytest.approx(0.7310585786300049, abs=1e-12)
    got = {k: round(v.grad.item(), 2) for k, v in vs.items()}
    assert got == NEURON_GRADS
    # and to full precision, from the local gradient (1 - f) f = 0.19661193324148185
    ddot = 0.19661193324148185
    assert vs["x0"].grad.item() == pytest.approx(2.0 * ddot, abs=1e-12)
    assert vs["w2"].grad.item() == pytest.approx(ddot, abs=1e-12)


def _staged_by_hand(x, y):
    """The staged forward and flat backward of the backprop notes, in plain NumPy."""
    sigy = 1.0 / (1 + np.exp(-y))                  # (1)
    num = x + sigy                                 # (2)
    sigx = 1.0 / (1 + np.exp(-x))                  # (3)
    xpy = x + y                                    # (4)
    xpysqr = xpy ** 2                              # (5)
    den = sigx + xpysqr                            # (6)
    invden = 1.0 / den                             # (7)
    f = num * invden
    # backward, each line mirroring a forward stage in reverse
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den ** 2)) * dinvden           # (7)
    dsigx = 1 * dden                               # (6)
    dxpysqr = 1 * dden
    dxpy = (2 * xpy) * dxpysqr                     # (5)
    dx = 1 * dxpy                                  # (4)
    dy = 1 * dxpy
    dx += ((1 - sigx) * sigx) * dsigx              # (3)
    dx += 1 * dnum                                 # (2)
    dsigy = 1 * dnum
    dy += ((1 - sigy) * sigy) * dsigy              # (1)
    return f, dx, dy


def test_staged_computation_matches_hand_written_backward():
    f_want, dx_want, dy_want = _staged_by_hand(3.0, -4.0)
    x, y = var(3.0), var(-4.0)
    f = (x + cr.sigmoid(y)) / (cr.sigmoid(x) + (x + y) ** 2)
    f.backward()
    assert f.item() == pytest.approx(f_want, rel=1e-12)
    assert x.grad.item() == pytest.approx(dx_want, rel=1e-12)
    assert y.grad.item() == pytest.approx(dy_want, rel=1e-12)
    # the numbers themselves, so the hand-written code cannot drift unnoticed
    assert (round(f_want, 6), round(dx_want, 6), round(dy_want, 6)) == \
        (1.545645, 2.05957, 1.592233)


def test_squared_norm_of_matrix_vector_product():
    W = var([[0.1, 0.5], [-0.3, 0.8]])
    x = var([0.2, 0.4])
    q = W @ x                       # [0.22, 0.26]
    f = (q * q).sum()               # 0.116
    f.backward()
    assert f.item() == pytest.approx(0.116, abs=1e-12)
    qv = q.numpy()
    np.testing.assert_allclose(W.grad.numpy(), 2 * np.outer(qv, x.numpy()), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), 2 * W.numpy().T @ qv, rtol=1e-12)
    np.testing.assert_allclose(W.grad.numpy(), [[0.088, 0.176], [0.104, 0.208]], atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), [-0.112, 0.636], atol=1e-12)


def test_matmul_backward_with_given_upstream():
    rng = np.random.default_rng(0)
    X, W, G = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    x, w = var(X), var(W)
    (x @ w).backward(G)
    np.testing.assert_allclose(x.grad.numpy(), G @ W.T, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), X.T @ G, rtol=1e-12)


def test_relu():
    x = var([1.0, -2.0, 3.0, -1.0])
    y = cr.relu(x)
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0, 3.0, 0.0])
    y.backward(np.array([5.0, 6.0, 7.0, 8.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 0.0, 7.0, 0.0])


# the four gate patterns of the notes, each with an upstream gradient of 2
GATES = [
    # name, f(x, y), x, y, (dx, dy)
    ("add distributes", lambda x, y: x + y, 4.0, -2.0, (2.0, 2.0)),
    ("max routes to the larger", cr.maximum, 4.0, 2.0, (2.0, 0.0)),
    ("max routes (y wins)", cr.maximum, -1.0, 2.0, (0.0, 2.0)),
    ("max tie splits evenly", cr.maximum, 3.0, 3.0, (1.0, 1.0)),
    ("mul switches", lambda x, y: x * y, 3.0, -4.0, (-8.0, 6.0)),
    # d/dx (x y + 3 x + x) = y + 4 = 9: the three uses of x add up; times 2 upstream
    ("fan-out adds", lambda x, y: x * y + x * 3.0 + x, 2.0, 5.0, (18.0, 4.0)),
]


@pytest.mark.parametrize("name, f, x0, y0, want", GATES, ids=[g[0] for g in GATES])
def test_gate_patterns(name, f, x0, y0, want):
    x, y = var(x0), var(y0)
    f(x, y).backward(np.array(2.0))
    assert (x.grad.item(), y.grad.item()) == want


def test_max_reduction_routes_and_splits_ties():
    x = var([[1.0, 4.0, 4.0], [2.0, 0.0, -1.0]])
    x.max(axis=1).backward(np.array([2.0, 3.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 1.0, 1.0], [3.0, 0.0, 0.0]])


def test_gradient_descent_minimises_a_parabola():
    x = var(0.0)
    for _ in range(100):
        loss = (x - 3.0) ** 2
        loss.backward()
        x.data = x.data - 0.1 * x.grad.data   # an optimizer step, outside recording
        x.grad = None
    assert abs(x.item() - 3.0) < 1e-4
