"""Tensor creation as PyTorch: shapes as ints or a tuple, dtypes, requires_grad, the seeded
generator, and the ``*_like`` functions on symbolic tensors (free dims stay free)."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

FILLED = [("zeros", np.zeros), ("ones", np.ones)]


@pytest.mark.parametrize("name, ref", FILLED, ids=[f[0] for f in FILLED])
@pytest.mark.parametrize("size", [(), (3,), (2, 3), (0, 4)])
def test_zeros_ones_shapes_and_default_dtype(name, ref, size):
    fn = getattr(cr, name)
    for t in (fn(*size), fn(size)):
        assert t.shape == size
        assert t.dtype == cr.default_dtype() == np.float32
        np.testing.assert_array_equal(t.numpy(), ref(size))
        assert not t.requires_grad and t.is_leaf
    assert getattr(torch, name)(size).shape == torch.Size(size)


def test_dtype_and_requires_grad():
    w = cr.zeros(2, 3, dtype=np.float64, requires_grad=True)
    assert w.dtype == np.float64 and w.requires_grad and w.is_leaf
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 2.0))
    with pytest.raises(cr.ChainruleError, match="floating"):
        cr.zeros(2, dtype=np.int64, requires_grad=True)
    with pytest.raises(cr.ChainruleError, match="negative"):
        cr.ones(-1)
    with pytest.raises(TypeError, match="shape"):
        cr.zeros("a")


def test_default_dtype_is_followed():
    cr.set_default_dtype(np.float64)
    try:
        assert cr.ones(2).dtype == np.float64
        assert cr.randn(2).dtype == np.float64
        assert cr.full((2,), 1.5).dtype == np.float64
    finally:
        cr.set_default_dtype(np.float32)


@pytest.mark.parametrize("value, dtype", [(1.5, np.float32), (7, np.int64), (True, np.bool_)])
def test_full_dtype_follows_the_value_as_torch(value, dtype):
    t = cr.full((2, 2), value)
    assert t.dtype == dtype
    assert str(torch.full((2, 2), value).dtype) == f"torch.{np.dtype(dtype).name}"
    np.testing.assert_array_equal(t.numpy(), np.full((2, 2), value))
    assert cr.full(3, 2.0, dtype=np.float64).dtype == np.float64


ARANGES = [(5,), (2, 7), (0, 1, 0.1), (1, -2, -0.5), (0.0, 3), (3, 3), (0, 10, 3)]


@pytest.mark.parametrize("args", ARANGES, ids=[str(a) for a in ARANGES])
def test_arange_matches_torch(args):
    got = cr.arange(*args)
    want = torch.arange(*args)
    assert got.shape == tuple(want.shape)
    assert got.dtype == (np.int64 if want.dtype == torch.int64 else np.float32)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_arange_errors_and_dtype():
    with pytest.raises(cr.ChainruleError, match="step"):
        cr.arange(0, 3, 0)
    assert cr.arange(3, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("args", [(0, 1, 5), (-2, 2, 1), (1, 0, 4), (0, 1, 0)])
def test_linspace_matches_torch(args):
    got = cr.linspace(*args)
    want = torch.linspace(*args)
    assert got.dtype == np.float32 and got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(cr.linspace(args[0], args[1], num=args[2]).numpy(),
                                  got.numpy())
    with pytest.raises(TypeError, match="steps"):
        cr.linspace(0, 1)


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,)])
def test_eye_matches_torch(args):
    np.testing.assert_array_equal(cr.eye(*args).numpy(), torch.eye(*args).numpy())
    assert cr.eye(*args).dtype == np.float32


@pytest.mark.parametrize("name", ["rand", "randn"])
def test_random_follows_manual_seed(name):
    fn = getattr(cr, name)
    cr.manual_seed(3)
    a = fn(2, 3)
    b = fn((2, 3))
    cr.manual_seed(3)
    a2 = fn(2, 3)
    assert a.shape == (2, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a.numpy(), a2.numpy())
    assert not np.array_equal(a.numpy(), b.numpy())   # the generator moves on
    x = fn(2000, dtype=np.float64, requires_grad=True)
    assert x.dtype == np.float64 and x.requires_grad
    if name == "rand":
        assert 0 <= x.numpy().min() and x.numpy().max() < 1
        assert abs(x.numpy().mean() - 0.5) < 0.05
    else:
        assert abs(x.numpy().mean()) < 0.1 and abs(x.numpy().std() - 1) < 0.1
    assert fn(3, dtype=np.float16).dtype == np.float16
    with pytest.raises(cr.ChainruleError, match="floating"):
        fn(3, dtype=np.int64)


@pytest.mark.parametrize("name, value", [("zeros_like", 0), ("ones_like", 1)])
def test_like_eager(name, value):
    fn = getattr(cr, name)
    x = cr.tensor(np.arange(6.0).reshape(2, 3))
    y = fn(x)
    assert y.shape == (2, 3) and y.dtype == np.float64 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), np.full((2, 3), value))
    assert fn(x, dtype=np.int64).dtype == np.int64
    assert fn(x, requires_grad=True).requires_grad
    assert fn(np.ones((2, 1), np.float32)).dtype == np.float32


@pytest.mark.parametrize("name, value", [("zeros_like", 0), ("ones_like", 1)])
def test_like_symbolic_keeps_free_dims_and_compiles(name, value):
    fn = getattr(cr, name)
    x = cr.placeholder((None, 3), dtype=np.float64, name="x")
    y = fn(x) + x
    assert y.shape == (None, 3)
    f = cr.function([x], y)
    for n in (1, 4, 0):
        a = np.arange(3.0 * n).reshape(n, 3)
        np.testing.assert_array_equal(f(a), a + value)
        np.testing.assert_array_equal(y.eval({x: a}), a + value)
    assert "np.full(x.shape" in f.source
    with pytest.raises(cr.GraphError, match="symbolic"):
        fn(x, requires_grad=True)


def test_created_tensors_take_part_in_graphs():
    cr.manual_seed(0)
    w = cr.randn(3, 2, dtype=np.float64, requires_grad=True)
    b = cr.zeros(2, dtype=np.float64, requires_grad=True)
    x = cr.ones(4, 3, dtype=np.float64)
    loss = cr.tanh(x @ w + b).sum()
    loss.backward()
    assert w.grad.shape == (3, 2) and b.grad.shape == (2,)
    assert cr.gradcheck(lambda w, b: cr.tanh(x @ w + b), [w, b])
