"""The README's tour runs as written, and prints what the README shows."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def test_the_two_setup_commands_come_first():
    bash = _blocks("bash")
    assert "chainrule train" in bash[0]
    assert "pytest" in bash[1]


def test_tour_snippets_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runnable = [b for b in _blocks("python")
                if "import chainrule" in b or "cr.Function" in b]
    assert len(runnable) >= 3
    namespace: dict = {"np": np}
    for block in runnable:
        exec(compile(block, "tour.py", "exec"), namespace)
    out = capsys.readouterr().out
    # the eager circuit's numbers, the explain walk-through and the printed flat code
    assert "tensor(-4.) tensor(-4.) tensor(3.)" in out
    assert "q        3.00   -4.00        -4.00" in out
    assert "dw = x.T @ dadd" in out and "w -= 0.5 * dw" in out


def test_printed_source_in_readme_is_what_cr_function_prints_today(tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    logreg = next(b for b in _blocks("python") if "cr.placeholder" in b)
    exec(compile(logreg, "logreg.py", "exec"), {})
    printed = capsys.readouterr().out
    shown = next(b for b in _blocks("python") if b.startswith("import numpy as np\n\ndef _bce"))
    assert shown.strip() in printed
