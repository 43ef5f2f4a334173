"""Convolutional networks and normalisation (issue 8) beyond the op table's per-op checks.

* the CS231n assignment-2 layer checks, with the course's own numbers where it gives them
  (conv forward, max-pool forward) and its gradient and statistics checks otherwise;
* a small CNN (conv, batch norm, ReLU, pooling, dropout off, linear, cross-entropy) on
  placeholders with a free batch size: symbolic, compiled and printed source agree with eager;
* batch norm's running statistics against ``torch.nn.functional.batch_norm`` over several
  steps, eagerly and in a compiled step;
* dropout: the same seed gives the same masks eagerly and compiled;
* drawings and errors name the conv's kernel, stride and padding.
"""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F


def rel_error(x, y) -> float:
    """The course's relative error."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def numeric_grad(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The course's ``eval_numerical_gradient_array``: central differences of <f(x), dout>."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = f(x).copy()
        x[i] = old - h
        neg = f(x).copy()
        x[i] = old
        grad[i] = np.sum((pos - neg) * dout) / (2 * h)
    return grad


# -- CS231n assignment 2 --------------------------------------------------------------------
def test_cs231n_conv_forward_naive():
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out = cr.conv2d(x, w, b, stride=2, padding=1).numpy()
    correct_out = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                             [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                             [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                            [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                             [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                             [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    assert rel_error(out, correct_out) < 1e-7


def test_cs231n_conv_backward_naive():
    np.random.seed(231)
    x = np.random.randn(4, 3, 5, 5)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2,)
    dout = np.random.randn(4, 2, 5, 5)

    def fwd(x, w, b):
        return cr.conv2d(x, w, b, stride=1, padding=1).numpy()

    dx_num = numeric_grad(lambda v: fwd(v, w, b), x, dout)
    dw_num = numeric_grad(lambda v: fwd(x, v, b), w, dout)
    db_num = numeric_grad(lambda v: fwd(x, w, v), b, dout)
    xs = [cr.Variable(a) for a in (x, w, b)]
    dx, dw, db = cr.grad(cr.conv2d(*xs, stride=1, padding=1), xs, grad_outputs=dout)
    assert rel_error(dx.numpy(), dx_num) < 1e-8
    assert rel_error(dw.numpy(), dw_num) < 1e-8
    assert rel_error(db.numpy(), db_num) < 1e-8


def test_cs231n_max_pool_forward_naive():
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out = cr.max_pool2d(x, 2, stride=2).numpy()
    correct_out = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                             [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                             [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                            [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                             [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                             [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    assert rel_error(out, correct_out) < 1e-7


def test_cs231n_max_pool_backward_naive():
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 8)
    dout = np.random.randn(3, 2, 4, 4)
    dx_num = numeric_grad(lambda v: cr.max_pool2d(v, 2).numpy(), x, dout)
    v = cr.Variable(x)
    (dx,) = cr.grad(cr.max_pool2d(v, 2), [v], grad_outputs=dout)
    assert rel_error(dx.numpy(), dx_num) < 1e-10


def test_cs231n_conv_relu_pool():
    np.random.seed(231)
    x = np.random.randn(2, 3, 16, 16)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3,)
    dout = np.random.randn(2, 3, 8, 8)

    def fwd(x, w, b):
        return cr.max_pool2d(cr.relu(cr.conv2d(x, w, b, padding=1)), 2).numpy()

    dx_num = numeric_grad(lambda v: fwd(v, w, b), x, dout)
    dw_num = numeric_grad(lambda v: fwd(x, v, b), w, dout)
    db_num = numeric_grad(lambda v: fwd(x, w, v), b, dout)
    xs = [cr.Variable(a) for a in (x, w, b)]
    out = cr.max_pool2d(cr.relu(cr.conv2d(*xs, padding=1)), 2)
    dx, dw, db = cr.grad(out, xs, grad_outputs=dout)
    assert rel_error(dx.numpy(), dx_num) < 1e-8
    assert rel_error(dw.numpy(), dw_num) < 1e-8
    assert rel_error(db.numpy(), db_num) < 1e-8


def _course_activations(n=200):
    np.random.seed(231)
    d1, d2, d3 = 50, 60, 3
    x = np.random.randn(n, d1)
    w1, w2 = np.random.randn(d1, d2), np.random.randn(d2, d3)
    return np.maximum(x @ w1, 0) @ w2, (w1, w2)


def test_cs231n_batchnorm_forward_train():
    a, _ = _course_activations()
    assert np.abs(a.mean(axis=0)).max() > 1      # the course's point: far from standardised
    rm, rv = np.zeros(3), np.ones(3)
    out = cr.batch_norm(a, rm, rv, np.ones(3), np.zeros(3), training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out = cr.batch_norm(a, rm, rv, gamma, beta, training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), gamma, atol=1e-3)


def test_cs231n_batchnorm_forward_test_time():
    _, (w1, w2) = _course_activations()
    gamma, beta = np.ones(3), np.zeros(3)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(50):           # the running averages settle over training batches
        a = np.maximum(np.random.randn(200, 50) @ w1, 0) @ w2
        cr.batch_norm(a, rm, rv, gamma, beta, training=True)
    a = np.maximum(np.random.randn(200, 50) @ w1, 0) @ w2
    out = cr.batch_norm(a, rm, rv, gamma, beta, training=False).numpy()
    assert np.abs(out.mean(axis=0)).max() < 0.2
    assert np.abs(out.std(axis=0) - 1).max() < 0.2


def test_cs231n_batchnorm_backward():
    np.random.seed(231)
    n, d = 4, 5
    x = 5 * np.random.randn(n, d) + 12
    gamma, beta = np.random.randn(d), np.random.randn(d)
    dout = np.random.randn(n, d)

    def fwd(x, g, b):
        return cr.batch_norm(x, None, None, g, b, training=True).numpy()

    nums = [numeric_grad(lambda v: fwd(v, gamma, beta), x, dout),
            numeric_grad(lambda v: fwd(x, v, beta), gamma, dout),
            numeric_grad(lambda v: fwd(x, gamma, v), beta, dout)]
    xs = [cr.Variable(a) for a in (x, gamma, beta)]
    grads = cr.grad(cr.batch_norm(xs[0], None, None, xs[1], xs[2], training=True), xs,
                    grad_outputs=dout)
    for g, num in zip(grads, nums):
        assert rel_error(g.numpy(), num) < 1e-7


def test_cs231n_layernorm_forward():
    np.random.seed(231)
    n, d1, d2, d3 = 4, 50, 60, 3
    x = np.random.randn(n, d1)
    a = np.maximum(x @ np.random.randn(d1, d2), 0) @ np.random.randn(d2, d3)
    out = cr.layer_norm(a, 3, np.ones(3), np.zeros(3)).numpy()
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1, atol=1e-3)
    gamma, beta = np.array([3.0, 3.0, 3.0]), np.array([5.0, 5.0, 5.0])
    out = cr.layer_norm(a, 3, gamma, beta).numpy()
    np.testing.assert_allclose(out.mean(axis=1), 5, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=1), 3, atol=1e-2)


def test_cs231n_spatial_groupnorm_forward():
    np.random.seed(231)
    n, c, h, w, g = 2, 6, 4, 5, 2
    x = 4 * np.random.randn(n, c, h, w) + 10
    out = cr.group_norm(x, g, np.ones(c), np.zeros(c)).numpy().reshape(n, g, -1)
    np.testing.assert_allclose(out.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=2), 1, atol=1e-3)


def test_cs231n_spatial_batchnorm_forward():
    np.random.seed(231)
    x = 4 * np.random.randn(2, 3, 4, 5) + 10
    gamma, beta = np.array([3.0, 4.0, 5.0]), np.array([6.0, 7.0, 8.0])
    out = cr.batch_norm(x, None, None, gamma, beta, training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), gamma, atol=1e-3)


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_cs231n_dropout_forward(p):
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    cr.manual_seed(231)
    train = cr.dropout(x, p=p, training=True).numpy()
    test = cr.dropout(x, p=p, training=False).numpy()
    assert abs(train.mean() - x.mean()) < 0.05 * x.mean()    # inverted dropout keeps the mean
    np.testing.assert_array_equal(test, x)
    assert abs((train == 0).mean() - p) < 0.01
    kept = train != 0
    np.testing.assert_allclose(train[kept], x[kept] / (1 - p))


def test_cs231n_dropout_backward():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    cr.manual_seed(123)
    v = cr.Variable(x)
    out = cr.dropout(v, p=0.2)
    (dx,) = cr.grad(out, [v], grad_outputs=dout)
    mask = out.numpy() / x          # 0 or 1 / (1 - p), the mask the forward pass drew
    np.testing.assert_allclose(dx.numpy(), dout * mask, rtol=1e-12)


# -- a small CNN in every mode ----------------------------------------------------------------
def _cnn_params(rng, dtype=np.float64):
    return [cr.Variable(rng.standard_normal(s).astype(dtype) * 0.3, name=n) for n, s in (
        ("w1", (4, 3, 3, 3)), ("b1", (4,)), ("g1", (4,)), ("be1", (4,)),
        ("w2", (6, 4, 2, 2)), ("b2", (6,)), ("fc", (5, 24)), ("fcb", (5,)))]


def _cnn(x, params, y):
    w1, b1, g1, be1, w2, b2, fc, fcb = params
    h = F.conv2d(x, w1, b1, padding=1)
    h = F.batch_norm(h, None, None, g1, be1, training=True)
    h = F.max_pool2d(F.relu(h), 2)                                 # (N, 4, 4, 4)
    h = F.avg_pool2d(F.conv2d(h, w2, b2, stride=1, padding="same"), 2, stride=2)   # (N, 6, 2, 2)
    h = cr.reshape(h, (-1, 24))
    return F.cross_entropy(F.linear(h, fc, fcb), y)


def test_cnn_symbolic_compiled_and_source_alone_match_eager():
    rng = np.random.default_rng(0)
    params = _cnn_params(rng)
    x = rng.standard_normal((5, 3, 8, 8))
    y = rng.integers(0, 5, 5)
    loss = _cnn(cr.tensor(x), params, y)
    grads = cr.grad(loss, params)

    xp = cr.placeholder((None, 3, 8, 8), dtype=np.float64, name="x")
    yp = cr.placeholder((None,), dtype=np.int64, name="y")
    sym = _cnn(xp, params, yp)
    sgrads = cr.grad(sym, params)
    assert sym.data is None
    feed = {xp: x, yp: y}
    np.testing.assert_allclose(sym.eval(feed), loss.numpy(), rtol=1e-12)
    for sg, g in zip(sgrads, grads):
        np.testing.assert_allclose(sg.eval(feed), g.numpy(), rtol=1e-10, atol=1e-12)

    f = cr.function([xp, yp], [sym] + sgrads)
    got = f(x, y)
    np.testing.assert_allclose(got[0], loss.numpy(), rtol=1e-12)
    for a, g in zip(got[1:], grads):
        np.testing.assert_allclose(a, g.numpy(), rtol=1e-10, atol=1e-12)
    # a conv is a window view and one matmul, as written by hand, not a hidden helper
    assert "sliding_window_view" in f.source and "@" in f.source
    assert "chainrule" not in f.source
    namespace: dict = {}
    exec(f.source, namespace)  # noqa: S102 the source printed by cr.function
    alone = namespace["f"](x, y, **{p.name: p.numpy() for p in params})
    for a, b in zip(got, alone):
        np.testing.assert_array_equal(a, np.asarray(b))
    # another batch size through the same compiled code
    assert f(x[:2], y[:2])[0].shape == ()


def test_cnn_second_order_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    v = rng.standard_normal(x.shape)

    def f(lib, x, w):
        fn = torch.nn.functional if lib is torch else F
        h = fn.max_pool2d(fn.conv2d(x, w, stride=1, padding=1), 2)
        return (h * h).sum() if lib is torch else cr.sum(h * h)

    xs = [cr.Variable(x), cr.Variable(w)]
    gx, gw = cr.grad(f(cr, *xs), xs, create_graph=True)
    second = cr.grad(cr.sum(gx * v) + cr.sum(gw * gw), xs)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    tgx, tgw = torch.autograd.grad(f(torch, *ts), ts, create_graph=True)
    tsecond = torch.autograd.grad((tgx * torch.tensor(v)).sum() + (tgw * tgw).sum(), ts)
    for a, b in zip(second, tsecond):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-10)


# -- batch norm's running statistics ----------------------------------------------------------
def test_batch_norm_running_stats_match_torch_eager_and_compiled():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((4, 3, 5, 5)) * 2 + 1 for _ in range(4)]
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    rm, rv = np.zeros(3), np.ones(3)                         # eager: arrays, in place
    vm, vv = cr.Variable(np.zeros(3)), cr.Variable(np.ones(3))   # compiled: tensors
    xp = cr.placeholder((None, 3, 5, 5), dtype=np.float64)
    step = cr.function([xp], F.batch_norm(xp, vm, vv, w, b, training=True, momentum=0.2))
    for x in batches:
        want = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w),
                                              torch.tensor(b), training=True, momentum=0.2)
        got = F.batch_norm(cr.tensor(x), rm, rv, w, b, training=True, momentum=0.2)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(step(x), want.numpy(), rtol=1e-10, atol=1e-12)
        for ours in ((rm, rv), (vm.numpy(), vv.numpy())):
            np.testing.assert_allclose(ours[0], trm.numpy(), rtol=1e-12)
            np.testing.assert_allclose(ours[1], trv.numpy(), rtol=1e-12)
    # evaluation mode reads the running statistics
    x = batches[0]
    want = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w),
                                          torch.tensor(b), training=False)
    np.testing.assert_allclose(F.batch_norm(x, rm, rv, w, b).numpy(), want.numpy(), rtol=1e-10)
    evaluate = cr.function([xp], F.batch_norm(xp, vm, vv, w, b))
    np.testing.assert_allclose(evaluate(x), want.numpy(), rtol=1e-10)
    np.testing.assert_allclose(vm.numpy(), trm.numpy(), rtol=1e-12)   # not updated by eval


def test_batch_norm_float32_stays_float32_with_running_arrays():
    x = np.random.default_rng(3).standard_normal((8, 2)).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    out = cr.batch_norm(x, rm, rv, training=True)
    assert out.dtype == np.float32 and rm.dtype == np.float32 and rv.dtype == np.float32
    assert np.abs(rm).max() > 0


# -- dropout, eager and compiled from one seed ------------------------------------------------
def test_dropout_compiled_equals_eager_with_the_same_seed():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3, 4, 4)).astype(np.float32)
    w = cr.Variable(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), name="w")

    def model(inp):
        return cr.sum(F.dropout(F.relu(F.conv2d(inp, w, padding=1)), p=0.3))

    cr.manual_seed(11)
    eager = [model(cr.tensor(x)) for _ in range(2)]
    eager_grad = cr.grad(eager[0], [w])[0].numpy()
    xp = cr.placeholder((None, 3, 4, 4), name="x")
    loss = model(xp)
    f = cr.function([xp], [loss] + cr.grad(loss, [w]))
    assert "rng.random" in f.source
    cr.manual_seed(11)
    first, second = f(x), f(x)         # the compiled step continues the generator's stream
    assert first[0] == eager[0].item() and second[0] == eager[1].item()
    np.testing.assert_array_equal(first[1], eager_grad)
    assert first[0] != second[0]       # each call draws a fresh mask


def test_dropout_masks_are_never_shared_or_folded():
    x = cr.placeholder((100,), dtype=np.float64)
    f = cr.function([x], [F.dropout(x), F.dropout(x)])
    a, b = f(np.ones(100))
    assert not np.array_equal(a, b)
    const = F.dropout(cr.tensor(np.ones(100)) + x * 0)
    g = cr.function([x], const)
    assert not np.array_equal(g(np.ones(100)), g(np.ones(100)))


def test_dropout_edges():
    x = cr.tensor(np.ones(5))
    assert F.dropout(x, p=0.0) is x and F.dropout(x, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, p=1.0).numpy(), np.zeros(5))
    with pytest.raises(cr.ShapeError, match="dropout"):
        F.dropout(x, p=1.5)


# -- seeing it, and errors ----------------------------------------------------------------------
def test_conv_node_is_labelled_with_kernel_stride_and_padding():
    x = cr.Variable(np.random.default_rng(5).standard_normal((64, 3, 16, 16)), name="x")
    w = cr.Variable(np.ones((8, 3, 3, 3)), name="w")
    out = cr.sum(F.max_pool2d(F.conv2d(x, w, stride=2, padding=1), 2))
    out.backward()
    dot = cr.draw(out)
    assert "kernel=(3, 3)" in dot and "stride=(2, 2)" in dot and "padding=((1, 1), (1, 1))" in dot
    assert len(dot) < 20000            # large tensors are summarised, not printed in full
    text = cr.explain(out)
    assert "im2col" in text and "kernel=(3, 3)" in text and len(text) < 40000


def test_errors_name_the_op_and_shapes():
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(cr.ShapeError, match=r"conv2d.*3 channels"):
        cr.conv2d(x, np.zeros((2, 4, 3, 3)))
    with pytest.raises(cr.ShapeError, match="conv2d.*does not fit"):
        cr.conv2d(x, np.zeros((2, 3, 7, 7)))
    with pytest.raises(cr.ShapeError, match="same"):
        cr.conv2d(x, np.zeros((2, 3, 3, 3)), stride=2, padding="same")
    with pytest.raises(cr.ShapeError, match="max_pool2d"):
        cr.max_pool2d(x, 6)
    with pytest.raises(cr.ShapeError, match="batch_norm"):
        cr.batch_norm(np.zeros((1, 3)), None, None, training=True)
    with pytest.raises(cr.ShapeError, match="embedding"):
        cr.embedding(np.array([3]), np.zeros((3, 2)))


def test_one_image_and_empty_batch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).standard_normal((3, 5, 5))
    w = np.random.default_rng(7).standard_normal((2, 3, 3, 3))
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    np.testing.assert_allclose(cr.conv2d(x, w).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(cr.max_pool2d(x, 2).numpy(),
                               torch.nn.functional.max_pool2d(torch.tensor(x), 2).numpy())
    assert cr.conv2d(np.zeros((0, 3, 5, 5)), w, padding=1).shape == (0, 2, 5, 5)
