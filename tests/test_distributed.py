"""Data-parallel training over MPI gives the weights one process gives (same global batch).

Every launch runs under ``python -m mpi4py`` (a rank that raises aborts the job instead of
hanging it) and inside a timeout.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")
MPIEXEC = Path(sys.executable).parent / "mpiexec"
if not MPIEXEC.exists():
    pytest.skip("no mpiexec beside the venv's python (pip install 'chainrule[mpi]')",
                allow_module_level=True)

WORKER = Path(__file__).with_name("distributed_worker.py")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")


def launch(n: int, out: Path, *args: str, env: dict = ENV, timeout: float = 60):
    cmd = [str(MPIEXEC), "-n", str(n), "--oversubscribe", sys.executable, "-m", "mpi4py",
           str(WORKER), str(out), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def reference(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "ref.npz"
    subprocess.run([sys.executable, str(WORKER), str(out), *args], env=ENV, check=True,
                   timeout=60)
    return dict(np.load(out))


@pytest.mark.parametrize("ranks,mode,optimizer,dtype", [
    (1, "eager", "sgd", "float64"),
    (2, "eager", "sgd", "float64"),
    (2, "compiled", "adam", "float64"),
    (4, "eager", "adam", "float64"),
    (4, "compiled", "sgd", "float64"),
    (2, "compiled", "adam", "float32"),
    (2, "eager", "sgd", "float32"),
])
def test_ranks_reach_the_single_process_weights(tmp_path, ranks, mode, optimizer, dtype):
    args = (mode, optimizer, dtype)
    want = reference(tmp_path, *args)
    r = launch(ranks, tmp_path / "got.npz", *args)
    assert r.returncode == 0, r.stderr[-2000:]
    got = dict(np.load(tmp_path / "got.npz"))
    rtol = 1e-9 if dtype == "float64" else 1e-4
    for name, w in want.items():
        assert got[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=rtol * 1e-2, err_msg=name)
    # the test can fail: 50 steps moved the weights a long way from where they started
    assert not np.allclose(want["W1"], reference_start(dtype)["W1"], atol=1e-2)


def reference_start(dtype: str) -> dict:
    rng = np.random.default_rng(0)
    rng.standard_normal((200, 6))
    rng.integers(0, 3, 200)
    return {"W1": rng.standard_normal((6, 16)).astype(dtype) * 0.5}


def test_a_rank_that_raises_ends_the_job_quickly(tmp_path):
    start = time.monotonic()
    r = launch(2, tmp_path / "got.npz", "eager", "sgd", "float64",
               env=dict(ENV, FAIL_AT="5"), timeout=30)
    assert r.returncode != 0
    assert time.monotonic() - start < 10 + 5   # the launch itself takes a second or two
    assert "rank 1 fails at step 5 on purpose" in r.stderr
    assert not (tmp_path / "got.npz").exists()


def test_dataloader_shards_are_disjoint_and_make_the_global_batch():
    import chainrule as cr

    X = np.arange(23)
    full = [xb for xb, _ in cr.data.DataLoader(X, X, batch_size=8, seed=3)]
    for world in (2, 3, 4):
        shards = [list(cr.data.DataLoader(X, X, batch_size=8, seed=3, rank=r,
                                          world_size=world)) for r in range(world)]
        for b, batch in enumerate(full):
            parts = [shards[r][b][0] for r in range(world)]
            assert sorted(np.concatenate(parts).tolist()) == sorted(batch.tolist())
            assert np.concatenate(parts).tolist() == batch.tolist()
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_dataloader_rejects_a_rank_outside_the_world():
    import chainrule as cr

    with pytest.raises(cr.ChainruleError, match="rank 2 is not in a world of 2"):
        cr.data.DataLoader(np.arange(4), np.arange(4), batch_size=2, rank=2, world_size=2)


def test_world_of_one_without_init():
    import chainrule as cr

    assert cr.distributed.world_size() >= 1
    w = cr.Variable(np.ones(3))
    (w * 2.0).sum().backward()
    cr.distributed.allreduce_gradients([w], weight=0.5)
    assert w.grad.numpy().tolist() == [1.0, 1.0, 1.0]


# -- chainrule train --workers N --------------------------------------------------------------
CHAINRULE = [sys.executable, "-m", "chainrule"]
SMALL = ["--hidden", "16", "--no-progress"]


def train(out: Path, *args: str, workers: int = 1, timeout: float = 120):
    cmd = [*CHAINRULE, "train", "--out", str(out), *SMALL, *args]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def weights(out: Path) -> dict:
    import chainrule as cr

    return cr.load(out / "checkpoint.npz")["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("mode", ["--compiled", "--eager"])
def test_train_workers_reaches_the_one_process_weights(tmp_path, mode):
    one = train(tmp_path / "one", "--epochs", "2", mode)
    two = train(tmp_path / "two", "--epochs", "2", mode, workers=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "on 2 MPI ranks" in two.stdout
    assert two.stdout.count("epoch   2/2") == 1          # rank 0 alone prints
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    import chainrule as cr

    assert int(cr.load(tmp_path / "two" / "checkpoint.npz")["world_size"]) == 2


@pytest.mark.parametrize("first,then", [(2, 1), (1, 2)])
def test_resume_with_another_number_of_workers(tmp_path, first, then):
    whole = train(tmp_path / "whole", "--epochs", "2")
    assert whole.returncode == 0, whole.stderr
    part = train(tmp_path / "part", "--epochs", "1", workers=first)
    assert part.returncode == 0, part.stderr
    rest = subprocess.run([*CHAINRULE, "train", "--out", str(tmp_path / "part"), "--resume",
                           "--epochs", "2", "--no-progress"]
                          + (["--workers", str(then)] if then > 1 else []),
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert rest.returncode == 0, rest.stderr
    assert_same_weights(tmp_path / "whole", tmp_path / "part")


def _start(out: Path) -> subprocess.Popen:
    cmd = [*CHAINRULE, "train", "--out", str(out), *SMALL, "--epochs", "500", "--workers", "2"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 90
    while not (out / "checkpoint.npz").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint after 90 s"
        time.sleep(0.1)
    return proc


def _rank_pids(out: Path, rank: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env and str(out).encode() in cmdline:
            pids.append(int(d.name))
    return pids


def test_a_killed_rank_ends_the_run_and_the_checkpoint_stays(tmp_path):
    import chainrule as cr

    out = tmp_path / "run"
    proc = _start(out)
    pids = _rank_pids(out, 1)
    assert pids
    start = time.monotonic()
    for pid in pids:
        os.kill(pid, 9)
    proc.communicate(timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode != 0
    state = cr.load(out / "checkpoint.npz")
    assert int(state["epoch"]) >= 1
    again = subprocess.run([*CHAINRULE, "train", "--out", str(out), "--resume", "--epochs",
                            str(int(state["epoch"]) + 1), "--no-progress"],
                           env=ENV, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


def test_ctrl_c_on_the_launcher_stops_every_rank_and_saves(tmp_path):
    import signal

    import chainrule as cr

    out = tmp_path / "run"
    proc = _start(out)
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)        # what a terminal's Ctrl-C does
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode == 130, stderr
    assert "--resume" in stdout
    assert "Traceback" not in stderr
    assert not _rank_pids(out, 0) and not _rank_pids(out, 1)
    state = cr.load(out / "checkpoint.npz")
    assert int(state["epoch"]) >= 1


def test_workers_without_a_positive_count_is_a_usage_error(tmp_path):
    r = subprocess.run([*CHAINRULE, "train", "--workers", "0", "--out", str(tmp_path / "x")],
                       env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "chainrule train: error: argument --workers: must be at least 1, got 0")
