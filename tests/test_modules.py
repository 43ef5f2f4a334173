"""nn modules against torch.nn: names, shapes, initialisation, train/eval, buffers, eager and
compiled steps; Module methods (buffers, to, zero_grad, requires_grad_, apply, strict)."""
import math

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
tnn = torch.nn


# -- one row per module: how to build it in both libraries, and an input ------------------------
def _images(shape=(4, 3, 6, 6)):
    return np.random.default_rng(0).standard_normal(shape)


MODULES = [
    ("Linear", lambda: cr.nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
    ("Linear-nobias", lambda: cr.nn.Linear(5, 3, bias=False),
     lambda: tnn.Linear(5, 3, bias=False), (2, 7, 5)),
    ("Conv2d", lambda: cr.nn.Conv2d(3, 4, 3, padding=1), lambda: tnn.Conv2d(3, 4, 3, padding=1),
     (4, 3, 6, 6)),
    ("Conv2d-groups", lambda: cr.nn.Conv2d(4, 6, (3, 2), stride=2, dilation=(1, 2), groups=2),
     lambda: tnn.Conv2d(4, 6, (3, 2), stride=2, dilation=(1, 2), groups=2), (2, 4, 7, 8)),
    ("Conv2d-same", lambda: cr.nn.Conv2d(3, 2, 3, padding="same", bias=False),
     lambda: tnn.Conv2d(3, 2, 3, padding="same", bias=False), (2, 3, 5, 5)),
    ("MaxPool2d", lambda: cr.nn.MaxPool2d(2), lambda: tnn.MaxPool2d(2), (2, 3, 6, 6)),
    ("MaxPool2d-stride", lambda: cr.nn.MaxPool2d(3, 2, 1), lambda: tnn.MaxPool2d(3, 2, 1),
     (2, 3, 7, 7)),
    ("AvgPool2d", lambda: cr.nn.AvgPool2d(2, padding=1), lambda: tnn.AvgPool2d(2, padding=1),
     (2, 3, 5, 5)),
    ("BatchNorm1d", lambda: cr.nn.BatchNorm1d(3), lambda: tnn.BatchNorm1d(3), (8, 3)),
    ("BatchNorm1d-3d", lambda: cr.nn.BatchNorm1d(3), lambda: tnn.BatchNorm1d(3), (4, 3, 5)),
    ("BatchNorm2d", lambda: cr.nn.BatchNorm2d(3), lambda: tnn.BatchNorm2d(3), (4, 3, 5, 5)),
    ("BatchNorm2d-noaffine", lambda: cr.nn.BatchNorm2d(3, affine=False, momentum=0.3),
     lambda: tnn.BatchNorm2d(3, affine=False, momentum=0.3), (4, 3, 2, 2)),
    ("BatchNorm2d-nostats", lambda: cr.nn.BatchNorm2d(3, track_running_stats=False),
     lambda: tnn.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 2)),
    ("LayerNorm", lambda: cr.nn.LayerNorm((5, 5)), lambda: tnn.LayerNorm((5, 5)), (2, 3, 5, 5)),
    ("GroupNorm", lambda: cr.nn.GroupNorm(2, 4), lambda: tnn.GroupNorm(2, 4), (3, 4, 3, 3)),
    ("Flatten", lambda: cr.nn.Flatten(), lambda: tnn.Flatten(), (2, 3, 4, 5)),
    ("GELU", lambda: cr.nn.GELU(), lambda: tnn.GELU(), (3, 4)),
    ("GELU-tanh", lambda: cr.nn.GELU("tanh"), lambda: tnn.GELU("tanh"), (3, 4)),
    ("LeakyReLU", lambda: cr.nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2), (3, 4)),
    ("Identity", lambda: cr.nn.Identity(7, x=1), lambda: tnn.Identity(7, x=1), (3, 4)),
    ("ReLU", lambda: cr.nn.ReLU(), lambda: tnn.ReLU(), (3, 4)),
    ("Tanh", lambda: cr.nn.Tanh(), lambda: tnn.Tanh(), (3, 4)),
    ("Sigmoid", lambda: cr.nn.Sigmoid(), lambda: tnn.Sigmoid(), (3, 4)),
    ("Dropout-eval", lambda: cr.nn.Dropout(0.3).eval(), lambda: tnn.Dropout(0.3).eval(),
     (3, 4)),
]


def _pair(make_cr, make_torch):
    ours, theirs = make_cr(), make_torch().double()
    ours.double()
    # same weights both ways: PyTorch's values, loaded through the state dict
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("name,make_cr,make_torch,shape", MODULES, ids=[m[0] for m in MODULES])
def test_names_shapes_and_outputs_match_torch(name, make_cr, make_torch, shape):
    ours, theirs = _pair(make_cr, make_torch)
    ours_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(their_state)          # names and order
    for key, value in their_state.items():
        assert ours_state[key].shape == tuple(value.shape), key
    x = np.random.default_rng(1).standard_normal(shape)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        if name == "Dropout-eval" and mode == "train":
            continue
        xt = torch.tensor(x, requires_grad=True)
        expected = theirs(xt)
        out = ours(cr.tensor(x, requires_grad=True))
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=f"{name} {mode}")
    # the compiled forward agrees too (in eval mode), with a free batch dimension
    xp = cr.placeholder((None,) + shape[1:], dtype=np.float64, name="x")
    f = cr.function([xp], ours(xp))
    np.testing.assert_allclose(f(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("name,make_cr,make_torch,shape",
                         [m for m in MODULES if m[0].startswith(("Linear", "Conv2d", "Batch",
                                                                 "Layer", "Group"))],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_parameter_and_input_gradients_match_torch(name, make_cr, make_torch, shape):
    ours, theirs = _pair(make_cr, make_torch)
    x = np.random.default_rng(2).standard_normal(shape)
    g = np.random.default_rng(3).standard_normal(theirs(torch.tensor(x)).shape)
    xt, xc = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    (theirs(xt) * torch.tensor(g)).sum().backward()
    (ours(xc) * g).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    their_grads = dict(theirs.named_parameters())
    for key, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), their_grads[key].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=key)


def test_default_initialisation_follows_pytorch():
    cr.manual_seed(0)
    conv = cr.nn.Conv2d(8, 16, (3, 5), groups=2)
    bound = 1 / math.sqrt(8 // 2 * 3 * 5)
    assert 0.9 * bound < np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.bias.data).max() <= bound
    linear = cr.nn.Linear(400, 30)
    assert linear.weight.shape == (30, 400)
    assert 0.9 / 20 < np.abs(linear.weight.data).max() <= 1 / 20
    # uniform on [-b, b] has standard deviation b / sqrt(3)
    assert abs(linear.weight.data.std() - 1 / 20 / math.sqrt(3)) < 0.002
    emb = cr.nn.Embedding(1000, 20)
    assert abs(emb.weight.data.std() - 1.0) < 0.03 and abs(emb.weight.data.mean()) < 0.03
    bn = cr.nn.BatchNorm2d(3)
    assert bn.weight.data.tolist() == [1, 1, 1] and bn.bias.data.tolist() == [0, 0, 0]
    assert bn.running_var.data.tolist() == [1, 1, 1]
    assert bn.num_batches_tracked.dtype == np.int64
    assert cr.nn.LayerNorm(4).weight.shape == (4,)


def test_embedding_matches_torch_and_accumulates_repeated_rows():
    emb, temb = _pair(lambda: cr.nn.Embedding(6, 3), lambda: tnn.Embedding(6, 3))
    idx = np.array([[1, 2, 1], [5, 0, 1]])
    out = emb(idx)
    np.testing.assert_allclose(out.numpy(), temb(torch.tensor(idx)).detach().numpy())
    out.sum().backward()
    temb(torch.tensor(idx)).sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), temb.weight.grad.numpy())
    assert emb.weight.grad.numpy()[1].tolist() == [3.0, 3.0, 3.0]


# -- batch norm: train/eval and running statistics over several steps ----------------------------
def _bn_pair(momentum=0.1):
    cr.manual_seed(0)
    return _pair(lambda: cr.nn.BatchNorm2d(3, momentum=momentum),
                 lambda: tnn.BatchNorm2d(3, momentum=momentum))


def test_batch_norm_running_statistics_follow_torch_over_steps_eager():
    ours, theirs = _bn_pair(momentum=0.2)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((5, 3, 4, 4)) * 3 + 1
        np.testing.assert_allclose(ours(cr.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12,
                                   err_msg=key)
    assert int(ours.num_batches_tracked.item()) == 4
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    before = ours.state_dict()
    ours(cr.tensor(x))       # evaluation changes nothing
    for key, value in before.items():
        np.testing.assert_array_equal(ours.state_dict()[key], value)


def test_batch_norm_running_statistics_are_updated_by_the_compiled_step():
    ours, theirs = _bn_pair()
    model = cr.nn.Sequential(ours, cr.nn.Flatten(), cr.nn.Linear(48, 2).double())
    tmodel = tnn.Sequential(theirs, tnn.Flatten(), tnn.Linear(48, 2).double())
    tmodel[2].load_state_dict({k: torch.tensor(v) for k, v in model[2].state_dict().items()})
    x = cr.placeholder((None, 3, 4, 4), dtype=np.float64, name="x")
    y = cr.placeholder((None,), dtype=np.int64, name="y")
    step = cr.optim.SGD(model.parameters(), lr=0.1).minimize(
        cr.cross_entropy(model(x), y), [x, y])
    assert "running_mean" in step.source and "num_batches_tracked" in step.source
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    rng = np.random.default_rng(1)
    for _ in range(3):
        xb, yb = rng.standard_normal((6, 3, 4, 4)) + 2, rng.integers(0, 2, 6)
        loss = step(xb, yb)
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(xb)), torch.tensor(yb))
        tloss.backward()
        topt.step()
        assert float(loss) == pytest.approx(tloss.item(), rel=1e-10)
    for key, value in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[key], value.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=key)
    assert int(ours.num_batches_tracked.item()) == 3
    # a predictor compiled in eval mode reads the running statistics at call time
    model.eval()
    tmodel.eval()
    predict = cr.function([x], model(x))
    xb = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(predict(xb), tmodel(torch.tensor(xb)).detach().numpy(),
                               rtol=1e-9)
    ours.running_mean.data[...] += 1.0          # later changes are seen, not baked in
    theirs.running_mean += 1.0
    np.testing.assert_allclose(predict(xb), tmodel(torch.tensor(xb)).detach().numpy(),
                               rtol=1e-9)
    assert "running_mean" not in cr.function([x], model(x)).program.updates.__repr__()


def test_batch_norm_refuses_the_wrong_rank():
    with pytest.raises(cr.ShapeError, match="BatchNorm2d expects 4-d input"):
        cr.nn.BatchNorm2d(3)(cr.tensor(np.zeros((2, 3))))
    with pytest.raises(cr.ChainruleError, match="momentum=None"):
        cr.nn.BatchNorm1d(3, momentum=None)


# -- dropout: train/eval, eager and compiled from one seed --------------------------------------
def test_dropout_compiled_matches_eager_with_the_same_seed():
    model = cr.nn.Sequential(cr.nn.Linear(6, 8).double(), cr.nn.Dropout(0.4))
    x = np.random.default_rng(0).standard_normal((5, 6))
    cr.manual_seed(7)
    eager = [model(cr.tensor(x)).numpy() for _ in range(3)]
    xp = cr.placeholder((None, 6), dtype=np.float64, name="x")
    f = cr.function([xp], model(xp))
    cr.manual_seed(7)
    compiled = [f(x) for _ in range(3)]
    for a, b in zip(eager, compiled):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(eager[0], eager[1])       # a fresh mask every call
    assert np.any(eager[0] == 0)
    model.eval()
    np.testing.assert_array_equal(cr.function([xp], model(xp))(x), model[0](cr.tensor(x)).numpy())


# -- Module methods ------------------------------------------------------------------------------
class Net(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = cr.nn.Sequential(cr.nn.Conv2d(1, 2, 3), cr.nn.BatchNorm2d(2))
        self.heads = cr.nn.ModuleList([cr.nn.Linear(8, 3), cr.nn.Identity()])
        self.register_buffer("scale", np.array(2.0))
        self.register_buffer("scratch", np.zeros(3), persistent=False)

    def forward(self, x):
        h = cr.nn.Flatten()(self.features(x))
        for head in self.heads:
            h = head(h)
        return h * self.scale


def test_state_dict_order_and_buffers_like_torch():
    net = Net()
    assert list(net.state_dict()) == [
        "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
        "heads.0.weight", "heads.0.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "scale", "scratch", "features.1.running_mean", "features.1.running_var",
        "features.1.num_batches_tracked"]
    assert len(net.buffers()) == 5 and not any(b.requires_grad for b in net.buffers())
    assert len(net.parameters()) == 6
    net.scale = np.array(3.0)                 # assigning keeps it a buffer
    assert net.state_dict()["scale"] == 3.0 and "scale" in dict(net.named_buffers())
    with pytest.raises(cr.ChainruleError, match="already a parameter or submodule"):
        net.register_buffer("features", np.zeros(1))


def test_load_state_dict_strict_and_not():
    net, other = Net(), Net()
    state = other.state_dict()
    del state["heads.0.bias"]
    state["extra.weight"] = np.zeros(1)
    with pytest.raises(cr.ChainruleError, match=r"missing keys \['heads.0.bias'\], unexpected "
                                                r"keys \['extra.weight'\]"):
        net.load_state_dict(state)
    assert not np.array_equal(net.heads[0].weight.data, other.heads[0].weight.data)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["heads.0.bias"]
    assert result.unexpected_keys == ["extra.weight"]
    missing, unexpected = result
    assert (missing, unexpected) == (["heads.0.bias"], ["extra.weight"])
    np.testing.assert_array_equal(net.heads[0].weight.data, other.heads[0].weight.data)
    assert repr(net.load_state_dict(other.state_dict())) == "<All keys matched successfully>"
    # what torch's own strict=False returns, for the same kind of mismatch
    t = tnn.Linear(2, 2)
    tres = t.load_state_dict({"weight": torch.zeros(2, 2), "x": torch.zeros(1)}, strict=False)
    ours = cr.nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2)), "x": np.zeros(1)},
                                              strict=False)
    assert (ours.missing_keys, ours.unexpected_keys) == (tres.missing_keys, tres.unexpected_keys)
    # torch Parameters (requiring grad) load as well as state-dict tensors
    ours = cr.nn.Linear(2, 2)
    ours.load_state_dict(dict(t.named_parameters()))
    np.testing.assert_array_equal(ours.weight.data, t.weight.detach().numpy())


def test_load_state_dict_shape_mismatch_and_transposed_hint():
    layer = cr.nn.Linear(3, 2)
    with pytest.raises(cr.ChainruleError, match=r"'weight' has shape \(3, 2\) .* looks "
                                                r"transposed"):
        layer.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)}, strict=False)


def test_to_double_float_keep_the_tensors_and_integer_buffers():
    net = Net()
    weight = net.heads[0].weight
    assert net.double() is net
    assert weight.dtype == np.float64 and net.heads[0].weight is weight
    assert net.features[1].running_var.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64
    out = net(cr.tensor(np.ones((2, 1, 4, 4))))
    assert out.dtype == np.float64
    net.float()
    assert weight.dtype == np.float32
    assert net.to(np.float64) is net and weight.dtype == np.float64
    with pytest.raises(cr.ChainruleError, match="floating-point"):
        net.to(np.int32)


def test_zero_grad_requires_grad_and_apply():
    net = Net().double()
    net(cr.tensor(np.ones((2, 1, 4, 4)))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert len(net.parameters()) == 6                  # frozen, still parameters
    assert not net(cr.tensor(np.ones((2, 1, 4, 4)))).requires_grad
    net.requires_grad_()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Conv2d", "BatchNorm2d", "Sequential", "Linear", "Identity", "ModuleList",
                    "Net"]
    tseen = []
    tnet = tnn.Sequential(tnn.Sequential(tnn.Linear(1, 1), tnn.ReLU()), tnn.Identity())
    tnet.apply(lambda m: tseen.append(type(m).__name__))
    net2 = cr.nn.Sequential(cr.nn.Sequential(cr.nn.Linear(1, 1), cr.nn.ReLU()),
                            cr.nn.Identity())
    seen.clear()
    net2.apply(lambda m: seen.append(type(m).__name__))
    assert seen == tseen

    def zero_linears(m):
        if isinstance(m, cr.nn.Linear):
            m.weight.data[...] = 0
    net.apply(zero_linears)
    assert not net.heads[0].weight.data.any()


def test_train_eval_reach_every_module_and_module_list_behaves_like_a_list():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    heads = net.heads
    heads.append(cr.nn.ReLU())
    assert len(heads) == 3 and isinstance(heads[-1], cr.nn.ReLU)
    heads.insert(0, cr.nn.Tanh())
    assert [type(m).__name__ for m in heads] == ["Tanh", "Linear", "Identity", "ReLU"]
    assert [n for n, _ in net.named_parameters()][-2:] == ["heads.1.weight", "heads.1.bias"]
    del heads[0]
    assert [n for n, _ in heads.named_parameters()] == ["0.weight", "0.bias"]
    assert isinstance(heads[1:], cr.nn.ModuleList) and len(heads[1:]) == 2
    with pytest.raises(cr.ChainruleError, match="no forward"):
        heads(1)


def test_repr_of_new_modules_reads_like_pytorch():
    assert repr(cr.nn.Conv2d(1, 16, 3, padding=1)) == \
        "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(cr.nn.BatchNorm2d(16)) == ("BatchNorm2d(16, eps=1e-05, momentum=0.1, "
                                           "affine=True, track_running_stats=True)")
    assert repr(cr.nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
