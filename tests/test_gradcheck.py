"""cr.gradcheck and cr.numerical_grad against derivatives known in closed form."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

X = np.array([[0.5, -1.0, 2.0], [0.25, 1.5, -0.75]])

# name, function, inputs: outputs of several shapes, each differentiable
CORRECT = [
    ("scalar output", lambda x: (x * x).sum(), [X]),
    ("0-d input and output", lambda x: cr.tanh(x) * x, [np.array(0.3)]),
    ("same-shape output", lambda x: cr.sigmoid(x) * x, [X]),
    ("reduced output", lambda x: cr.softmax(x, axis=0), [X]),
    ("larger output (outer product)", lambda x, y: cr.reshape(x, (6, 1)) * y, [X, [1.0, -2.0]]),
    ("matrix output of two inputs", lambda a, b: a @ b, [X, X.T.copy()]),
    ("broadcast inputs", lambda a, b: cr.exp(a) / (1.0 + b * b), [X, [0.5, 1.0, -2.0]]),
]


@pytest.mark.parametrize("name, fn, inputs", CORRECT, ids=[c[0] for c in CORRECT])
def test_gradcheck_passes_correct_functions(name, fn, inputs):
    assert cr.gradcheck(fn, inputs) is True


def test_gradcheck_accepts_tensors_and_leaves_them_untouched():
    x = cr.Variable(np.array([1.0, 2.0], np.float32))
    assert cr.gradcheck(lambda t: t ** 3, [x])
    assert x.grad is None and x.dtype == np.float32


def test_gradcheck_skips_inputs_that_do_not_require_grad():
    x = cr.Variable(X)
    c = cr.tensor(np.ones(3))                          # a constant input
    assert cr.gradcheck(lambda a, b: a * b, [x, c])


def test_gradcheck_rejects_a_wrong_gradient():
    wrong = cr.ops.Primitive("wrong_square", np.square,
                             lambda F, g, out, x: (g * x,),   # should be 2 x g
                             "{0} ** 2")
    with pytest.raises(cr.GradcheckError) as e:
        cr.gradcheck(lambda t: cr.ops.apply(wrong, (t,)), [X])
    msg = str(e.value)
    assert msg.startswith("gradcheck: input 0 of shape (2, 3): gradients differ at element (")
    analytic = float(msg.split("analytic ")[1].split(",")[0])
    numerical = float(msg.split("numerical ")[1].split(" ")[0])
    assert numerical == pytest.approx(2 * analytic, rel=1e-4)   # 2 x g against x g


def test_gradcheck_with_a_transposed_input():
    assert cr.gradcheck(lambda a, b: a @ b, [X, X.T])
    g, = cr.numerical_grad(lambda b: b * 2.0, [X.T])
    np.testing.assert_allclose(g, np.full((3, 2), 2.0), rtol=1e-7)


def test_gradcheck_needs_a_tensor_output():
    with pytest.raises(cr.GradcheckError, match="Tensor"):
        cr.gradcheck(lambda x: 1.0, [X])


# name, function, inputs, known derivative of sum(fn(inputs)) per input
KNOWN = [
    ("square", lambda x: x ** 2, [[1.0, 2.0, -3.0]], [[2.0, 4.0, -6.0]]),
    ("exp", cr.exp, [[0.0, 1.0]], [[1.0, np.e]]),
    ("log", cr.log, [[0.5, 4.0]], [[2.0, 0.25]]),
    ("sin-free product", lambda x, y: x * y, [[2.0], [5.0]], [[5.0], [2.0]]),
    ("tanh at 0", cr.tanh, [[0.0]], [[1.0]]),
    ("sigmoid at 0", cr.sigmoid, [[0.0]], [[0.25]]),
    ("mean", lambda x: x.mean(), [[1.0, 2.0, 3.0, 4.0]], [[0.25] * 4]),
    ("0-d cube", lambda x: x ** 3, [2.0], [12.0]),
]


@pytest.mark.parametrize("name, fn, inputs, want", KNOWN, ids=[k[0] for k in KNOWN])
def test_numerical_grad_values(name, fn, inputs, want):
    got = cr.numerical_grad(fn, inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-8)


def test_numerical_grad_with_grad_output():
    g, = cr.numerical_grad(lambda x: x * x, [[1.0, 2.0]], grad_output=cr.tensor([3.0, -1.0]))
    np.testing.assert_allclose(g, [6.0, -4.0], rtol=1e-7)


def test_numerical_grad_gives_zeros_for_integer_inputs():
    x = cr.tensor(np.array([1, 2]))
    y = cr.Variable([0.5, 1.0])
    gx, gy = cr.numerical_grad(lambda a, b: a * b, [x, y])
    np.testing.assert_array_equal(gx, [0.0, 0.0])
    np.testing.assert_allclose(gy, [1.0, 2.0], rtol=1e-7)
