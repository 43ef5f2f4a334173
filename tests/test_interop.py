"""Weights both ways: chainrule -> .safetensors -> PyTorch and back, for an MLP and a CNN with
batch norm, giving the same outputs; one architecture, one set of names."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")
tnn = torch.nn


def mlp_pair():
    ours = cr.nn.Sequential(cr.nn.Linear(6, 16), cr.nn.ReLU(), cr.nn.Linear(16, 16),
                            cr.nn.Tanh(), cr.nn.Linear(16, 3))
    theirs = tnn.Sequential(tnn.Linear(6, 16), tnn.ReLU(), tnn.Linear(16, 16), tnn.Tanh(),
                            tnn.Linear(16, 3))
    return ours, theirs, (5, 6)


def cnn_pair():
    ours = cr.nn.Sequential(
        cr.nn.Conv2d(1, 4, 3, padding=1), cr.nn.BatchNorm2d(4), cr.nn.ReLU(), cr.nn.MaxPool2d(2),
        cr.nn.Conv2d(4, 8, 3, padding=1), cr.nn.BatchNorm2d(8), cr.nn.ReLU(), cr.nn.MaxPool2d(2),
        cr.nn.Flatten(), cr.nn.Dropout(0.25), cr.nn.Linear(32, 10))
    theirs = tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(4, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Dropout(0.25), tnn.Linear(32, 10))
    return ours, theirs, (6, 1, 8, 8)


def _train_a_little(model, shape):
    """A few eager SGD steps, so weights and running statistics are not the initial ones."""
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = cr.tensor(rng.standard_normal(shape).astype(np.float32) + 0.5)
        loss = cr.cross_entropy(model(x), rng.integers(0, 3, shape[0]))
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("pair", [mlp_pair, cnn_pair], ids=["mlp", "cnn-batchnorm"])
def test_chainrule_to_pytorch_through_safetensors(tmp_path, pair):
    cr.manual_seed(0)
    ours, theirs, shape = pair()
    _train_a_little(ours, shape)
    path = tmp_path / "model.safetensors"
    cr.save(ours.state_dict(), path)
    state = st_torch.load_file(str(path))
    assert sorted(state) == sorted(ours.state_dict())
    theirs.load_state_dict(state)                       # strict: every name matches
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    if "num_batches_tracked" in " ".join(state):
        assert state["1.num_batches_tracked"].dtype == torch.int64
        assert int(state["1.num_batches_tracked"]) == 3


@pytest.mark.parametrize("pair", [mlp_pair, cnn_pair], ids=["mlp", "cnn-batchnorm"])
def test_pytorch_to_chainrule_through_safetensors(tmp_path, pair):
    torch.manual_seed(0)
    ours, theirs, shape = pair()
    with torch.no_grad():                               # running statistics of its own
        theirs.train()
        for _ in range(3):
            theirs(torch.randn(*shape) + 0.5)
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(theirs.state_dict(), str(path))
    ours.load_state_dict(cr.load(path))
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    # and compiled, with a free batch size
    xp = cr.placeholder((None,) + shape[1:], dtype=np.float32, name="x")
    np.testing.assert_allclose(cr.function([xp], ours(xp))(x), expected, rtol=1e-5, atol=1e-6)


def test_a_square_pytorch_linear_loads_untransposed():
    # the bug this layout fixes: a (n, n) weight loaded silently transposed
    torch.manual_seed(0)
    theirs = tnn.Linear(4, 4)
    ours = cr.nn.Linear(4, 4)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)


def test_the_coming_from_pytorch_page_runs_as_written():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "pytorch.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 3
    namespace: dict = {}
    exec(blocks[0], namespace)                           # noqa: S102  (our own docs)
    exec(blocks[2], namespace)                           # noqa: S102
    assert "def f(x, y" in namespace["step"].source
    assert namespace["predict"](np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)
