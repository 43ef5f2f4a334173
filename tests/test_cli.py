"""CLI end to end on a small 2-D problem: artifacts, eval, graph, Ctrl-C and resume."""
import csv
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


def test_sigint_in_a_subprocess_saves_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "chainrule.cli.main", "train", *SMALL, "--epochs", "100000",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # wait until training is under way (the first epoch's checkpoint exists)
        for _ in range(600):
            if (out / "checkpoint.npz").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "checkpoint saved" in stdout and "Traceback" not in stderr
    assert cr.load(out / "checkpoint.npz")["epoch"] >= 1


def test_hinge_sgd_and_missing_scikit_learn_fallback(tmp_path, monkeypatch, capsys):
    import chainrule.cli.training as training
    real_find_spec = training.importlib.util.find_spec
    monkeypatch.setattr(training.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sklearn" else real_find_spec(name, *a))
    out = tmp_path / "run"
    assert main(["train", "--loss", "hinge", "--optimizer", "sgd", "--momentum", "0.9",
                 "--lr", "0.05", "--epochs", "3", "--eager", "--no-progress",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pip install scikit-learn" in printed and "spiral" in printed
    state = cr.load(out / "checkpoint.npz")
    assert state["config"]["dataset"] == "spiral" and state["config"]["loss"] == "hinge"
    assert (out / "decision_boundary.png").stat().st_size > 0


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
            loss, logits = step(xb, yb)
            return float("nan"), logits

        return diverging, forward

    monkeypatch.setattr(Trainer, "_build_steps", diverging_steps)
    assert main(["train", *SMALL, "--epochs", "4", "--out", str(out), "--resume"]) != 0
    printed = capsys.readouterr()
    assert "diverged" in printed.out + printed.err and "nan" in printed.out + printed.err
    after = model_arrays(out)          # the checkpoint from before the NaN is intact
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
