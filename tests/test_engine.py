"""The engine: gradient accumulation, graph lifetime, higher order, grad modes, user gates,
deep graphs, dtype rules and getting values out."""
from __future__ import annotations


import numpy as np
import pytest

import chainrule as cr
from gates import Multiply

F64 = np.float64


def var(v):
    return cr.Variable(np.asarray(v, dtype=F64))


# -- accumulation and graph lifetime -----------------------------------------------------------
def test_grad_accumulates_across_backward_calls():
    x = var([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0 + 2.0, 3.0 + 4.0])
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_second_backward_without_retain_graph_raises():
    x = var(2.0)
    y = x * x * x
    y.backward()
    assert x.grad.item() == 12.0
    with pytest.raises(cr.GraphError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward_and_doubles_grads():
    x = var(2.0)
    y = x * x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 24.0


def test_leaf_grad_is_private_even_when_two_leaves_share_an_upstream_gradient():
    # add passes the same gradient to both inputs: editing one leaf's grad must not touch the other
    x, y = var([1.0, 2.0]), var([3.0, 4.0])
    (x + y).backward(np.array([1.0, 1.0]))
    x.grad.data[...] = 7.0
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 1.0])


def test_third_derivative_of_x4():
    x = var(1.5)
    (d1,) = cr.grad(x ** 4, [x], create_graph=True)
    (d2,) = cr.grad(d1, [x], create_graph=True)
    (d3,) = cr.grad(d2, [x])
    assert d1.item() == pytest.approx(4 * 1.5 ** 3, rel=1e-12)
    assert d2.item() == pytest.approx(12 * 1.5 ** 2, rel=1e-12)
    assert d3.item() == pytest.approx(24 * 1.5, rel=1e-12)


def test_backward_with_create_graph_gives_differentiable_grad():
    x = var(0.3)
    y = cr.tanh(x)
    y.backward(create_graph=True)
    (d2,) = cr.grad(x.grad, [x])
    t = np.tanh(0.3)
    assert x.grad.item() == pytest.approx(1 - t * t, rel=1e-12)
    assert d2.item() == pytest.approx(-2 * t * (1 - t * t), rel=1e-12)


def test_grad_does_not_touch_dot_grad():
    x = var([1.0, 2.0])
    (g,) = cr.grad((x * x).sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_grad_with_several_outputs_sums_their_contributions():
    x = var(2.0)
    gx = cr.grad([x * x, x * 3.0], [x])[0]
    assert gx.item() == 7.0


def test_grad_allow_unused():
    x, y = var(1.0), var(2.0)
    z = x * 5.0
    with pytest.raises(cr.GraphError, match="does not reach"):
        cr.grad(z, [x, y], retain_graph=True)
    gx, gy = cr.grad(z, [x, y], allow_unused=True)
    assert gx.item() == 5.0 and gy is None


def test_grad_accepts_a_numpy_scalar_upstream_gradient():
    x = var(2.0)
    (g,) = cr.grad(x * x, [x], grad_outputs=np.float64(3.0))
    assert g.item() == 12.0


def test_backward_on_non_scalar_without_grad_raises():
    x = var([1.0, 2.0])
    with pytest.raises(cr.GraphError, match="gradient argument"):
        (x * 2.0).backward()
    # a one-element tensor of any rank has an implicit gradient of 1
    y = var([[3.0]])
    (y * 2.0).backward()
    assert y.grad.numpy().tolist() == [[2.0]]


def test_backward_with_wrong_gradient_shape_raises():
    x = var([1.0, 2.0])
    with pytest.raises(cr.ShapeError):
        (x * 2.0).backward(np.ones(3))


# -- grad modes --------------------------------------------------------------------------------
def test_no_grad_records_nothing_and_restores():
    w = var(2.0)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = w * 3.0
        with cr.enable_grad():
            z = w * 3.0
    assert cr.is_grad_enabled()
    assert y.requires_grad is False and y.is_leaf and y.item() == 6.0
    assert z.requires_grad is True
    with pytest.raises(cr.GraphError):
        y.backward()


def test_detach_stops_the_gradient():
    x = var(3.0)
    y = x * x
    z = y.detach() * x + y      # d/dx = y (as a constant) + 2x = 9 + 6
    z.backward()
    assert x.grad.item() == 15.0
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.item() == 9.0


# -- user-defined gates ------------------------------------------------------------------------
class Square(cr.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dz):
        return 2 * self.x * dz          # one input: a single array


class WrongSquare(Square):
    def backward(self, dz):
        return 3 * self.x * dz          # the wrong local gradient


def test_user_multiply_gate():
    a, b = var(3.0), var(-4.0)
    z = Multiply()(a, b)
    z.backward()
    assert z.item() == -12.0
    assert (a.grad.item(), b.grad.item()) == (-4.0, 3.0)
    assert cr.gradcheck(lambda x, y: Multiply()(x, y), [[0.5, -1.0], [2.0, 0.3]])


def test_one_gate_instance_applies_many_times():
    gate = Multiply()
    a, b, c = var(2.0), var(3.0), var(5.0)
    out = gate(gate(a, b), c)       # each call caches on its own copy
    out.backward()
    assert (a.grad.item(), b.grad.item(), c.grad.item()) == (15.0, 10.0, 6.0)


def test_one_input_gate_returning_a_single_array():
    x = var([1.0, -2.0])
    Square()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0])


def test_user_gate_with_broadcasting_inputs_gets_reduced_grads():
    x, b = var(np.arange(6.0).reshape(2, 3)), var([1.0, 2.0, 3.0])
    Multiply()(x, b).backward(np.ones((2, 3)))
    assert b.grad.shape == (3,)
    np.testing.assert_array_equal(b.grad.numpy(), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 2.0, 3.0]] * 2)
    assert cr.gradcheck(lambda x, b: Multiply()(x, b), [np.ones((2, 3)), [1.0, 2.0, 3.0]])


def test_gradcheck_catches_a_wrong_backward_naming_input_element_and_values():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    with pytest.raises(cr.GradcheckError) as e:
        cr.gradcheck(lambda t: WrongSquare()(t), [x])
    msg = str(e.value)
    assert "input 0" in msg and "(2, 2)" in msg
    # the worst element is the largest |x| (2.0 at (1, 0)): analytic 3x w, numerical 2x w
    assert "element (1, 0)" in msg
    assert "analytic" in msg and "numerical" in msg
    nums = [float(s) for s in
            msg.split("analytic ")[1].split(" (")[0].replace("numerical ", "").split(", ")]
    assert nums[0] == pytest.approx(1.5 * nums[1], rel=1e-4) and abs(nums[1]) > 1.0


# -- deep graphs: the iterative sort never recurses --------------------------------------------
@pytest.mark.slow
def test_million_node_chain():
    # no recursion anywhere on the way: a recursive walk dies at Python's ~1,000-frame limit
    # (how fast this runs is benchmarks/run.py's row 3, not a test's business)
    x = var(0.5)
    h = x
    for _ in range(1_000_000):
        h = h + 1.0
    h.backward()
    assert h.item() == 1_000_000.5
    assert x.grad.item() == 1.0


CHAINS = [
    # name, step, start value, expected d h_n / d x (n = 10,000)
    ("mul by one", lambda h: h * 1.0, 0.7, 1.0),
    ("tanh", cr.tanh, 0.5, None),
    ("reshape round trip", lambda h: cr.reshape(h, (1,)).sum(), 0.5, 1.0),
    ("getitem of stack", lambda h: cr.stack([h, h])[0], 0.5, 1.0),
    ("sub then neg", lambda h: -(h - 0.0), 0.5, 1.0),   # (-1)^n with n even
    ("maximum with a smaller constant", lambda h: cr.maximum(h, -1.0), 0.5, 1.0),
]


@pytest.mark.parametrize("name, step, x0, want", CHAINS, ids=[c[0] for c in CHAINS])
def test_ten_thousand_node_chains(name, step, x0, want):
    x = var(x0)
    h = x
    for _ in range(10_000):
        h = step(h)
    h.backward()
    if want is None:    # tanh chain: product of (1 - h_k^2), by recomputing the chain in NumPy
        v, want = x0, 1.0
        for _ in range(10_000):
            v = np.tanh(v)
            want *= 1 - v * v
        assert x.grad.item() == pytest.approx(want, rel=1e-9)
    else:
        assert x.grad.item() == want


def test_wide_graph_fan_out():
    x = var(1.0)
    total = x * 0.0
    for i in range(1000):
        total = total + x * float(i)
    total.backward()
    assert x.grad.item() == float(sum(range(1000)))


# -- dtypes ------------------------------------------------------------------------------------
DTYPES = [
    ("python float", 1.5, np.float32),
    ("python float list", [1.0, 2.5], np.float32),
    ("mixed int and float list", [1, 2.5], np.float32),
    ("python int", 3, np.int64),
    ("python int list", [1, 2], np.int64),
    ("python bool", True, np.bool_),
    ("numpy float64", np.array([1.0]), np.float64),
    ("numpy float16", np.array([1.0], np.float16), np.float16),
    ("numpy int32", np.array([1], np.int32), np.int32),
    ("numpy float64 scalar", np.float64(2.0), np.float64),
]


@pytest.mark.parametrize("name, data, want", DTYPES, ids=[d[0] for d in DTYPES])
def test_tensor_dtype_rules(name, data, want):
    assert cr.tensor(data).dtype == want


def test_default_dtype_float64(float64_default):
    assert cr.default_dtype() == np.float64
    assert cr.tensor(1.5).dtype == np.float64
    assert cr.tensor(3).dtype == np.int64           # ints do not follow the float default
    assert cr.Variable(2.0).dtype == np.float64
    assert cr.tensor(np.ones(2, np.float32)).dtype == np.float32


def test_default_dtype_is_float32_and_rejects_non_floats():
    assert cr.default_dtype() == np.float32
    with pytest.raises(TypeError):
        cr.set_default_dtype(np.int32)
    assert cr.default_dtype() == np.float32


def test_explicit_dtype_wins():
    assert cr.tensor([1, 2], dtype=np.float64).dtype == np.float64


SCALAR_OPS = [
    ("x * 2.0", lambda x: x * 2.0), ("2.0 * x", lambda x: 2.0 * x), ("x + 1", lambda x: x + 1),
    ("x / 3.0", lambda x: x / 3.0), ("1.0 - x", lambda x: 1.0 - x), ("x ** 2", lambda x: x ** 2),
    ("x ** 0.5", lambda x: x ** 0.5), ("maximum(x, 0.0)", lambda x: cr.maximum(x, 0.0)),
    ("where(x > 0, x, 0.0)", lambda x: cr.where(x > 0, x, 0.0)),
    ("clip(x, 0, 1)", lambda x: cr.clip(x, 0.0, 1.0)),
]


@pytest.mark.parametrize("name, f", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
def test_float32_stays_float32_with_python_scalars(name, f):
    x = cr.Variable(np.array([0.5, 2.0], np.float32))
    y = f(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_float32_leaf_gets_float32_grad_next_to_float64_array():
    x = cr.Variable(np.array([0.5, 2.0], np.float32))
    (x * np.array([1.0, 2.0])).sum().backward()      # NumPy promotes the product to float64
    assert x.grad.dtype == np.float32                 # PyTorch: a grad has its tensor's dtype


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(cr.ChainruleError, match="floating-point"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(cr.ChainruleError):
        cr.tensor(np.array([1], np.int32), requires_grad=True)
    # but a Variable made from an int is a trainable float
    assert cr.Variable(3).dtype == np.float32


def test_comparisons_carry_no_grad():
    x = var([1.0, 2.0, 3.0])
    m = x > 1.5
    assert m.requires_grad is False and m.dtype == np.bool_
    assert m.numpy().tolist() == [False, True, True]
    with pytest.raises(cr.GraphError):
        m.sum().backward()


# -- getting values out ------------------------------------------------------------------------
def test_values_out_of_a_leaf():
    x = cr.tensor([[1.0, 2.0]])
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().tolist() == [[1.0, 2.0]]
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (1, 2)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert cr.tensor(2.5).item() == 2.5 and isinstance(cr.tensor(2.5).item(), float)
    assert isinstance(cr.tensor(3).item(), int)
    assert (x.shape, x.ndim, x.size, x.dtype) == ((1, 2), 2, 2, np.float32)
    assert float(cr.tensor(2.5)) == 2.5


def test_values_out_of_a_computed_array():
    x = var([1.0, 2.0])
    y = x * 2.0
    assert isinstance(y.numpy(), np.ndarray) and y.numpy().tolist() == [2.0, 4.0]
    assert np.asarray(y).tolist() == [2.0, 4.0]


ZERO_D = [
    ("mul", lambda x: x * 3.0), ("sum", lambda x: (x * 1.0).sum()), ("exp", cr.exp),
    ("neg", lambda x: -x),
]


@pytest.mark.parametrize("name, f", ZERO_D, ids=[z[0] for z in ZERO_D])
def test_zero_d_results_are_ndarrays(name, f):
    y = f(var(2.0))
    assert isinstance(y.numpy(), np.ndarray) and y.numpy().shape == ()
    assert np.asarray(y).shape == ()


def test_item_of_zero_d_results():
    x = var(2.0)
    assert (x * 3.0).item() == 6.0
    assert (x * x).sum().item() == 4.0
    assert float(x * 3.0) == 6.0


# -- axes are normalised once, when an op is called ----------------------------------------
@pytest.mark.parametrize("shape, axes", [((1, 2, 3, 4), (0, -2, -1, 1)), ((3, 3, 3), (-1, 0, 1)),
                                         ((2, 3, 4), (-3, -1, -2))])
def test_transpose_with_negative_axes_gradient(shape, axes):
    a = np.random.default_rng(0).normal(size=shape)
    w = np.random.default_rng(1).normal(size=np.transpose(a, axes).shape)
    x = cr.Variable(a)
    (cr.transpose(x, axes) * w).sum().backward()
    positive = tuple(ax % len(shape) for ax in axes)
    np.testing.assert_array_equal(x.grad.numpy(), np.transpose(w, np.argsort(positive)))


@pytest.mark.parametrize("fn", [cr.sum, cr.mean, cr.max, cr.min, cr.softmax, cr.log_softmax])
@pytest.mark.parametrize("axis", [0, -1, (0,), (-1,)])
def test_an_axis_of_a_zero_d_tensor_is_accepted_by_every_reduction(fn, axis):
    x = cr.Variable(np.array(2.0))
    if fn in (cr.softmax, cr.log_softmax) and isinstance(axis, tuple):
        return
    out = fn(x, axis=axis)
    assert out.shape == ()
    out.backward()
    assert x.grad.shape == ()


@pytest.mark.parametrize("fn, axis", [(cr.sum, 2), (cr.mean, -3), (cr.max, (0, 0)),
                                      (lambda x, axis: cr.transpose(x, axis), (0, 2))])
def test_an_axis_out_of_range_names_the_op(fn, axis):
    x = cr.Variable(np.ones((2, 3)))
    with pytest.raises(cr.ShapeError, match=r"axis .* (out of range|repeats).*\n  built at "):
        fn(x, axis=axis)


# -- powers with a constant exponent at 0 --------------------------------------------------
@pytest.mark.parametrize("p", [0, 1, 2, 3, 0.0, 1.0])
def test_constant_powers_at_zero_first_and_second_order_as_torch(p):
    torch = pytest.importorskip("torch")
    a = np.array([-1.5, 0.0, 0.0, 2.0])
    x = cr.Variable(a)
    (g,) = cr.grad((cr.relu(x) ** p).sum(), [x], create_graph=True)
    h = cr.grad(g.sum(), [x], allow_unused=True)[0]
    t = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.relu(t) ** p).sum(), [t], create_graph=True)
    th = torch.autograd.grad(tg.sum(), [t], allow_unused=True)[0] if tg.requires_grad else None
    np.testing.assert_array_equal(g.numpy(), tg.detach().numpy())
    want = np.zeros_like(a) if th is None else th.numpy()
    np.testing.assert_array_equal(np.zeros_like(a) if h is None else h.numpy(), want)


# -- empty tensors -------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [cr.softmax, cr.log_softmax])
@pytest.mark.parametrize("shape, axis", [((3, 0), -1), ((3, 0), 0), ((0, 4), 0), ((0,), 0)])
def test_softmax_over_an_empty_axis_is_empty_as_in_torch(fn, shape, axis):
    x = cr.Variable(np.zeros(shape))
    out = fn(x, axis=axis)
    assert out.shape == shape
    out.backward(np.ones(shape))
    assert x.grad.shape == shape
