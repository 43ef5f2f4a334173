"""ONNX export, verified by onnxruntime as the real client.

(a) every row of the op table exports at its drawn shapes, passes ``onnx.checker`` with
``full_check`` and runs in onnxruntime with chainrule's values; (b) models and functions export
with a free batch dimension and agree at batch sizes 1, 7 and 64; (c) every primitive of the
registry has an ONNX form or a stated reason why not, and an op without one is refused by name.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_table import case, rows

import chainrule as cr
from gates import Multiply

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="pip install 'chainrule[onnx]'")

FEW = settings(max_examples=6, deadline=None, derandomize=True,
               suppress_health_check=list(HealthCheck))
BATCHES = (1, 7, 64)


def _session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _export_and_check(fn, args, path, **kw):
    import onnx

    proto = cr.onnx.export(fn, args, path, **kw)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return proto


def _close(got, want, dtype, atol64=1e-12):
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind in "fc":
        atol = atol64 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)
    else:
        np.testing.assert_array_equal(got, want)


def _run(session, names, arrays):
    return session.run(None, dict(zip(names, arrays)))


# -- (a) every op of the table, at the table's shapes (every dimension fixed) -------------------
@needs_onnx
@pytest.mark.parametrize("op", rows("onnx"))
@FEW
@given(data=st.data())
def test_op_table_rows_run_in_onnxruntime(op, data, tmp_path_factory):
    if not op.symbolic:
        pytest.skip("the row does not run on placeholders")
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    path = tmp_path_factory.mktemp("onnx") / f"{op.name}.onnx"
    _export_and_check(lambda *xs: op.cr(*xs, **kw), tuple(arrays), path, dynamic_batch=False)
    names = [f"input_{i}" for i in range(len(arrays))] if len(arrays) > 1 else ["input"]
    (got,) = _run(_session(path), names, arrays)
    want = op.cr(*[cr.tensor(a) for a in arrays], **kw).numpy()
    _close(got, want, np.float64)


# -- (b) a free batch dimension ------------------------------------------------------------------
def _mlp(activation, head=None, dtype=np.float32):
    cr.manual_seed(0)
    act = {"relu": cr.nn.ReLU, "tanh": cr.nn.Tanh, "sigmoid": cr.nn.Sigmoid}[activation]
    layers = [cr.nn.Linear(5, 16, dtype=dtype), act(), cr.nn.Dropout(0.5),
              cr.nn.Linear(16, 8, dtype=dtype), act(), cr.nn.Linear(8, 3, dtype=dtype)]
    model = cr.nn.Sequential(*layers).eval()      # the reference: dropout off
    if head is None:
        return model
    return lambda x: head(model(x), axis=-1)


def _labels(rng, n):
    return rng.integers(0, 4, size=n).astype(np.int64)


# name, model or function, input makers (rng, batch) -> array
BATCHED = [
    ("mlp_relu", lambda: _mlp("relu"), [lambda r, n: r.standard_normal((n, 5))]),
    ("mlp_tanh", lambda: _mlp("tanh"), [lambda r, n: r.standard_normal((n, 5))]),
    ("mlp_sigmoid", lambda: _mlp("sigmoid"), [lambda r, n: r.standard_normal((n, 5))]),
    ("mlp_softmax", lambda: _mlp("relu", cr.softmax), [lambda r, n: r.standard_normal((n, 5))]),
    ("mlp_log_softmax", lambda: _mlp("tanh", cr.log_softmax),
     [lambda r, n: r.standard_normal((n, 5))]),
    ("elementwise", lambda: lambda x, y: cr.where(
        x > y, cr.exp(x) * 2.0 - cr.sqrt(cr.abs(y)), cr.maximum(x, y) / (1.0 + y * y))
        + cr.clip(x, -0.5, 0.5) + x ** 3 + cr.log(1.0 + y ** 2) - cr.minimum(x, 0.1),
     [lambda r, n: r.standard_normal((n, 4)), lambda r, n: r.standard_normal((n, 4))]),
    ("reductions", lambda: lambda x: cr.concatenate(
        [cr.sum(x, axis=1), cr.mean(x, axis=-1), cr.max(x, axis=(1, 2)).reshape(-1, 1),
         cr.min(x, axis=2)[:, :1]], axis=1) + cr.mean(x) - cr.sum(x, axis=0).max(),
     [lambda r, n: r.standard_normal((n, 3, 2))]),
    ("batch_mean_keepdims", lambda: lambda x: x - cr.mean(x, axis=0, keepdims=True),
     [lambda r, n: r.standard_normal((n, 3))]),
    ("shapes", lambda: lambda x: cr.stack(
        [x.transpose((0, 2, 1)).reshape(-1, 6), x[:, ::-1].reshape(-1, 6)], axis=-1)[:, 1:, None],
     [lambda r, n: r.standard_normal((n, 2, 3))]),
    ("indexing", lambda: lambda x: cr.concatenate(
        [x[:, [0, 2, 2]], x[..., -1:], x[:, np.array([True, False, True, False])]], axis=1)
        + x[:, 1][:, None],
     [lambda r, n: r.standard_normal((n, 4))]),
    ("losses", lambda: lambda x, labels, p, t: cr.stack([
        cr.cross_entropy(x, labels), cr.cross_entropy(x, labels, reduction="sum"),
        cr.hinge_loss(x, labels), cr.binary_cross_entropy(cr.sigmoid(p), t),
        cr.mse_loss(p, t)]) + cr.cross_entropy(x, labels, reduction="none").sum(),
     [lambda r, n: r.standard_normal((n, 4)), _labels,
      lambda r, n: r.standard_normal((n, 3)), lambda r, n: r.uniform(0, 1, (n, 3))]),
    ("activations", lambda: lambda x: cr.stack([
        cr.gelu(x), cr.gelu(x, approximate="tanh"), cr.leaky_relu(x, 0.1), cr.sin(x),
        cr.cos(x), cr.log1p(cr.abs(x)), cr.expm1(x), cr.clip(x, x * 0.5, 0.3)], axis=-1),
     [lambda r, n: r.standard_normal((n, 5))]),
    ("statistics", lambda: lambda x: cr.concatenate([
        cr.logsumexp(x, axis=1), cr.var(x, axis=-1), cr.std(x, axis=1, ddof=0),
        cr.norm(x, axis=1), cr.take_along_axis(x, cr.argmax(x, axis=1, keepdims=True), 1)[:, 0],
        cr.argmin(x, axis=1).astype(x.dtype)], axis=0),
     [lambda r, n: r.standard_normal((n, 4))]),
    ("axes", lambda: lambda x: cr.concatenate([
        cr.flatten(cr.pad(x, (1, 2, 0, -1)), 1), cr.squeeze(cr.unsqueeze(x, 1), 1)[:, 0],
        cr.zeros_like(x)[:, 0] + 1.0], axis=1),
     [lambda r, n: r.standard_normal((n, 2, 3))]),
    ("embedding_and_train_mode_batch_norm", lambda: lambda i, x: cr.concatenate([
        cr.embedding(i, np.linspace(-1, 1, 12).reshape(4, 3).astype(x.dtype)).reshape(-1, 6),
        cr.batch_norm(x, np.zeros(3, x.dtype), np.ones(3, x.dtype), np.full(3, 2.0, x.dtype),
                      np.full(3, 0.5, x.dtype), training=True).reshape(-1, 6)], axis=1),
     [lambda r, n: r.integers(0, 4, (n, 2)), lambda r, n: r.standard_normal((n, 3, 2)) * 3 + 1]),
    ("einsum", lambda: lambda x: cr.einsum("bi,ij->bj", x, np.linspace(-1, 1, 12)
                                           .reshape(4, 3).astype(x.dtype)),
     [lambda r, n: r.standard_normal((n, 4))]),
    ("cnn_functions", lambda: _cnn_functions(),
     [lambda r, n: r.standard_normal((n, 3, 9, 8))]),
    ("cnn_modules", lambda: _cnn_modules(), [lambda r, n: r.standard_normal((n, 3, 8, 8))]),
    ("embedding_modules", lambda: _embedding_modules(), [lambda r, n: r.integers(0, 10, (n, 4))]),
    ("gradient_graph", lambda: _gradient_of_a_layer(),
     [lambda r, n: r.standard_normal((n, 3))]),
]


def _cnn_functions():
    rng = np.random.default_rng(3)
    params: dict = {}

    def cnn(x):
        dt = x.dtype
        count = iter(range(100))

        def p(*shape):      # the same parameters on every call
            key = (next(count), dt)
            if key not in params:
                params[key] = cr.tensor(rng.standard_normal(shape).astype(dt))
            return params[key]
        h = cr.relu(cr.conv2d(x, p(4, 3, 3, 3), p(4), padding=1))
        h = cr.conv2d(h, p(6, 2, 3, 2), None, stride=(2, 1), dilation=(1, 2), groups=2)
        h = cr.batch_norm(h, p(6), cr.abs(p(6)) + 0.5, p(6), p(6), training=False)
        h = cr.dropout(cr.max_pool2d(h, 2, stride=1, padding=1), 0.5, training=False)
        h = cr.group_norm(cr.avg_pool2d(h, (2, 2), padding=1), 3, p(6), p(6))
        h = cr.layer_norm(cr.gelu(h), h.shape[-2:], p(*h.shape[-2:]), None)
        return cr.log_softmax(cr.flatten(h, 1), axis=-1)
    return cnn


def _trained_a_little(model, x):
    # a few training-mode passes move batch norm's running statistics off their start values
    for _ in range(3):
        model(cr.tensor(x))
    return model.eval()


def _cnn_modules():
    cr.manual_seed(1)
    nn = cr.nn
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding="same", groups=2, bias=False), nn.GroupNorm(4, 8), nn.GELU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(32, 16), nn.LayerNorm(16),
        nn.LeakyReLU(0.05), nn.Identity(), nn.Linear(16, 5), nn.BatchNorm1d(5))
    x = np.random.default_rng(2).standard_normal((16, 3, 8, 8)) * 2 + 0.5
    model = _trained_a_little(model, x.astype(np.float32))
    # cast once per dtype the test asks for, so the same weights serve both references
    return _per_dtype(model)


def _embedding_modules():
    cr.manual_seed(2)
    nn = cr.nn
    return _per_dtype(nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(12, 4),
                                    nn.Tanh()).eval())


def _per_dtype(model):
    import copy

    cache: dict = {}

    def run(x):
        dtype = np.dtype(x.dtype) if x.dtype.kind == "f" else np.dtype(np.float32)
        if dtype not in cache:
            cache[dtype] = copy.deepcopy(model).to(dtype)
        return cache[dtype](x)
    return run


def _gradient_of_a_layer():
    # a graph of gradients: count, broadcast and sum_to appear only in backward rules
    w = cr.Variable(np.linspace(-1.0, 1.0, 6).reshape(3, 2), name="w")
    b = cr.Variable(np.array([0.1, -0.2]), name="b")

    def grads(x):
        loss = cr.mean(cr.tanh(x @ w + b) ** 2)
        gw, gb = cr.grad(loss, [w, b], create_graph=True)
        return gw, gb
    return grads


# onnxruntime computes Erf (gelu's) in float32 only, to ~1e-7, also in a float64 model
ERF_IN_FLOAT32 = {"activations": 1e-7, "cnn_functions": 1e-7, "cnn_modules": 1e-7}


@needs_onnx
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, make, makers", BATCHED, ids=[r[0] for r in BATCHED])
def test_free_batch_dimension(name, make, makers, dtype, tmp_path):
    fn = make()
    rng = np.random.default_rng(0)

    def inputs(n):
        return [a if a.dtype.kind in "iu" else a.astype(dtype) for a in
                (np.asarray(m(rng, n)) for m in makers)]

    names = [f"in{i}" for i in range(len(makers))]
    path = tmp_path / f"{name}.onnx"
    proto = _export_and_check(fn, tuple(inputs(5)), path, input_names=names)
    for graph_input in proto.graph.input:
        assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    session = _session(path)
    for n in BATCHES:
        arrays = inputs(n)
        want = fn(*[cr.tensor(a) for a in arrays])
        want = list(want) if isinstance(want, (tuple, list)) else [want]
        got = _run(session, names, arrays)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w.numpy(), dtype, ERF_IN_FLOAT32.get(name, 1e-12))


@needs_onnx
def test_module_is_exported_in_eval_mode_and_its_modes_restored(tmp_path):
    model = _mlp("relu")
    model.train()
    model[2].eval()      # one submodule in its own mode
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    _export_and_check(model, x, tmp_path / "m.onnx")
    assert model.training and not model[2].training and model[1].training
    (got,) = _run(_session(tmp_path / "m.onnx"), ["input"], [x])
    _close(got, model.eval()(cr.tensor(x)).numpy(), np.float32)


@needs_onnx
def test_names_several_outputs_and_a_fixed_batch(tmp_path):
    import onnxruntime as ort

    x = np.ones((2, 3), np.float32)
    path = tmp_path / "two.onnx"
    _export_and_check(lambda a: (a * 2.0, cr.sum(a, axis=1)), x, path, input_names=["pixels"],
                      output_names=["double", "total"], dynamic_batch=False)
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == ["double", "total"]
    double, total = _run(session, ["pixels"], [x])
    np.testing.assert_array_equal(double, 2 * x)
    np.testing.assert_array_equal(total, [3.0, 3.0])
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument):
        _run(session, ["pixels"], [np.ones((3, 3), np.float32)])
    with pytest.raises(cr.ChainruleError, match="output_names needs 2 distinct names"):
        cr.onnx.export(lambda a: (a, a), x, path, output_names=["y"])


# -- (c) coverage and refusals -----------------------------------------------------------------
def test_every_primitive_has_an_onnx_form_or_a_reason():
    known = set(cr.onnx.FORMS) | set(cr.onnx.NO_FORM)
    missing = sorted(set(cr.ops.REGISTRY) - known)
    assert missing == [], ("a new primitive needs its ONNX form in src/chainrule/onnx/forms.py "
                           f"(or the reason it has none in NO_FORM there): {missing}")
    assert sorted(set(cr.onnx.FORMS) & set(cr.onnx.NO_FORM)) == []


@needs_onnx
def test_a_user_function_is_refused_by_name(tmp_path):
    w = cr.Variable(np.ones(3, np.float32))
    with pytest.raises(cr.ChainruleError, match=r"op function \(Multiply\) has no ONNX form") \
            as info:
        cr.onnx.export(lambda x: cr.relu(Multiply()(x, w)), np.ones((2, 3), np.float32),
                       tmp_path / "f.onnx")
    assert "test_onnx.py" in str(info.value)        # the line that built it
    assert not (tmp_path / "f.onnx").exists()


@needs_onnx
def test_opset_too_old_is_refused(tmp_path):
    with pytest.raises(cr.ChainruleError, match="opset 11 is too old"):
        cr.onnx.export(cr.relu, np.ones((1, 2), np.float32), tmp_path / "r.onnx", opset=11)


def test_missing_onnx_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)     # import onnx raises ImportError
    with pytest.raises(cr.ChainruleError, match=r"pip install 'chainrule\[onnx\]'"):
        cr.onnx.export(cr.relu, np.ones((1, 2), np.float32), tmp_path / "r.onnx")


def test_import_chainrule_does_not_import_onnx():
    code = "import sys, chainrule; print(hasattr(chainrule.onnx, 'export'), 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


# -- the command line ----------------------------------------------------------------------------
@needs_onnx
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_chainrule_export_writes_the_checkpoints_model(model, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    from chainrule.cli import report
    from chainrule.cli.main import main
    from chainrule.cli.training import Trainer, read_checkpoint

    run = tmp_path / "run"
    config = ({"dataset": "spiral", "hidden": [8]} if model == "mlp" else
              {"dataset": "digits", "model": "cnn", "channels": [4], "hidden": [8]})
    training = Trainer(dict(config, epochs=1), run, log=lambda text: None,
                       progress=report.Progress(enabled=False))
    training.fit()          # writes the checkpoint, as chainrule train does after each epoch
    path = tmp_path / "model.onnx"
    assert main(["export", str(run / "checkpoint.npz"), "--onnx", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)

    state = read_checkpoint(run / "checkpoint.npz")     # the trained weights, not a new model
    stored = [numpy_helper.to_array(t) for t in proto.graph.initializer]
    for key, value in state["model"].items():
        assert any(s.shape == value.shape and np.array_equal(s, value) for s in stored), key
    trainer = Trainer(dict(state["config"], compiled=False), tmp_path / "reference",
                      log=lambda text: None)
    trainer.model.load_state_dict(state["model"])
    trainer.model.eval()
    X = trainer.dataset.X_test
    session = _session(path)
    for n in BATCHES:
        (got,) = _run(session, ["input"], [X[:n]])
        _close(got, trainer.model(cr.tensor(X[:n])).numpy(), X.dtype)


def test_chainrule_export_errors_are_one_line(tmp_path, capsys):
    from chainrule.cli.main import main

    assert main(["export", str(tmp_path / "missing.npz"), "--onnx", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.npz" in err and "Traceback" not in err
    (tmp_path / "junk.npz").write_text("not a checkpoint")
    assert main(["export", str(tmp_path / "junk.npz"), "--onnx", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "junk.npz" in err
    assert not (tmp_path / "m.onnx").exists()


@needs_onnx
def test_a_model_that_needs_its_batch_size_exports_with_a_fixed_batch(tmp_path):
    def fn(x):
        return x.reshape(x.shape[0], -1)        # a number only when the batch is fixed

    x = np.ones((2, 3, 2), np.float32)
    with pytest.raises(TypeError) as info:
        cr.onnx.export(fn, x, tmp_path / "f.onnx")
    if hasattr(info.value, "__notes__"):
        assert "dynamic_batch=False" in info.value.__notes__[0]
    _export_and_check(fn, x, tmp_path / "f.onnx", dynamic_batch=False)
    (got,) = _run(_session(tmp_path / "f.onnx"), ["input"], [x])
    np.testing.assert_array_equal(got, x.reshape(2, 6))


@needs_onnx
def test_output_shapes_are_onnxs_own_inference(tmp_path):
    def dims(proto):
        return [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
                for o in proto.graph.output]

    x = np.ones((4, 5), np.float32)
    assert dims(_export_and_check(_mlp("relu"), x, tmp_path / "a.onnx")) == [["batch", 3]]
    # a slice of the batch is not of size 1, whatever a stand-in batch of 2 or 3 suggests
    proto = _export_and_check(lambda a: a[1::2], x, tmp_path / "b.onnx")
    assert dims(proto)[0][0] != 1
    (got,) = _run(_session(tmp_path / "b.onnx"), ["input"], [np.ones((7, 5), np.float32)])
    assert got.shape == (3, 5)


@needs_onnx
def test_a_gradient_summed_to_a_free_shape_at_run_time(tmp_path):
    # sum_to_like: like's free dim is 1 or g's size only when the model runs
    from chainrule.ops.reduction import sum_to_like

    g = np.arange(24.0).reshape(4, 2, 3)
    path = tmp_path / "s.onnx"
    _export_and_check(sum_to_like, (g, np.ones((4, 1, 3))), path, input_names=["g", "like"])
    session = _session(path)
    for n_like in (1, 4):
        like = np.ones((n_like, 1, 3))
        (got,) = _run(session, ["g", "like"], [g, like])
        want = sum_to_like(cr.tensor(g), cr.tensor(like)).numpy()
        assert want.shape == (n_like, 1, 3)
        np.testing.assert_array_equal(got, want)


@needs_onnx
@pytest.mark.parametrize("opset", [17, 21])
def test_other_opsets(opset, tmp_path):
    # opset 17 takes a reduction's axes as an attribute, 18 and later as an input
    _, make, makers = next(row for row in BATCHED if row[0] == "statistics")
    fn, rng = make(), np.random.default_rng(0)
    x = makers[0](rng, 6).astype(np.float32)
    proto = _export_and_check(fn, x, tmp_path / "s.onnx", opset=opset)
    assert proto.opset_import[0].version == opset
    (got,) = _run(_session(tmp_path / "s.onnx"), ["input"], [x])
    _close(got, fn(cr.tensor(x)).numpy(), np.float32)
