"""The PyTorch-habit ops beyond what the op table checks row by row: integer results and ops
with no gradient, kinks the table's domains avoid (clip's crossing bounds, the norm at zero),
PyTorch's defaults and argument names, free dims in compiled code, and the readable source."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

X = np.array([[0.5, -1.0, 2.0, 2.0], [1.5, 0.25, -0.75, 3.0], [-2.0, 0.0, 1.0, -2.0]])


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


# -- argmax / argmin / sign: no gradient ------------------------------------------------------
@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_argmin_as_numpy_and_torch(name, axis, keepdims):
    x = cr.Variable(X)
    got = getattr(cr, name)(x, axis, keepdims=keepdims)
    assert got.dtype == np.int64 and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), getattr(np, name)(X, axis=axis, keepdims=keepdims))
    if axis is not None:
        want = getattr(torch, name)(_t(X), dim=axis, keepdim=keepdims)
        np.testing.assert_array_equal(got.numpy(), want.numpy())   # ties: the first, both
        np.testing.assert_array_equal(getattr(x, name)(dim=axis, keepdim=keepdims).numpy(),
                                      got.numpy())
    # symbolic and compiled
    p = cr.placeholder((None, 4), dtype=np.float64, name="x")
    f = cr.function([p], getattr(cr, name)(p, axis, keepdims=keepdims))
    np.testing.assert_array_equal(f(X), got.numpy())


def test_argmax_errors():
    with pytest.raises(cr.ShapeError, match="one axis"):
        cr.argmax(cr.tensor(X), (0, 1))
    with pytest.raises(cr.ShapeError, match="out of range"):
        cr.argmax(cr.tensor(X), 2)
    with pytest.raises(cr.ShapeError, match="empty"):
        cr.argmax(cr.zeros(0))


def test_sign_has_no_gradient_and_the_graph_still_flows():
    x = cr.Variable(X)
    s = cr.sign(x)
    assert not s.requires_grad
    np.testing.assert_array_equal(s.numpy(), np.sign(X))
    np.testing.assert_array_equal(x.sign().numpy(), np.sign(X))
    (g,) = cr.grad((s * x).sum(), [x])
    tx = _t(X, True)
    (torch.sign(tx) * tx).sum().backward()
    np.testing.assert_array_equal(g.numpy(), tx.grad.numpy())


# -- clip with tensor bounds ------------------------------------------------------------------
CLAMP_CASES = [
    # x, lo, hi: ordinary, equal to the bounds, crossing bounds (lo > hi), lo == hi
    ([0.0, 1.0, 2.0, 3.0, 1.0, 0.5, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0, 2.0, 0.5, 1.0, 1.0],
     [2.0, 2.0, 2.0, 2.0, 1.0, 0.5, 1.0, 1.0]),
]


@pytest.mark.parametrize("x, lo, hi", CLAMP_CASES)
def test_clip_tensor_bounds_route_gradients_as_torch_clamp(x, lo, hi):
    xs = [cr.tensor(np.array(v), requires_grad=True) for v in (x, lo, hi)]
    out = cr.clip(*xs)
    w = np.arange(1.0, len(x) + 1)
    got = cr.grad(out, xs, grad_outputs=w)
    ts = [_t(v, True) for v in (x, lo, hi)]
    tout = torch.clamp(*ts)
    want = torch.autograd.grad(tout, ts, grad_outputs=_t(w))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    for g, tg in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), tg.numpy())


def test_clip_one_tensor_bound_arrays_and_names():
    x = cr.tensor(X, requires_grad=True)
    lo = cr.tensor(np.array([0.0, -0.5, 0.5, 1.0]), requires_grad=True)
    out = cr.clip(x, min=lo)
    tx, tlo = _t(X, True), _t(lo.numpy(), True)
    tout = torch.clamp(tx, min=tlo)
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    gx, glo = cr.grad(out.sum(), [x, lo])
    tout.sum().backward()
    np.testing.assert_array_equal(gx.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(glo.numpy(), tlo.grad.numpy())
    # an array bound is a constant input; the method takes tensors too
    np.testing.assert_array_equal(cr.clip(x, None, np.zeros(4)).numpy(), np.minimum(X, 0))
    np.testing.assert_array_equal(x.clip(lo, None).numpy(), out.numpy())
    # scalar bounds keep the one-input gate with literal bounds
    assert cr.clip(x, -1.0, 1.0).op.name == "clip"


def test_clip_tensor_bounds_compile_to_np_clip():
    x = cr.placeholder((None, 4), dtype=np.float64, name="x")
    lo = cr.Variable(np.full(4, -0.5), name="lo")
    hi = cr.Variable(np.full(4, 0.5), name="hi")
    out = cr.clip(x, lo, hi).sum()
    f = cr.function([x], [out] + cr.grad(out, [lo, hi]))
    assert "np.clip(x, lo, hi)" in f.source
    value, glo, ghi = f(X)
    assert value == pytest.approx(np.clip(X, -0.5, 0.5).sum())
    np.testing.assert_array_equal(glo, (X < -0.5).sum(axis=0))
    np.testing.assert_array_equal(ghi, (X > 0.5).sum(axis=0))


# -- norm, var, std, logsumexp ----------------------------------------------------------------
def test_norm_gradient_at_zero_is_zero_as_torch():
    z = cr.tensor(np.zeros((2, 3)), requires_grad=True)
    (g,) = cr.grad(cr.norm(z), [z])
    np.testing.assert_array_equal(g.numpy(), np.zeros((2, 3)))
    (g,) = cr.grad(cr.norm(z, axis=1).sum(), [z])
    tz = _t(np.zeros((2, 3)), True)
    torch.linalg.vector_norm(tz, dim=1).sum().backward()
    np.testing.assert_array_equal(g.numpy(), tz.grad.numpy())
    # a row of zeros next to one that is not
    m = cr.tensor(np.array([[0.0, 0.0], [3.0, 4.0]]), requires_grad=True)
    (g,) = cr.grad(cr.norm(m, dim=1, keepdim=True).sum(), [m])
    np.testing.assert_allclose(g.numpy(), [[0.0, 0.0], [0.6, 0.8]])


def test_norm_orders_and_names():
    x = cr.tensor(X)
    for ord in (1, 2, 3, np.inf, -np.inf, 0):
        want = torch.linalg.vector_norm(_t(X), ord=ord).item()
        assert cr.norm(x, ord).item() == pytest.approx(want)
        assert cr.norm(x, p=ord).item() == pytest.approx(want)
    assert x.norm().item() == pytest.approx(np.linalg.norm(X))
    assert cr.norm(x, "fro").item() == pytest.approx(np.linalg.norm(X))
    with pytest.raises(NotImplementedError, match="matrix norm"):
        cr.norm(x, "nuc")
    with pytest.raises(TypeError, match="not both"):
        cr.norm(x, 1, p=2)


def test_var_std_follow_torch_defaults_and_names():
    x = cr.tensor(X)
    assert cr.var(x).item() == pytest.approx(torch.var(_t(X)).item())      # unbiased
    assert cr.std(x).item() == pytest.approx(torch.std(_t(X)).item())
    assert cr.var(x, ddof=0).item() == pytest.approx(np.var(X))
    assert cr.var(x, correction=0).item() == pytest.approx(np.var(X))
    assert cr.var(x, unbiased=False).item() == pytest.approx(np.var(X))
    np.testing.assert_allclose(x.std(dim=1, keepdim=True).numpy(),
                               torch.std(_t(X), dim=1, keepdim=True).numpy())
    np.testing.assert_allclose(x.var(axis=(0, 1), ddof=2).numpy(), np.var(X, ddof=2))
    with pytest.raises(TypeError, match="one of"):
        cr.var(x, ddof=0, correction=1)


def test_var_on_free_dims_compiles():
    p = cr.placeholder((None, 4), dtype=np.float64, name="x")
    f = cr.function([p], cr.std(p, axis=0))
    for n in (2, 5):
        a = np.arange(4.0 * n).reshape(n, 4) ** 1.5
        np.testing.assert_allclose(f(a), np.std(a, axis=0, ddof=1))


def test_logsumexp_is_stable():
    big = cr.tensor(np.array([[1000.0, 1000.0], [-1000.0, -np.inf], [-np.inf, -np.inf]]))
    got = cr.logsumexp(big, 1).numpy()
    want = torch.logsumexp(_t(big.numpy()), 1).numpy()
    np.testing.assert_allclose(got, want)
    assert np.isneginf(got[2])
    x = cr.tensor(X, requires_grad=True)
    (g,) = cr.grad(cr.logsumexp(x, axis=1, keepdims=True).sum(), [x])
    np.testing.assert_allclose(g.numpy(), np.exp(X) / np.exp(X).sum(1, keepdims=True))


# -- gelu, leaky_relu -------------------------------------------------------------------------
def test_gelu_without_scipy_is_the_same(monkeypatch):
    x = cr.tensor(X, requires_grad=True)
    with_scipy = cr.gelu(x).numpy()
    (g1,) = cr.grad(cr.gelu(x).sum(), [x])
    from chainrule.ops import activations

    monkeypatch.setitem(activations._namespace, "_scipy_erf", False)   # as if not installed
    np.testing.assert_allclose(cr.gelu(x).numpy(), with_scipy, rtol=1e-12)
    (g2,) = cr.grad(cr.gelu(x).sum(), [x])
    np.testing.assert_allclose(g2.numpy(), g1.numpy(), rtol=1e-12)
    assert cr.gelu(cr.tensor(X, dtype=np.float32)).dtype == np.float32
    assert cr.gelu(cr.zeros(0)).shape == (0,)


def test_gelu_compiles_to_one_line_and_runs_alone():
    p = cr.placeholder((None, 4), dtype=np.float64, name="x")
    v = cr.Variable(np.ones(4), name="v")
    out = cr.gelu(p * v).sum()
    f = cr.function([p], [out] + cr.grad(out, [v]))
    assert "_erf(" in f.source and "def _erf" in f.source
    ns: dict = {}
    exec(f.source, ns)
    alone = ns["f"](X, v=np.ones(4))
    for a, b in zip(alone, f(X)):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    assert float(f(X)[0]) == pytest.approx(torch.nn.functional.gelu(_t(X)).sum().item())
    g = cr.gelu(p, approximate="tanh")
    assert "np.tanh" in cr.function([p], g).source
    with pytest.raises(ValueError, match="approximate"):
        cr.gelu(p, approximate="erf")


def test_leaky_relu_at_zero_takes_the_slope_as_torch():
    x = cr.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    (g,) = cr.grad(cr.leaky_relu(x, 0.1).sum(), [x])
    tx = _t([-1.0, 0.0, 2.0], True)
    torch.nn.functional.leaky_relu(tx, 0.1).sum().backward()
    np.testing.assert_allclose(g.numpy(), tx.grad.numpy())


# -- axes -------------------------------------------------------------------------------------
def test_squeeze_follows_torch_and_refuses_free_dims():
    x = cr.zeros(1, 3, 1)
    assert cr.squeeze(x).shape == (3,)
    assert cr.squeeze(x, 1).shape == (1, 3, 1)      # not size 1: left alone, as PyTorch
    assert x.squeeze(dim=-1).shape == (1, 3)
    assert cr.squeeze(x, (0, 2)).shape == (3,)
    p = cr.placeholder((None, 1, 3), name="p")
    assert cr.squeeze(p).shape == (None, 3)
    with pytest.raises(cr.ShapeError, match="free"):
        cr.squeeze(p, 0)
    f = cr.function([p], cr.squeeze(p))
    assert f(np.zeros((1, 1, 3), np.float32)).shape == (1, 3)   # a fed 1 stays: fixed at build


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (0, 1), (2, 3)])
def test_flatten_free_dims_compile(start, end):
    p = cr.placeholder((None, 2, 3, 4), dtype=np.float64, name="x")
    v = cr.Variable(np.ones((2, 3, 4)), name="v")
    out = cr.flatten(p * v, start, end)
    f = cr.function([p], [out, cr.grad((out * out).sum(), [v])[0]])
    for n in (5, 0):
        a = np.arange(n * 24.0).reshape(n, 2, 3, 4)
        got, gv = f(a)
        assert got.shape == tuple(torch.flatten(torch.zeros(n, 2, 3, 4), start, end).shape)
        np.testing.assert_array_equal(got, torch.flatten(torch.tensor(a), start, end).numpy())
        np.testing.assert_allclose(gv, 2 * (a ** 2).sum(0) if n else np.zeros((2, 3, 4)))
    assert ".reshape(" in f.source


def test_flatten_method_and_0d():
    assert cr.tensor(3.0).flatten().shape == (1,)
    assert cr.zeros(2, 3, 4).flatten(1).shape == (2, 12)
    assert cr.flatten(cr.zeros(2, 3, 4), start_dim=1, end_dim=2).shape == (2, 12)
    with pytest.raises(cr.ShapeError, match="after"):
        cr.flatten(cr.zeros(2, 3), 1, 0)


def test_pad_reads_as_np_pad_and_crops():
    p = cr.placeholder((None, 3), dtype=np.float64, name="x")
    f = cr.function([p], cr.pad(p, (1, 2)))
    assert "np.pad(x, ((0, 0), (1, 2)))" in f.source
    np.testing.assert_array_equal(f(X[:, :3]), np.pad(X[:, :3], ((0, 0), (1, 2))))
    x = cr.tensor(X, requires_grad=True)
    out = cr.pad(x, (-1, 1, 1, -1), value=9.0)
    want = torch.nn.functional.pad(_t(X), (-1, 1, 1, -1), value=9.0)
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    with pytest.raises(cr.ShapeError, match="even"):
        cr.pad(x, (1,))
    with pytest.raises(NotImplementedError, match="reflect"):
        cr.pad(x, (1, 1), mode="reflect")


def test_swapaxes_unsqueeze_view_permute_tolist():
    x = cr.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert cr.swapaxes(x, 0, 2).shape == (4, 3, 2)
    assert x.swapaxes(-1, 1).shape == (2, 4, 3)
    assert x.unsqueeze(1).shape == (2, 1, 3, 4)
    assert cr.unsqueeze(x, dim=-1).shape == (2, 3, 4, 1)
    assert x.view(6, 4).shape == (6, 4) and x.view((4, -1)).shape == (4, 6)
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and x.permute((1, 0, 2)).shape == (3, 2, 4)
    assert cr.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert cr.tensor(2.5).tolist() == 2.5
    assert x.astype(np.float32).dtype == np.float32


# -- gather / take_along_axis / einsum ---------------------------------------------------------
def test_gather_reads_the_leading_block_as_torch():
    x = cr.tensor(X, requires_grad=True)
    idx = np.array([[0, 0], [2, 1]])
    out = cr.gather(x, 1, idx)
    tx = _t(X, True)
    tout = torch.gather(tx, 1, torch.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    (g,) = cr.grad(out.sum(), [x])
    tout.sum().backward()
    np.testing.assert_array_equal(g.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(x.gather(1, idx).numpy(), out.numpy())
    with pytest.raises(cr.ShapeError, match="integers"):
        cr.gather(x, 1, np.array([[0.5]]))
    with pytest.raises(cr.ShapeError, match="larger"):
        cr.gather(x, 1, np.zeros((4, 1), np.int64))


def test_take_along_axis_with_placeholder_indices_compiles():
    x = cr.Variable(X, name="x")
    i = cr.placeholder((None, 1), dtype=np.int64, name="i")
    out = cr.take_along_axis(x, i, axis=1)
    assert out.shape == (3, 1)
    (gx,) = cr.grad(out.sum(), [x])
    f = cr.function([i], [out, gx])
    idx = np.array([[3], [3], [0]])
    got, g = f(idx)
    np.testing.assert_array_equal(got, np.take_along_axis(X, idx, 1))
    want = np.zeros_like(X)
    np.add.at(want, (np.arange(3)[:, None], idx), 1.0)
    np.testing.assert_array_equal(g, want)


def test_einsum_second_order_of_a_trace_and_a_bilinear_form():
    a = np.arange(9.0).reshape(3, 3) / 4
    x = cr.tensor(a, requires_grad=True)
    (g,) = cr.grad(cr.einsum("ii->", x) ** 2, [x], create_graph=True)
    (h,) = cr.grad((g * g).sum(), [x])
    tx = _t(a, True)
    (tg,) = torch.autograd.grad(torch.einsum("ii->", tx) ** 2, [tx], create_graph=True)
    (th,) = torch.autograd.grad((tg * tg).sum(), [tx])
    np.testing.assert_allclose(h.numpy(), th.numpy())
    assert cr.gradcheck(lambda v, m: cr.einsum("i,ij,j->", v, m, v), [np.ones(3), a])


def test_einsum_forms_and_errors():
    a, b = cr.tensor(X), cr.tensor(X.T)
    np.testing.assert_allclose(cr.einsum("ij,jk", a, b).numpy(), X @ X.T)
    np.testing.assert_allclose(cr.einsum("ij,jk->ik", [a, b]).numpy(), X @ X.T)
    np.testing.assert_allclose(cr.einsum("...j,j", a, np.ones(4)).numpy(), X.sum(1))
    with pytest.raises(cr.ShapeError, match="operands"):
        cr.einsum("ij,jk->ik", a)
    with pytest.raises(cr.ShapeError, match="do not fit"):
        cr.einsum("ijk->i", a)
    p = cr.placeholder((None, 4), dtype=np.float64, name="x")
    f = cr.function([p], cr.einsum("bi,bi->b", p, p))
    assert "np.einsum('bi,bi->b', x, x)" in f.source
    np.testing.assert_allclose(f(X), (X * X).sum(1))


# -- names PyTorch users reach for -------------------------------------------------------------
def test_dim_aliases():
    x = cr.tensor(X)
    np.testing.assert_allclose(cr.softmax(x, dim=0).numpy(), cr.softmax(x, axis=0).numpy())
    np.testing.assert_allclose(cr.log_softmax(x, dim=0).numpy(),
                               cr.log_softmax(x, axis=0).numpy())
    np.testing.assert_allclose(cr.sum(x, dim=1, keepdim=True).numpy(), X.sum(1, keepdims=True))
    np.testing.assert_allclose(x.mean(dim=0).numpy(), X.mean(0))
    assert cr.cat([x, x], dim=1).shape == (3, 8)
    assert cr.cat is cr.concatenate or cr.cat([x], 0).shape == (3, 4)


def test_new_ops_draw_and_explain():
    x = cr.tensor(X[:2, :2], requires_grad=True, name="x")
    y = cr.logsumexp(cr.gelu(cr.einsum("ij,jk->ik", x, x)), axis=1).sum()
    y.backward()
    dot = cr.draw(y)
    for label in ("einsum", "gelu", "logsumexp"):
        assert label in dot
    text = cr.explain(y)
    assert "gelu" in text and "einsum" in text
    # expanded, gelu is drawn as its formula: x * 0.5 * (1 + erf(x / sqrt 2))
    expanded = cr.draw(y, expand=True)
    assert "label=<erf" in expanded and "label=<gelu" not in expanded
