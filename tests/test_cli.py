"""CLI end to end on a small 2-D problem: artifacts, eval, graph, Ctrl-C and resume.

The tests from ``test_never_loses_a_run`` on drive the real console script in a subprocess
(``.venv/bin/chainrule``, or ``python -m chainrule`` where it is not installed), as a user
would: signals, pipes, exit codes and the absence of tracebacks only show there.
"""
import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli.main import main
from chainrule.cli.training import Trainer

SMALL = ["--dataset", "moons", "--hidden", "16", "--batch-size", "32", "--lr", "0.05",
         "--no-progress"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def model_arrays(run_dir):
    return cr.load(Path(run_dir) / "checkpoint.npz")["model"]


def test_train_writes_every_artifact_then_eval_and_graph(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best test accuracy" in printed and "compiled steps" in printed
    for name in ("metrics.csv", "checkpoint.npz", "curves.png", "decision_boundary.png",
                 "graph.dot"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "graph.dot").read_text().lstrip().startswith(("digraph", "strict digraph"))
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc",
                            "seconds"}
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["test_acc"]) > 0.8

    assert main(["eval", str(out / "checkpoint.npz")]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy {100 * float(rows[-1]['test_acc']):.2f}%" in printed
    assert "true\\pred" in printed

    assert main(["graph", "--hidden", "3", "--out", str(tmp_path / "g.dot")]) == 0
    assert "digraph" in (tmp_path / "g.dot").read_text()


def test_eager_and_compiled_runs_agree(tmp_path):
    main(["train", *SMALL, "--epochs", "2", "--out", str(tmp_path / "c")])
    main(["train", *SMALL, "--epochs", "2", "--eager", "--out", str(tmp_path / "e")])
    compiled, eager = model_arrays(tmp_path / "c"), model_arrays(tmp_path / "e")
    for key in compiled:
        np.testing.assert_allclose(compiled[key], eager[key], rtol=1e-4, atol=1e-5)


def test_resume_after_epoch_and_after_ctrl_c_equals_uninterrupted(tmp_path, capsys):
    ref = tmp_path / "ref"
    assert main(["train", *SMALL, "--epochs", "3", "--out", str(ref)]) == 0

    # stop at an epoch boundary, then continue to 3 epochs
    split = tmp_path / "split"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(split)]) == 0
    assert main(["train", "--epochs", "3", "--out", str(split), "--resume"]) == 0

    # Ctrl-C in the middle of epoch 2
    stopped = tmp_path / "stopped"
    def interrupt(epoch, batch):
        if epoch == 1 and batch == 3:
            raise KeyboardInterrupt
    config = {"dataset": "moons", "hidden": [16], "batch_size": 32, "lr": 0.05, "epochs": 3}
    trainer = Trainer(config, stopped, log=lambda text: None, on_step=interrupt)
    with pytest.raises(Exception, match="checkpoint saved"):
        trainer.fit()
    state = cr.load(stopped / "checkpoint.npz")
    assert state["epoch"] == 1 and state["loader"]["batch"] == 3
    assert main(["train", "--epochs", "3", "--out", str(stopped), "--resume"]) == 0

    expected = model_arrays(ref)
    for run in (split, stopped):
        got = model_arrays(run)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
    ref_rows = (ref / "metrics.csv").read_text().splitlines()
    split_rows = (split / "metrics.csv").read_text().splitlines()
    # same losses and accuracies per epoch (seconds differ)
    strip = lambda lines: [line.rsplit(",", 1)[0] for line in lines]
    assert strip(split_rows) == strip(ref_rows)


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_the_last_checkpoint(
        tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    before = model_arrays(out)
    capsys.readouterr()
    real = Trainer._build_steps

    def diverging_steps(self):
        step, forward = real(self)

        def diverging(xb, yb):
            _, logits = step(xb, yb)
            return float("nan"), logits

        return diverging, forward

    monkeypatch.setattr(Trainer, "_build_steps", diverging_steps)
    assert main(["train", *SMALL, "--epochs", "4", "--out", str(out), "--resume"]) != 0
    printed = capsys.readouterr()
    assert "diverged" in printed.out + printed.err and "nan" in printed.out + printed.err
    after = model_arrays(out)          # the checkpoint from before the NaN is intact
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


# -- the real console script in a subprocess ----------------------------------------------
_SCRIPT = Path(sys.executable).with_name("chainrule")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "chainrule"]
ENV = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           PYTHONWARNINGS="ignore")
TINY = ["--dataset", "moons", "--hidden", "8", "--batch-size", "64", "--lr", "0.05",
        "--no-progress"]


def run(*args, cwd, env=ENV, timeout=120):
    """``chainrule ARGS`` in ``cwd``; returns the finished process (text output)."""
    return subprocess.run([*COMMAND, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def assert_one_line_error(proc, status, *fragments):
    """Failed with ``status``, no traceback, and the last stderr line says it all."""
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("chainrule"), proc.stderr
    for fragment in fragments:
        assert fragment in last, (fragment, proc.stderr)


def test_never_loses_a_run_out_with_a_checkpoint_needs_resume_or_force(tmp_path):
    out = tmp_path / "run"
    assert run("train", *TINY, "--epochs", 3, "--out", out, cwd=tmp_path).returncode == 0
    metrics = (out / "metrics.csv").read_text()
    checkpoint = (out / "checkpoint.npz").read_bytes()
    assert len(metrics.splitlines()) == 4

    again = run("train", *TINY, "--epochs", 1, "--out", out, cwd=tmp_path)
    assert_one_line_error(again, 2, "--resume", "--force", str(out))
    assert (out / "metrics.csv").read_text() == metrics             # untouched
    assert (out / "checkpoint.npz").read_bytes() == checkpoint

    forced = run("train", *TINY, "--epochs", 1, "--out", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    (aside,) = out.glob("replaced-*")                                 # kept, not deleted
    assert (aside / "metrics.csv").read_text() == metrics
    assert (aside / "checkpoint.npz").read_bytes() == checkpoint
    assert len((out / "metrics.csv").read_text().splitlines()) == 2
    assert cr.load(out / "checkpoint.npz")["epoch"] == 1


def test_listed_artifacts_are_this_runs_only(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = run("train", *TINY, "--epochs", 1, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.strip().splitlines()[-1]
    assert listed.startswith(f"artifacts in {out}:")
    names = listed.split(": ", 1)[1].split(", ")
    assert "notes.txt" not in names and "checkpoint.npz" in names
    assert all((out / name).is_file() for name in names)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_closed_pipe_does_not_stop_training(tmp_path):
    # `chainrule train ... | head -n 1`: the first line comes before training starts, so
    # every epoch line after it is written into a pipe whose reader has gone (EPIPE).
    out = tmp_path / "run"
    epochs = 200
    proc = subprocess.Popen(
        [*COMMAND, "train", *TINY, "--batch-size", "512", "--epochs", str(epochs), "--out",
         str(out)], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()                              # what `head -n 1` does
        stderr = proc.stderr.read()
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first.startswith("Sequential")
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert cr.load(out / "checkpoint.npz")["epoch"] == epochs
    assert (out / "curves.png").is_file()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_and_resume_continues(tmp_path, signum):
    out = tmp_path / "run"
    proc = subprocess.Popen([*COMMAND, "train", *TINY, "--epochs", "100000", "--out", str(out)],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):        # wait until training is under way (a checkpoint exists)
            if (out / "checkpoint.npz").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert f"stopped by {signal.Signals(signum).name}" in stdout
    assert "checkpoint saved" in stdout and "--resume" in stdout
    done = cr.load(out / "checkpoint.npz")["epoch"]
    assert done >= 1
    resumed = run("train", "--out", out, "--resume", "--epochs", done + 1, "--no-progress",
                  cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert cr.load(out / "checkpoint.npz")["epoch"] == done + 1


def _not_a_checkpoint(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.arange(3))
    return path


def _garbage(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a zip file")
    return path


def _a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    return path


def _read_only(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir(mode=0o500)
        return folder / "run"
    return Path("/sys/chainrule-test-run")     # root may write anywhere but into sysfs


# (arguments, exit status, what the one line must say); `{}` makers run in tmp_path.
USAGE_ERRORS = {
    "eval-missing-file": (["eval", "missing.npz"], 1, ["missing.npz", "no such file"]),
    "eval-npz-not-checkpoint": (["eval", _not_a_checkpoint], 1, ["not a checkpoint"]),
    "eval-garbage": (["eval", _garbage], 1, ["garbage.npz"]),
    "eval-folder": (["eval", "."], 1, ["folder"]),
    "graph-missing-file": (["graph", "missing.npz", "--out", "g.dot"], 1, ["no such file"]),
    "graph-npz-not-checkpoint": (["graph", _not_a_checkpoint, "--out", "g.dot"], 1,
                                 ["not a checkpoint"]),
    "graph-out-in-missing-folder": (["graph", "--out", "nope/g.dot"], 2, ["nope"]),
    "out-is-a-file": (["train", *TINY, "--out", _a_file], 2, ["is a file"]),
    "out-under-a-file": (["train", *TINY, "--out", lambda p: _a_file(p) / "run"], 2,
                         ["is a file"]),
    "out-read-only": (["train", *TINY, "--out", _read_only], 2, ["cannot be written"]),
    "hidden-negative": (["train", "--hidden", "-4"], 2, ["--hidden", "-4"]),
    "hidden-zero": (["train", "--hidden", "0"], 2, ["--hidden"]),
    "seed-negative": (["train", "--seed", "-1"], 2, ["--seed", "-1"]),
    "epochs-zero": (["train", "--epochs", "0"], 2, ["--epochs"]),
    "epochs-negative": (["train", "--epochs", "-3"], 2, ["--epochs", "-3"]),
    "batch-size-zero": (["train", "--batch-size", "0"], 2, ["--batch-size"]),
    "lr-nan": (["train", "--lr", "nan"], 2, ["--lr", "finite"]),
    "lr-inf": (["train", "--lr", "inf"], 2, ["--lr", "finite"]),
    "lr-negative": (["train", "--lr", "-0.1"], 2, ["--lr", "positive"]),
    "momentum-nan": (["train", "--optimizer", "sgd", "--momentum", "nan"], 2, ["--momentum"]),
    "mnist-without-data-dir": (["train", "--dataset", "mnist"], 2, ["--data-dir"]),
    "mnist-empty-data-dir": (["train", "--dataset", "mnist", "--data-dir", "."], 1,
                             ["train-images-idx3-ubyte"]),
    "cnn-on-points": (["train", "--model", "cnn", "--dataset", "moons"], 2, ["image"]),
    "resume-nothing": (["train", "--resume", "--out", "nowhere"], 2, ["nothing to resume"]),
    "resume-no-runs": (["train", "--resume"], 2, ["nothing to resume"]),
    "resume-and-force": (["train", "--resume", "--force"], 2, ["--force"]),
    "unknown-dataset": (["train", "--dataset", "cifar"], 2, ["--dataset"]),
}


@pytest.fixture(scope="module")
def usage_errors(tmp_path_factory):
    """Run every case of ``USAGE_ERRORS`` at once (each is a separate process)."""
    procs = {}
    for name, (args, _, _) in USAGE_ERRORS.items():
        cwd = tmp_path_factory.mktemp(name)
        argv = [str(a(cwd)) if callable(a) else a for a in args]
        procs[name] = (cwd, subprocess.Popen([*COMMAND, *argv], cwd=cwd, env=ENV, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = {}
    for name, (cwd, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[name] = (cwd, subprocess.CompletedProcess(proc.args, proc.returncode, stdout,
                                                          stderr))
    return results


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_a_mistake_gets_one_line_and_no_traceback(usage_errors, case):
    _, status, fragments = USAGE_ERRORS[case]
    cwd, proc = usage_errors[case]
    assert_one_line_error(proc, status, *fragments)
    if status == 2 and USAGE_ERRORS[case][0][0] == "train":
        assert not (cwd / "runs").exists()           # refused before anything was written


def test_resume_says_what_it_ignores_and_refuses_fewer_epochs(tmp_path):
    out = tmp_path / "run"
    assert run("train", *TINY, "--epochs", 2, "--out", out, cwd=tmp_path).returncode == 0
    fewer = run("train", "--out", out, "--resume", "--epochs", 1, cwd=tmp_path)
    assert_one_line_error(fewer, 2, "already trained 2 epochs", "--epochs 1")

    proc = run("train", "--out", out, "--resume", "--epochs", 3, "--lr", 0.5, "--dataset",
               "spiral", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ignoring --dataset spiral (the run's: moons), --lr 0.5 (the run's: 0.05)" in (
        proc.stderr)
    config = cr.load(out / "checkpoint.npz")["config"]
    assert config["lr"] == 0.05 and config["dataset"] == "moons" and config["epochs"] == 3

    done = run("train", "--out", out, "--resume", cwd=tmp_path)
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert cr.load(out / "checkpoint.npz")["epoch"] == 3


def test_ignored_and_unused_options_are_named(tmp_path):
    proc = run("train", *TINY, "--momentum", 0.9, "--channels", 4, "--epochs", 1, "--out",
               tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ignoring --momentum" in proc.stderr and "--channels" in proc.stderr

    graph = run("graph", "--hidden", 7, "--out", "built.dot", cwd=tmp_path)
    assert graph.returncode == 0, graph.stderr
    assert "(2, 7)" in (tmp_path / "built.dot").read_text() or "(7, 2)" in (
        tmp_path / "built.dot").read_text()
    drawn = run("graph", tmp_path / "run" / "checkpoint.npz", "--hidden", 7, "--out", "ck.dot",
                cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert "ignoring --hidden 7" in drawn.stderr


def test_digits_without_scikit_learn_fails_and_says_what_to_install(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "digits"
    assert run("train", "--hidden", 4, "--epochs", 1, "--eager", "--no-progress", "--out", out,
               cwd=tmp_path).returncode == 0
    blocker = tmp_path / "no_sklearn"
    blocker.mkdir()
    (blocker / "sklearn.py").write_text("raise ImportError('scikit-learn is not installed')\n")
    env = dict(ENV, PYTHONPATH=os.pathsep.join([str(blocker), ENV["PYTHONPATH"]]))
    for args in (["train", "--epochs", 1, "--out", tmp_path / "fresh"],
                 ["eval", out / "checkpoint.npz"]):
        proc = run(*args, cwd=tmp_path, env=env)
        assert_one_line_error(proc, 1, "pip install 'chainrule[train]'")
    assert not (tmp_path / "fresh" / "checkpoint.npz").exists()     # no spiral run instead


def test_version_help_and_python_dash_m(tmp_path):
    version = run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"chainrule {cr.__version__}"
    helped = subprocess.run([sys.executable, "-m", "chainrule", "train", "--help"], cwd=tmp_path,
                            env=ENV, capture_output=True, text=True, timeout=60, check=False)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: chainrule train")
    for default in ("(default: 30", "(default: 64)", "(default: digits)", "(default: adam)",
                    "sgd 0.07"):
        assert default in " ".join(helped.stdout.split()), default


def test_drawings_name_the_users_model_not_the_console_script(tmp_path):
    out = tmp_path / "run"
    assert run("train", *TINY, "--epochs", 1, "--out", out, cwd=tmp_path).returncode == 0
    assert run("graph", "--out", "g.dot", cwd=tmp_path).returncode == 0
    model_py = (out / "model.py").read_text()
    assert "nn.Linear(2, 8)" in model_py
    for dot in (out / "graph.dot", tmp_path / "g.dot"):
        text = dot.read_text()
        assert "model.py:" in text, text
        assert "sys.exit" not in text and "chainrule:" not in text
    # the saved model.py is the model: it runs on its own and has the checkpoint's weights
    namespace = {}
    exec(compile(model_py, str(out / "model.py"), "exec"), namespace)  # noqa: S102 our file
    state = cr.load(out / "checkpoint.npz")["model"]
    namespace["model"].load_state_dict(state)
    assert sorted(namespace["model"].state_dict()) == sorted(state)


# -- convolutional runs: --model cnn on digits images and on MNIST IDX files ------------------
def _fake_mnist(folder, n_train=96, n_test=32):
    rng = np.random.default_rng(0)
    for kind, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        for stem, array in ((f"{kind}-images-idx3-ubyte", images),
                            (f"{kind}-labels-idx1-ubyte", labels)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(
                int(d).to_bytes(4, "big") for d in array.shape)
            (folder / stem).write_bytes(header + array.tobytes())
    return folder


def test_image_datasets_come_as_nchw_for_a_cnn(tmp_path):
    data = _fake_mnist(tmp_path)
    flat = cr.data.load_dataset("mnist", data_dir=data)
    images = cr.data.load_dataset("mnist", data_dir=data, images=True)
    assert flat.X_train.shape == (96, 784) and images.X_train.shape == (96, 1, 28, 28)
    assert images.sample_shape == (1, 28, 28) and images.num_features == 784
    np.testing.assert_array_equal(images.X_test.reshape(32, -1), flat.X_test)
    with pytest.raises(cr.ChainruleError, match="not an image dataset"):
        cr.data.load_dataset("moons", images=True)
    if importlib.util.find_spec("sklearn") is not None:
        X_train, _, X_test, _ = cr.data.digits(images=True)
        assert X_train.shape[1:] == (1, 8, 8) and len(X_train) + len(X_test) == 1797


def test_train_cnn_on_mnist_idx_files_then_eval(tmp_path):
    (tmp_path / "mnist").mkdir()
    data = _fake_mnist(tmp_path / "mnist")
    out = tmp_path / "run"
    proc = run("train", "--model", "cnn", "--channels", 4, 8, "--dataset", "mnist", "--data-dir",
               data, "--epochs", 1, "--batch-size", 32, "--no-progress", "--out", out,
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    model_py = (out / "model.py").read_text()
    assert "nn.Conv2d(1, 4, 3, padding=1)" in model_py and "nn.Linear(392, 10)" in model_py
    evaluated = run("eval", out / "checkpoint.npz", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "mnist test: accuracy" in evaluated.stdout and "(" in evaluated.stdout


def test_train_cnn_on_digits_eager_and_compiled_agree(tmp_path):
    pytest.importorskip("sklearn")
    runs = {}
    for mode in ("--compiled", "--eager"):
        out = tmp_path / mode.strip("-")
        proc = run("train", "--model", "cnn", "--channels", 4, 8, "--epochs", 1, mode,
                   "--no-progress", "--out", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert f"{mode.strip('-')} steps" in proc.stdout          # no silent fallback
        runs[mode] = model_arrays(out)
    assert "nn.Linear(32, 10)" in (tmp_path / "eager" / "model.py").read_text()
    for key, value in runs["--compiled"].items():
        np.testing.assert_allclose(value, runs["--eager"][key], rtol=1e-4, atol=1e-5)
