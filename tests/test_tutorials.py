"""Every tutorial notebook in docs/tutorials runs headlessly, top to bottom, and its own
asserts pass. Executed with nbclient on an ipykernel kernel that runs this interpreter (a
kernelspec written for the test, so a fresh venv needs no `ipykernel install`)."""
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (the notebooks extra)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (the notebooks extra)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (the notebooks extra)")

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
KERNEL = "chainrule-tests"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory, monkeypatch_module):
    """A kernelspec whose python is the one running the tests, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "chainrule tests", "language": "python"}))
    monkeypatch_module.setenv("JUPYTER_PATH", str(root))
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_there_is_a_tutorial_for_each_step_of_the_path():
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) >= 7
    for topic in ("chain_rule", "sigmoid_neuron", "gate_patterns", "vectorised", "own_gate",
                  "numerical", "mlp"):
        assert any(topic in n for n in names), topic


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_checks_its_numbers(path, kernel_name, tmp_path):
    nb = nbformat.read(path, as_version=4)
    asserts = sum(cell.source.count("assert ") for cell in nb.cells if cell.cell_type == "code")
    assert asserts >= 2, f"{path.name} checks too little of what it shows"
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()      # raises CellExecutionError, naming the cell, if an assert fails
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
