"""Training reaches its targets, and long training does not grow memory."""
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_xor_mlp_reaches_100_percent(seed):
    import xor
    assert xor.main(seed=seed) == 1.0


def test_readme_spiral_example_with_sgd_momentum_reaches_95_percent(tmp_path):
    # The README's command as a user runs it: SGD's default learning rate must train it.
    script = Path(sys.executable).with_name("chainrule")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "chainrule"]
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.run(
        [*command, "train", "--dataset", "spiral", "--hidden", "64", "64", "--activation",
         "tanh", "--loss", "hinge", "--optimizer", "sgd", "--momentum", "0.9", "--no-progress",
         "--out", str(tmp_path / "run")], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False, env=dict(os.environ, PYTHONPATH=src + os.pathsep
                              + os.environ.get("PYTHONPATH", "")))
    assert proc.returncode == 0, proc.stderr
    last = re.search(r"epoch  30/30 .* test loss \S+ acc ([\d.]+)%", proc.stdout)
    assert last and float(last.group(1)) > 95.0, proc.stdout


def test_digits_mlp_reaches_97_percent():
    pytest.importorskip("sklearn")
    import digits_mlp
    assert digits_mlp.main(epochs=30) >= 0.97


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_two_thousand_steps_do_not_grow_memory(compiled):
    cr.manual_seed(0)
    X, y = cr.data.spiral(n=96, seed=0)
    model = cr.nn.Sequential(cr.nn.Linear(2, 32), cr.nn.ReLU(), cr.nn.Linear(32, 3))
    opt = cr.optim.Adam(model.parameters(), lr=1e-3)
    if compiled:
        x = cr.placeholder((None, 2), dtype=X.dtype, name="x")
        t = cr.placeholder((None,), dtype=np.int64, name="t")
        step_fn = opt.minimize(cr.cross_entropy(model(x), t), [x, t])
        def step():
            return float(step_fn(X, y))
    else:
        def step():
            opt.zero_grad()
            loss = cr.cross_entropy(model(cr.tensor(X)), y)
            loss.backward()
            opt.step()
            return loss.item()
    for _ in range(200):  # warm up caches before measuring
        first = step()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            last = step()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert last < first
    assert after - before < 256 * 1024, f"memory grew by {after - before} bytes"
