"""NumPy ufuncs on tensors run chainrule's op (a tensor in the graph, with its gradient), or
fail with an error naming what to call; an array on the left of an operator gives a tensor."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

A = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])

UNARY = [
    (np.exp, cr.exp), (np.log, cr.log), (np.sqrt, cr.sqrt), (np.tanh, cr.tanh),
    (np.abs, cr.abs), (np.absolute, cr.abs), (np.sin, cr.sin), (np.cos, cr.cos),
    (np.log1p, cr.log1p), (np.expm1, cr.expm1), (np.negative, lambda t: -t),
    (np.positive, lambda t: t), (np.square, lambda t: t * t),
]


@pytest.mark.parametrize("ufunc, fn", UNARY, ids=[u[0].__name__ for u in UNARY])
def test_unary_ufuncs_dispatch_with_gradients(ufunc, fn):
    data = np.abs(A) if ufunc in (np.log, np.sqrt) else A
    x = cr.tensor(data, requires_grad=True)
    y = ufunc(x)
    assert isinstance(y, cr.Tensor)
    np.testing.assert_allclose(y.numpy(), ufunc(data), rtol=1e-12)
    (gx,) = cr.grad(y.sum(), [x])
    x2 = cr.tensor(data, requires_grad=True)
    (want,) = cr.grad(fn(x2).sum(), [x2])
    np.testing.assert_allclose(gx.numpy(), want.numpy(), rtol=1e-12)


BINARY = [np.add, np.subtract, np.multiply, np.divide, np.true_divide, np.power, np.maximum,
          np.minimum]


@pytest.mark.parametrize("ufunc", BINARY, ids=[u.__name__ for u in BINARY])
@pytest.mark.parametrize("side", ["tensor first", "array first", "both tensors"])
def test_binary_ufuncs_dispatch_on_either_side(ufunc, side):
    a, b = np.abs(A) + 0.5, np.array([1.5, 0.75, 2.0])
    x = cr.tensor(a, requires_grad=True)
    y = cr.tensor(b, requires_grad=True)
    args = {"tensor first": (x, b), "array first": (a, y), "both tensors": (x, y)}[side]
    out = ufunc(*args)
    assert isinstance(out, cr.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.numpy(), ufunc(a, b), rtol=1e-12)
    # the gradient is the operator's (or function's) gradient
    wanted = [t for t in args if isinstance(t, cr.Tensor)]
    got = cr.grad(out.sum(), wanted)
    ops = {np.add: lambda p, q: p + q, np.subtract: lambda p, q: p - q,
           np.multiply: lambda p, q: p * q, np.divide: lambda p, q: p / q,
           np.true_divide: lambda p, q: p / q, np.power: lambda p, q: p ** q,
           np.maximum: cr.maximum, np.minimum: cr.minimum}
    again = [cr.tensor(t.numpy(), requires_grad=True) if isinstance(t, cr.Tensor) else t
             for t in args]
    want = cr.grad(ops[ufunc](*again).sum(), [t for t in again if isinstance(t, cr.Tensor)])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@", "<", ">=", "=="])
def test_ndarray_on_the_left_gives_a_tensor(op):
    a = np.abs(A) + 0.5
    x = cr.tensor(np.abs(A.T) + 0.5 if op == "@" else a, requires_grad=True)
    out = eval(f"a {op} x")
    assert isinstance(out, cr.Tensor)
    np.testing.assert_allclose(out.numpy(), eval(f"a {op} x.numpy()"))
    if op not in ("<", ">=", "=="):
        assert out.requires_grad
        (gx,) = cr.grad(out.sum(), [x])
        assert gx.shape == x.shape
    # NumPy scalars on the left too
    assert isinstance(np.float64(2.0) * x, cr.Tensor)


def test_ufuncs_on_symbolic_tensors_compile():
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    y = np.exp(x) + np.ones(3) * np.sin(x)
    assert y.shape == (None, 3)
    f = cr.function([x], y)
    np.testing.assert_allclose(f(A), np.exp(A) + np.sin(A), rtol=1e-12)


def test_reductions_through_numpy_functions():
    x = cr.tensor(A, requires_grad=True)
    for fn, ref in ((np.sum, np.sum), (np.mean, np.mean), (np.max, np.max), (np.min, np.min)):
        out = fn(x, axis=1)
        assert isinstance(out, cr.Tensor)
        np.testing.assert_allclose(out.numpy(), ref(A, axis=1))
    np.testing.assert_allclose(np.add.reduce(x).numpy(), np.add.reduce(A))
    np.testing.assert_allclose(np.maximum.reduce(x, axis=1).numpy(), A.max(axis=1))
    (g,) = cr.grad(np.sum(x), [x])
    np.testing.assert_array_equal(g.numpy(), np.ones_like(A))


@pytest.mark.parametrize("ufunc, hint", [
    (np.arctan, "compose it"), (np.reciprocal, "1 / t"), (np.log2, "cr.log(t) / np.log(2)"),
    (np.tan, "cr.sin(t) / cr.cos(t)"), (np.isfinite, "no gradient"), (np.floor, "no gradient"),
])
def test_ufuncs_without_an_op_say_what_to_call(ufunc, hint):
    x = cr.tensor(A)
    with pytest.raises(cr.ChainruleError, match=f"np.{ufunc.__name__}") as e:
        ufunc(x)
    assert hint in str(e.value)


def test_out_and_unsupported_methods_are_refused():
    x = cr.tensor(A)
    with pytest.raises(cr.ChainruleError, match="out="):
        np.add(x, 1, out=np.empty_like(A))
    buf = A.copy()
    with pytest.raises(cr.ChainruleError, match="in-place"):
        buf += x
    with pytest.raises(cr.ChainruleError, match="np.add.accumulate"):
        np.add.accumulate(x)
    with pytest.raises(cr.ChainruleError, match="np.multiply.reduce"):
        np.multiply.reduce(x)
    with pytest.raises(cr.ChainruleError, match="does not take"):
        np.exp(x, dtype=np.float32)


def test_asarray_and_array_function_paths_still_read_the_value():
    x = cr.tensor(A, requires_grad=True)
    np.testing.assert_array_equal(np.asarray(x), A)
    np.testing.assert_allclose(x, A)            # NumPy's testing helpers read values
    assert np.linalg.norm(x) == pytest.approx(np.linalg.norm(A))


def test_numpy_functions_that_call_the_tensor_method_keep_the_gradient():
    # np.clip / np.reshape / np.std / np.var / np.transpose / np.squeeze / np.swapaxes call the
    # method of the same name, with NumPy's defaults (np.std: ddof=0)
    x = cr.tensor(A, requires_grad=True)
    cases = [(lambda t: np.clip(t, -0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0)),
             (lambda t: np.reshape(t, (3, 2)), lambda a: np.reshape(a, (3, 2))),
             (np.std, np.std), (lambda t: np.var(t, axis=0), lambda a: np.var(a, axis=0)),
             (np.transpose, np.transpose), (lambda t: np.swapaxes(t, 0, 1),
                                            lambda a: np.swapaxes(a, 0, 1))]
    for fn, ref in cases:
        out = fn(x)
        assert isinstance(out, cr.Tensor) and out.requires_grad
        np.testing.assert_allclose(out.numpy(), ref(A), rtol=1e-12)
    got = np.argmax(x, axis=1)
    assert isinstance(got, cr.Tensor) and got.tolist() == np.argmax(A, axis=1).tolist()
    with pytest.raises(NotImplementedError, match="order"):
        np.reshape(x, (3, 2), order="F")
