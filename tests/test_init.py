"""cr.nn.init against PyTorch's formulas (fans, gains, bounds, moments) and cr.nn.utils
gradient clipping against torch.nn.utils, exactly."""
import math

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
init = cr.nn.init

SHAPES = [(64, 32), (128, 3, 5, 5), (40, 20, 3), (16, 8, 2, 3, 3)]


def torch_fans(shape):
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


# (function, kwargs, the distribution PyTorch's formula gives: ("uniform", bound) or
#  ("normal", std), from the fans and torch's own calculate_gain)
def expected(name, kwargs, shape):
    fan_in, fan_out = torch_fans(shape)
    if name.startswith("xavier"):
        std = kwargs.get("gain", 1.0) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        fan = fan_in if kwargs.get("mode", "fan_in") == "fan_in" else fan_out
        gain = torch.nn.init.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"),
                                            kwargs.get("a", 0.0))
        std = gain / math.sqrt(fan)
    return ("uniform", math.sqrt(3.0) * std) if name.endswith("uniform_") else ("normal", std)


CASES = [
    ("kaiming_uniform_", {}),
    ("kaiming_uniform_", {"a": math.sqrt(5)}),  # what nn.Linear and nn.Conv2d use
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {}),
    ("kaiming_normal_", {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal_", {"nonlinearity": "tanh"}),
    ("xavier_uniform_", {}),
    ("xavier_uniform_", {"gain": 5.0 / 3}),
    ("xavier_normal_", {}),
    ("xavier_normal_", {"gain": math.sqrt(2.0)}),
]


def check_distribution(values, kind, scale):
    """Moments and the Kolmogorov distance against U(-scale, scale) or N(0, scale²)."""
    x = np.sort(values.ravel().astype(np.float64))
    n = x.size
    if kind == "uniform":
        assert np.abs(x).max() <= scale * (1 + 1e-6)
        assert np.abs(x).max() > scale * (1 - 20.0 / n)
        cdf = (x + scale) / (2 * scale)
        sigma = scale / math.sqrt(3.0)
    else:
        cdf = 0.5 * (1 + np.vectorize(math.erf)(x / (scale * math.sqrt(2.0))))
        sigma = scale
    assert abs(x.mean()) < 5 * sigma / math.sqrt(n)
    assert abs(x.std() / sigma - 1) < 5 / math.sqrt(2 * n)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n)  # the 0.1 % critical value


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, kwargs", CASES)
def test_fan_based_inits_follow_pytorchs_formulas(name, kwargs, shape):
    cr.manual_seed(7)
    w = cr.Variable(np.full(shape, np.nan, dtype=np.float32))
    before = w.data
    assert getattr(init, name)(w, **kwargs) is w
    assert w.data is before and w.dtype == np.float32  # in place, dtype kept
    kind, scale = expected(name, kwargs, shape)
    check_distribution(w.data, kind, scale)
    # PyTorch's own draw passes the same checks (the formulas are the same)
    t = torch.empty(shape)
    getattr(torch.nn.init, name)(t, **kwargs)
    check_distribution(t.numpy(), kind, scale)


@pytest.mark.parametrize("name, args, kind, loc, scale", [
    ("uniform_", (-0.5, 1.5), "uniform", 0.5, 1.0),
    ("normal_", (0.25, 2.0), "normal", 0.25, 2.0),
])
def test_uniform_and_normal(name, args, kind, loc, scale):
    cr.manual_seed(3)
    w = cr.Variable(np.zeros((100, 50)))
    getattr(init, name)(w, *args)
    check_distribution(w.data - loc, kind, scale)


def test_constant_fills():
    w = cr.Variable(np.full((2, 3), 7.0, np.float32))
    assert np.array_equal(init.zeros_(w).data, np.zeros((2, 3))) and w.dtype == np.float32
    assert np.array_equal(init.ones_(w).data, np.ones((2, 3)))
    assert np.array_equal(init.constant_(w, -2.5).data, np.full((2, 3), -2.5))


def test_seeded_by_manual_seed_or_a_given_generator():
    def draw(**kwargs):
        return init.kaiming_uniform_(cr.Variable(np.zeros((5, 4))), **kwargs).data.copy()

    cr.manual_seed(11)
    first = draw()
    cr.manual_seed(11)
    np.testing.assert_array_equal(draw(), first)
    assert not np.array_equal(draw(), first)
    np.testing.assert_array_equal(draw(generator=np.random.default_rng(5)),
                                  draw(generator=np.random.default_rng(5)))


def test_fans_and_gains_match_torch():
    for shape in SHAPES + [(3, 0), (7, 2, 1)]:
        assert init._fans(shape, "t") == torch_fans(shape)
    for name in ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.3) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.3))


def test_init_errors_and_empty_tensors():
    with pytest.raises(cr.ChainruleError, match="2 or more dimensions"):
        init.xavier_uniform_(cr.Variable(np.zeros(5)))
    with pytest.raises(cr.ChainruleError, match="fan_in' or 'fan_out"):
        init.kaiming_normal_(cr.Variable(np.zeros((2, 2))), mode="fan")
    with pytest.raises(cr.ChainruleError, match="unsupported nonlinearity"):
        init.kaiming_normal_(cr.Variable(np.zeros((2, 2))), nonlinearity="swish")
    with pytest.raises(cr.ChainruleError, match="works on Variables"):
        init.zeros_(np.zeros(3))
    with pytest.raises(cr.ChainruleError, match="symbolic"):
        init.normal_(cr.placeholder((None, 3)))
    empty = cr.Variable(np.zeros((0, 4)))
    for fn in (init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
               init.xavier_normal_, init.normal_, init.zeros_):
        assert fn(empty).data.shape == (0, 4)


def test_init_does_not_record_a_graph():
    w = cr.Variable(np.zeros((3, 2)))
    init.xavier_normal_(w)
    assert w.is_leaf and w.grad is None


# -- gradient clipping ---------------------------------------------------------------------

def params_with_grads(dtype=np.float64, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (), (2, 2, 2)]
    grads = [scale * rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = []
    for g in grads:
        p = cr.Variable(np.zeros(g.shape, dtype))
        p.grad = cr.tensor(g.copy())
        ours.append(p)
    theirs = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
        t.grad = torch.tensor(g.copy())
        theirs.append(t)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = params_with_grads()
    no_grad = cr.Variable(np.ones(2))  # skipped, as in PyTorch
    total = cr.nn.utils.clip_grad_norm_([*ours, no_grad], max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, cr.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(expected.item(), rel=1e-13)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-13, atol=1e-15)
    assert no_grad.grad is None
    if max_norm < 1:
        joint = np.concatenate([p.grad.data.ravel() for p in ours])
        assert np.linalg.norm(joint, norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_float32_single_tensor_and_edge_cases():
    ours, theirs = params_with_grads(np.float32, seed=1)
    total = cr.nn.utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.dtype == np.float32 and total.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, t in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-7)
    single = ours[0]
    assert cr.nn.utils.clip_grad_norm_(single, 10.0).item() == pytest.approx(
        np.linalg.norm(single.grad.data), rel=1e-6)
    assert cr.nn.utils.clip_grad_norm_([cr.Variable(np.ones(2))], 1.0).item() == 0.0
    bad = cr.Variable(np.zeros(2))
    bad.grad = cr.tensor(np.array([np.nan, 1.0]))
    with pytest.raises(cr.ChainruleError, match="total norm"):
        cr.nn.utils.clip_grad_norm_([bad], 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_after_backward_then_step():
    w = cr.Variable(np.array([3.0, 4.0]))
    cr.sum(w * w).backward()  # grad (6, 8), norm 10
    assert cr.nn.utils.clip_grad_norm_(w, 5.0).item() == pytest.approx(10.0)
    cr.optim.SGD([w], lr=1.0).step()
    np.testing.assert_allclose(w.data, np.array([3.0, 4.0]) * (1 - 2 * 5 / (10 + 1e-6)),
                               rtol=0, atol=1e-15)


def test_clip_grad_value_matches_torch():
    ours, theirs = params_with_grads(seed=2)
    cr.nn.utils.clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())
