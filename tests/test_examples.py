"""Every example runs as a script and reaches its result."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    if script.name == "digits_mlp.py":
        pytest.importorskip("sklearn")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep
               + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
    if script.name == "xor.py":
        assert "accuracy 100.0%" in result.stdout
    if script.name == "logistic_regression.py":
        assert "def " in result.stdout  # the generated source is printed
