"""cr.draw and cr.explain on the textbook circuits: real values and gradients, eager and
symbolic graphs, expansion of composite gates, rendering with and without Graphviz."""
import re
import shutil
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz import dot as viz_dot
from chainrule.viz.edges import edge_grads

GREEN, RED = viz_dot.GREEN, viz_dot.RED
HAVE_DOT = shutil.which("dot") is not None


# -- the two examples of the backprop notes ------------------------------------------------------
def circuit():
    """f = (x + y) * z at x=-2, y=5, z=-4, with q = x + y."""
    x, y, z = (cr.Variable(v, name=n) for v, n in ((-2.0, "x"), (5.0, "y"), (-4.0, "z")))
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f, x, y, z


NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
NEURON_GRADS = {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20}


def neuron(gate: bool = False):
    """f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))), from primitive gates or as one sigmoid gate."""
    v = {n: cr.Variable(val, name=n, dtype=np.float64) for n, val in NEURON.items()}
    s = v["w0"] * v["x0"] + v["w1"] * v["x1"] + v["w2"]
    f = cr.sigmoid(s) if gate else 1.0 / (1.0 + cr.exp(-s))
    f.name = "f"
    return f, v


# -- reading DOT back -----------------------------------------------------------------------------
def parse(dot: str):
    """node id -> label text, and (src label, dst label) -> [(value text, grad text)]."""
    nodes = {}
    for nid, attrs in re.findall(r"^\s*(\w+) \[(.*)\];$", dot, re.M):
        m = re.search(r"label=<(.*?)>(?:,|$)", attrs)
        nodes[nid] = _plain(m.group(1)) if m else ""
    edges = {}
    for a, b, attrs in re.findall(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$", dot, re.M):
        green = re.search(f'<font color="{GREEN}">(.*?)</font>', attrs or "")
        red = re.search(f'<font color="{RED}">(.*?)</font>', attrs or "")
        edges.setdefault((nodes[a].split()[0], nodes[b].split()[0]), []).append(
            (green and green.group(1), red and red.group(1)))
    return nodes, edges


def _plain(label: str) -> str:
    return re.sub(r"<[^>]*>", " ", label).replace("&lt;", "<").replace("&gt;", ">")


# -- draw -----------------------------------------------------------------------------------------
def test_dot_labels_every_wire_with_its_value_and_gradient():
    f, *_ = circuit()
    dot = cr.draw(f)
    assert dot.startswith("digraph")
    nodes, edges = parse(dot)
    labels = " ".join(nodes.values())
    for name in ("x", "y", "z", "f"):
        assert re.search(rf"\b{name}\b", labels), name
    assert "q" in dot  # the named intermediate labels its wire
    # value (green) and gradient (red) on each wire, as in the circuit diagram
    assert edges[("x", "+")] == [("-2.00", "-4.00")]
    assert edges[("y", "+")] == [("5.00", "-4.00")]
    assert edges[("+", "*")] == [("3.00", "-4.00")]
    assert edges[("z", "*")] == [("-4.00", "3.00")]
    assert edges[("*", "f")] == [("-12.00", "1.00")]  # the output: its value and gradient 1
    assert nodes["n0"]  # every node has a label
    assert 'shape=circle' in dot and 'shape=box' in dot


def test_draw_before_and_after_backward_is_the_same_and_touches_no_grad():
    f, x, y, z = circuit()
    before = cr.draw(f)
    assert x.grad is None and y.grad is None  # drawing computes gradients privately
    f.backward()
    after = cr.draw(f)   # the graph is spent for backward, still readable for drawing
    assert before == after
    assert x.grad.item() == -4.0 and z.grad.item() == 3.0
    assert cr.draw(f) == after  # and again


def test_values_and_grads_can_be_left_out():
    f, *_ = circuit()
    assert RED not in cr.draw(f, grads=False) and "-12.00" in cr.draw(f, grads=False)
    no_values = cr.draw(f, values=False)
    assert GREEN not in no_values and RED in no_values
    assert "rankdir=TB" in cr.draw(f, rankdir="TB")
    with pytest.raises(cr.ChainruleError, match="rankdir"):
        cr.draw(f, rankdir="sideways")


def test_fan_out_edges_carry_their_share_and_the_leaf_its_total():
    a = cr.Variable(3.0, name="a")
    b = cr.Variable(-4.0, name="b")
    out = a * b + a
    nodes, edges = parse(cr.draw(out))
    assert edges[("a", "*")] == [("3.00", "-4.00")]
    assert edges[("a", "+")] == [("3.00", "1.00")]
    assert any("-3.00" in label and label.startswith("a") for label in nodes.values())


def test_symbolic_graph_shows_shapes_and_known_values_only():
    x = cr.placeholder((None, 3), name="x")
    w = cr.Variable(np.ones((3, 2), np.float32), name="W")
    loss = (x @ w).sum()
    loss.name = "loss"
    dot = cr.draw(loss)
    nodes, edges = parse(dot)
    assert "dashed" in dot and "(?, 3)" in nodes["n" + str(_node_index(dot, "x"))]
    assert RED not in dot                          # no numeric gradients without a feed
    assert "(?, 3)" in dot and "(?, 2)" in dot    # free dimensions print as ?
    assert "[[1.00, 1.00], [1.00, 1.00], [1.00, 1.00]]" in dot  # W has a value: shown


def _node_index(dot, name):
    return int(re.search(rf"^\s*n(\d+) \[.*label=<{name}\b", dot, re.M).group(1))


def test_large_tensors_show_shape_and_summary():
    rng = np.random.default_rng(0)
    X = cr.tensor(rng.standard_normal((64, 128)).astype(np.float32))
    W = cr.Variable(rng.standard_normal((128, 10)).astype(np.float32) * 0.1, name="W")
    loss = cr.cross_entropy(X @ W, np.zeros(64, dtype=np.int64))
    dot = cr.draw(loss)
    assert re.search(r"\(64, 128\) mean -?[\d.e+-]+ std 1\.00", dot)
    assert re.search(r"\(128, 10\) mean [-\d.e+]+ std", dot)
    assert len(dot) < 5000  # no tensor printed element by element


def test_composite_gates_draw_as_one_node_or_expanded():
    f, v = neuron(gate=True)
    one = cr.draw(f)
    nodes, _ = parse(one)
    labels = [label.split()[0] for label in nodes.values() if label]
    assert "sigmoid" in labels and "exp" not in labels
    expanded = cr.draw(f, expand=True)
    nodes, edges = parse(expanded)
    labels = [label.split()[0] for label in nodes.values() if label]
    assert "sigmoid" not in labels and {"exp", "neg", "/"} <= set(labels)
    # the expansion carries real values and gradients: sigma'(1) = 0.20 reaches the sum
    assert ("1.00", "0.20") in edges[("+", "neg")]
    assert edges[("/", "f")] == [("0.73", "1.00")]
    assert ("-1.00", "0.39") in edges[("x0", "*")]
    # the user's graph is untouched
    assert f.op.name == "sigmoid" and cr.draw(f) == one


def test_expand_works_on_symbolic_graphs():
    x = cr.placeholder((None, 3), name="x")
    v = cr.Variable(np.ones((3, 1), np.float32), name="V")
    s = cr.sigmoid(x @ v)
    dot = cr.draw(s, expand=True)
    labels = [label.split()[0] for label in parse(dot)[0].values() if label]
    assert "exp" in labels and "sigmoid" not in labels and "(?, 1)" in dot


def test_user_gate_is_one_node_named_after_its_class():
    from gates import Multiply

    a, b = cr.Variable(3.0, name="a"), cr.Variable(-4.0, name="b")
    out = Multiply()(a, b)
    nodes, edges = parse(cr.draw(out, expand=True))
    assert "Multiply" in nodes.values()
    assert edges[("a", "Multiply")] == [("3.00", "-4.00")]
    assert edges[("b", "Multiply")] == [("-4.00", "3.00")]


def test_edge_grads_match_backward_on_a_broadcast_graph():
    x = cr.Variable(np.arange(6.0).reshape(2, 3), name="x")
    b = cr.Variable(np.array([1.0, -1.0, 2.0]), name="b")
    loss = ((x * b + b) ** 2).mean()
    g = edge_grads(loss)
    loss.backward()
    np.testing.assert_allclose(g.total[id(x)], x.grad.numpy())
    np.testing.assert_allclose(g.total[id(b)], b.grad.numpy())
    assert g.total[id(b)].shape == (3,)


def test_a_long_chain_draws_without_recursion():
    x = cr.Variable(0.5, name="x")
    y = x
    for _ in range(3000):
        y = y * 1.0001
    assert cr.draw(y).count("->") == 2 * 3000 + 1
    assert "[3000]" in cr.explain(y)


# -- writing files --------------------------------------------------------------------------------
def test_dot_file_is_always_written(tmp_path, monkeypatch):
    _no_graphviz(monkeypatch)
    f, *_ = circuit()
    text = cr.draw(f, tmp_path / "f.dot")
    assert (tmp_path / "f.dot").read_text() == text


def _no_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)     # import graphviz -> ImportError
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # and no `dot` on PATH


def test_missing_graphviz_writes_the_dot_and_says_how_to_install(tmp_path, monkeypatch):
    _no_graphviz(monkeypatch)
    f, *_ = circuit()
    with pytest.raises(cr.ChainruleError) as info:
        cr.draw(f, tmp_path / "f.svg")
    msg = str(info.value)
    assert "apt-get install graphviz" in msg and "pip install graphviz" in msg
    assert "f.dot" in msg
    assert (tmp_path / "f.dot").read_text().startswith("digraph")
    assert not (tmp_path / "f.svg").exists()
    shown = f._repr_html_()   # Jupyter still steps through the numbers, without a picture
    assert "step 0 of" in shown and "Graphviz" in shown and "<svg" not in shown


def test_graphviz_package_without_the_dot_program(tmp_path, monkeypatch):
    pytest.importorskip("graphviz", reason="the graphviz Python package is not installed")
    monkeypatch.setenv("PATH", str(tmp_path))  # the package is there, the binary is not
    f, *_ = circuit()
    with pytest.raises(cr.ChainruleError, match="apt-get install graphviz"):
        cr.draw(f, tmp_path / "f.png")
    assert (tmp_path / "f.dot").exists()


def test_no_suffix_is_an_error(tmp_path):
    f, *_ = circuit()
    with pytest.raises(cr.ChainruleError, match="suffix"):
        cr.draw(f, tmp_path / "graph")


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's `dot` program is not installed "
                                          "(apt-get install graphviz)")
def test_svg_and_png_are_rendered(tmp_path):
    f, *_ = circuit()
    f.backward()
    cr.draw(f, tmp_path / "f.svg")
    svg = (tmp_path / "f.svg").read_text()
    minus = "(?:-|&#45;)"  # Graphviz writes a minus sign as &#45; in SVG text
    assert "<svg" in svg
    assert re.search(minus + r"12\.00<", svg) and re.search(minus + r"4\.00<", svg)
    assert (tmp_path / "f.dot").read_text().startswith("digraph")   # .dot always written
    cr.draw(f, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = f._repr_html_()
    assert shown.startswith("<iframe") and "&lt;svg" in shown


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's `dot` program is not installed "
                                          "(apt-get install graphviz)")
def test_rendering_without_the_python_package_runs_dot_directly(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    f, *_ = circuit()
    cr.draw(f, tmp_path / "f.svg")
    assert "<svg" in (tmp_path / "f.svg").read_text()


# -- explain --------------------------------------------------------------------------------------
def blocks(text: str) -> list:
    """The gate blocks of an explanation, each a list of lines."""
    return [b.splitlines() for b in text.split("\n\n") if b.startswith("[")]


def row(block: list, first: str) -> list:
    """The table row of ``block`` that starts with ``first``, split into cells."""
    for line in block:
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in {block}")


def test_explain_walks_the_circuit_like_the_notes():
    f, *_ = circuit()
    text = cr.explain(f)
    mul, add = blocks(text)      # backprop visits the mul gate first, then the add gate
    assert mul[0].startswith("[1] mul") and "f = q * z" in mul[0]
    assert "test_viz.py" in mul[0]           # the user's line that built it
    assert "value -12.00" in mul[1] and "upstream 1.00" in mul[1]
    # input, value, local d f/d input, downstream = upstream * local
    assert row(mul, "q")[1:] == ["3.00", "-4.00", "-4.00"]
    assert row(mul, "z")[1:] == ["-4.00", "3.00", "3.00"]
    assert add[0].startswith("[2] add") and "q = x + y" in add[0]
    assert "upstream -4.00" in add[1]
    assert row(add, "x")[1:] == ["-2.00", "1.00", "-4.00"]
    assert row(add, "y")[1:] == ["5.00", "1.00", "-4.00"]
    leaves = text.split("gradients at the leaves")[1].splitlines()
    assert row(leaves, "x")[1:] == ["-2.00", "-4.00"]
    assert row(leaves, "z")[1:] == ["-4.00", "3.00"]


@pytest.mark.parametrize("gate", [False, True], ids=["primitive-gates", "sigmoid-gate"])
def test_explain_sigmoid_neuron(gate):
    f, v = neuron(gate)
    f.backward()
    text = cr.explain(f)      # after backward: the graph is spent but still explainable
    leaves = text.split("gradients at the leaves")[1].splitlines()
    for name, want in NEURON_GRADS.items():
        cells = row(leaves, name)
        assert cells[1] == f"{NEURON[name]:.2f}" and cells[2] == f"{want:.2f}", cells
        assert v[name].grad.item() == pytest.approx(want, abs=0.005)
    first = blocks(text)[0]
    assert "value 0.73" in first[1] and "upstream 1.00" in first[1]
    if gate:  # one gate: local d sigma/dx = sigma (1 - sigma) = 0.20
        assert first[0].startswith("[1] sigmoid")
        assert row(first, "t4")[2:] == ["0.20", "0.20"]
    else:     # the division by (1 + exp(-s)) = 1.37 comes first: local -1/1.37^2 = -0.53
        assert first[0].startswith("[1] div")
        assert row(first, "t7")[1:] == ["1.37", "-0.53", "-0.53"]
        assert len(blocks(text)) == 8
    mul = blocks(text)[-1]   # w0 * x0, created first, visited last: the mul gate switches
    assert "= w0 * x0" in mul[0]
    assert row(mul, "w0")[1:] == ["2.00", "-1.00", "-0.20"]
    assert row(mul, "x0")[1:] == ["-1.00", "2.00", "0.39"]
    print(text)


def test_explain_non_elementwise_gates_name_their_rule():
    x = cr.tensor(np.arange(6.0).reshape(2, 3))
    w = cr.Variable(np.ones((3, 2)), name="W")
    loss = (x @ w).sum()
    text = cr.explain(loss)
    assert "sum" in text and "matmul" in text and "g @ y.T" in text
    leaves = text.split("gradients at the leaves")[1].splitlines()
    assert row(leaves, "W")[1:] == ["(3,", "2)", "below", "(3,", "2)", "below"]
    # a small matrix is printed in full under its table, row by row
    assert "W grad (3, 2):\n        [[3.00, 3.00],\n         [5.00, 5.00],\n" \
           "         [7.00, 7.00]]" in text


def test_explain_refuses_symbolic_and_says_so_without_variables():
    x = cr.placeholder((None, 3), name="x")
    with pytest.raises(cr.GraphError, match="symbolic"):
        cr.explain(x * 2)
    c = cr.tensor(2.0) * 3
    assert "does not depend on any Variable" in cr.explain(c)


def test_explain_of_a_vector_output_seeds_ones():
    x = cr.Variable([1.0, 2.0, 3.0], name="x")
    y = x * x
    text = cr.explain(y)
    assert "taken as ones" in text
    assert row(text.split("gradients at the leaves")[1].splitlines(), "x")[-3:] == \
        ["[2.00,", "4.00,", "6.00]"]
