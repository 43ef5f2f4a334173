"""nn: registration, naming, state dicts, modes, Linear init and forward, Dropout, repr."""
import math

import numpy as np
import pytest

import chainrule as cr


def mlp():
    return cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))


def test_parameters_are_registered_in_order_with_dotted_names():
    model = mlp()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.name for p in model.parameters()] == names
    assert [p.shape for p in model.parameters()] == [(4, 3), (4,), (2, 4), (2,)]


def test_nested_modules_get_full_names_and_shared_parameters_appear_once():
    class Net(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = mlp()
            self.head = cr.nn.Linear(2, 1, bias=False)
            self.tied = self.head  # the same module twice: its weight is one parameter

        def forward(self, x):
            return self.head(self.body(x))

    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                     "head.weight"]
    assert net.parameters()[0].name == "body.0.weight"


def test_linear_forward_is_x_at_w_t_plus_b_and_init_within_bound():
    cr.manual_seed(0)
    layer = cr.nn.Linear(16, 5, dtype=np.float64)
    bound = 1 / math.sqrt(16)
    assert layer.weight.shape == (5, 16)  # PyTorch's (out_features, in_features)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.8 * bound  # really spread over the range
    x = np.random.default_rng(1).standard_normal((7, 16))
    out = layer(cr.tensor(x)).numpy()
    np.testing.assert_allclose(out, x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)


def test_manual_seed_makes_init_reproducible():
    cr.manual_seed(3)
    a = mlp().state_dict()
    cr.manual_seed(3)
    b = mlp().state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["0.weight"], mlp().state_dict()["0.weight"])


def test_state_dict_is_a_copy_and_load_writes_in_place():
    model = mlp()
    state = model.state_dict()
    weight = model.parameters()[0]
    array_before = weight.data
    state["0.weight"][...] = 7.0
    assert not np.any(weight.data == 7.0)
    model.load_state_dict({k: cr.tensor(v) for k, v in state.items()})
    assert weight.data is array_before
    assert np.all(weight.data == 7.0)


def test_load_state_dict_reports_missing_unexpected_and_shape():
    model = mlp()
    state = model.state_dict()
    with pytest.raises(cr.ChainruleError, match="missing keys \\['2.bias'\\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(cr.ChainruleError, match="unexpected keys \\['extra'\\]"):
        model.load_state_dict(dict(state, extra=np.zeros(1)))
    with pytest.raises(cr.ChainruleError, match="'0.bias' has shape \\(5,\\)"):
        model.load_state_dict(dict(state, **{"0.bias": np.zeros(5)}))


def test_train_eval_and_dropout():
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Dropout(0.5))
    x = cr.tensor(np.ones((200, 50)))
    assert model.training and model[0].training
    out = model(x).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}  # inverted dropout scales survivors by 1/(1-p)
    assert 0.4 < np.mean(out == 0.0) < 0.6
    model.eval()
    assert not model[0].training
    np.testing.assert_array_equal(model(x).numpy(), np.ones((200, 50)))


def test_loss_modules_match_functional_losses():
    logits = cr.tensor(np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]))
    labels = np.array([0, 2])
    expected_ce = np.mean([-np.log(np.exp(2) / np.exp([2, 0.5, -1]).sum()),
                           -np.log(np.exp(0.3) / np.exp([0.1, 0.2, 0.3]).sum())])
    assert cr.nn.CrossEntropyLoss()(logits, labels).item() == pytest.approx(expected_ce)
    # hinge: sample 0: max(0, .5-2+1) + max(0, -1-2+1) = 0; sample 1: 0.8 + 0.9
    assert cr.nn.HingeLoss()(logits, labels).item() == pytest.approx(1.7 / 2)
    assert cr.nn.MSELoss()(cr.tensor(np.array([1.0, 3.0])), np.array([0.0, 0.0])).item() == 5.0


def test_repr_reads_like_pytorch():
    text = repr(mlp())
    assert text == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=4, out_features=2, bias=True)\n"
        ")"
    )


def test_linear_compiles_to_x_at_w_t_without_copies_and_contiguous_weight_gradients():
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 3))
    x = cr.placeholder((None, 4), dtype=np.float32, name="x")
    y = cr.placeholder((None,), dtype=np.int64, name="y")
    loss = cr.cross_entropy(model(x), y)
    params = model.parameters()
    grads = cr.grad(loss, params)
    step = cr.function([x, y], loss, updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])
    src = step.source
    # the transposed weight is a view BLAS reads as it is; the weight's gradient is computed
    # in the weight's own (out, in) layout, so the update reads it contiguously
    assert "linear = x @ p_0_weight.T" in src
    assert "d0_weight = dadd.T @ x" in src and "p_0_weight -= 0.1 * d0_weight" in src
    assert "copy" not in src.split("# update")[0] and "ascontiguousarray" not in src
    # eager: the accumulated gradient is contiguous in (out, in) too
    out = cr.cross_entropy(model(cr.tensor(np.ones((5, 4), np.float32))), np.arange(5) % 3)
    out.backward()
    assert model[0].weight.grad.shape == (8, 4)
    assert model[0].weight.grad.numpy().flags.c_contiguous
