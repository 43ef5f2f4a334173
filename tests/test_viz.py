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


# -- explain teaches: sums in words and numbers, names in creation order, feeds, Jupyter ---------
def test_explain_states_the_broadcast_sum_in_words_and_numbers():
    x = cr.Variable(np.arange(12.0).reshape(4, 3), name="x")
    c = cr.Variable(np.array([1.0, 2.0, 3.0]), name="c")
    y = x * c
    y.name = "y"
    text = cr.explain(y.sum())
    assert "c was broadcast from (3,) to (4, 3): upstream x local is summed over axis 0" in text
    # the 4 x 3 product in full, then its column sums: 0+3+6+9, 1+4+7+10, 2+5+8+11
    assert "[ 9.00, 10.00, 11.00]]" in text
    assert "summed over axis 0: [18.00, 22.00, 26.00]" in text
    # small tensors in full: x's 4 x 3 value, row by row
    assert "x value (4, 3):\n        [[ 0.00,  1.00,  2.00],\n" \
           "         [ 3.00,  4.00,  5.00]," in text
    assert "mean" not in text


def test_explain_states_the_fan_out_sum():
    a = cr.Variable(3.0, name="a")
    b = cr.Variable(-4.0, name="b")
    q = a * b
    q.name = "q"
    out = q + q * a
    text = cr.explain(out)
    # q feeds two gates: the add t2 (1.00) and the mul t1 = q * a (a = 3.00)
    assert "upstream = 1.00 (from t2) + 3.00 (from t1): q feeds 2 gates, and their gradients " \
           "add" in text
    # a feeds two gates too: its gradient is the sum, q = -12 from t1 and b * 4 = -16 from q
    assert "a feeds 2 gates: its gradient is the sum of theirs, -12.00 (from t1) + " \
           "(-16.00) (from q) = -28.00" in text
    out.backward()
    assert a.grad.item() == -28.0


def test_explain_names_unnamed_tensors_in_creation_order():
    w1, w2 = cr.Variable(2.0), cr.Variable(3.0)
    t = w1 * w2 + w1
    text = cr.explain(t)
    assert "t1 = w1 * w2" in text and "t2 = t1 + w1" in text
    leaves = text.split("gradients at the leaves")[1].splitlines()
    assert row(leaves, "w1")[1:] == ["2.00", "4.00"]


def test_explain_a_static_graph_with_a_feed():
    x = cr.placeholder((None, 2), name="x")
    w = cr.Variable(np.array([[1.0], [-2.0]]), name="W")
    loss = ((x @ w) ** 2).mean()
    loss.name = "loss"
    text = cr.explain(loss, feed={x: np.array([[1.0, 1.0], [2.0, 0.0]])})
    # x @ W = [[-1], [2]], loss = (1 + 4) / 2 = 2.5; dW = x.T @ (2 (x @ W) / 2) = [[3], [-1]]
    assert text.startswith("backward pass of loss = 2.50")
    leaves = text.split("gradients at the leaves")[1]
    assert "W grad (2, 1):\n        [[ 3.00],\n         [-1.00]]" in leaves
    by_name = cr.explain(loss, feed={"x": np.array([[1.0, 1.0], [2.0, 0.0]])})
    assert str(by_name) == str(text)
    with pytest.raises(cr.GraphError, match="missing from the feed"):
        cr.explain(loss, feed={"y": np.ones((1, 2))})


def test_explain_shows_as_a_table_in_jupyter_and_as_text_in_a_terminal():
    f, *_ = circuit()
    shown = cr.explain(f)
    assert isinstance(shown, str) and repr(shown) == str(shown)   # a REPL prints the text
    table = shown._repr_html_()
    assert table.count("<table") == 1 and "<td>q</td>" in table
    assert "[1] mul" in table and "-4.00" in table and "upstream" in table


def test_drawings_show_a_tiny_gradient_by_its_scale():
    rng = np.random.default_rng(0)
    W = cr.Variable(rng.standard_normal((32, 16)), name="W")
    x = cr.tensor(rng.standard_normal((8, 32)))
    loss = (x @ W).sum() * 1e-6        # every gradient about 1e-6, which read as 0.00 before
    dot = cr.draw(loss)
    assert re.search(r"\(32, 16\) rms \d\.\de-0[56] max \d\.\de-0[56]", dot)
    assert "std 0.00" not in dot


def test_group_module_draws_one_box_per_module():
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))
    x = cr.tensor(np.ones((5, 3), np.float32), name="x")
    loss = cr.cross_entropy(model(x), np.array([0, 1, 0, 1, 1]))
    flat = cr.draw(loss)
    boxed = cr.draw(loss, group="module")
    assert '"g_0"' in boxed and '"g_2"' in boxed and "0.weight" not in boxed
    assert "0.weight" in flat
    # the wires between boxes carry the values and summed gradients of what crosses them
    assert re.search(r'"g_0" -> n\d+ \[id="e_n\d+_0", label=<<font color="#1a7f37">\(5, 4\)',
                     boxed)
    assert boxed.count("->") < flat.count("->")
    with pytest.raises(cr.ChainruleError, match="group"):
        cr.draw(loss, group="layer")


def test_module_groups_put_inner_activations_in_the_enclosing_box():
    from chainrule.core.toposort import toposort
    from chainrule.viz.groups import module_groups

    class Block(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = cr.nn.Linear(3, 3)
            self.fc2 = cr.nn.Linear(3, 3)

        def forward(self, x):
            return self.fc2(cr.relu(self.fc1(x)))

    class Net(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = cr.nn.Linear(3, 1)

        def forward(self, x):
            return self.head(cr.tanh(self.block(x)))

    out = Net()(cr.tensor(np.ones((2, 3), np.float32))).sum()
    groups = module_groups(toposort([out]))
    by_op = {}
    for t in toposort([out]):
        if id(t) in groups:
            by_op.setdefault(t.op.name, set()).add(groups[id(t)])
    assert by_op["relu"] == {"block"}            # between fc1 and fc2: inside the block
    assert "tanh" not in by_op                   # between block and head: in neither
    assert {"block.fc1", "block.fc2", "head"} <= set().union(*by_op.values())


def test_the_html_page_is_self_contained_and_carries_every_step(tmp_path):
    import json

    f, *_ = circuit()
    dot = cr.draw(f, tmp_path / "f.html")
    page = (tmp_path / "f.html").read_text()
    assert dot.startswith("digraph")
    assert "<script src" not in page and "<link" not in page and "https://" not in page
    data = json.loads(re.search(r'<script type="application/json" id="cr-data">(.*?)</script>',
                                page, re.S).group(1))
    assert [s["phase"] for s in data["steps"]] == ["forward"] * 2 + ["backward"] * 2
    mul = data["steps"][2]
    assert mul["formula"] == "f = q * z" and mul["upstream"]["text"] == "1.00"
    assert [(w["name"], w["local"]["text"], w["down"]["text"]) for w in mul["wires"]] == \
        [("q", "-4.00", "-4.00"), ("z", "3.00", "3.00")]
    if HAVE_DOT:
        assert "<svg" in data["views"]["graph"]


def test_the_page_summarises_large_tensors_with_a_heat_map(tmp_path):
    import json

    rng = np.random.default_rng(0)
    W = cr.Variable(rng.standard_normal((20, 30)), name="W")
    loss = (W * W).sum()
    cr.draw(loss, tmp_path / "big.html")
    page = (tmp_path / "big.html").read_text()
    data = json.loads(re.search(r'id="cr-data">(.*?)</script>', page, re.S).group(1))
    value = data["steps"][0]["inputs"][0]["value"]
    assert "grid" not in value and value["shape"] == "(20, 30)"
    assert value["heat"]["rows"] * value["heat"]["cols"] == len(value["heat"]["v"]) <= 16 * 16
    assert "mean" in value["summary"]
    small = cr.Variable(np.ones((8, 8)), name="S")
    cr.draw((small * 2).sum(), tmp_path / "small.html")
    data = json.loads(re.search(r'id="cr-data">(.*?)</script>',
                                (tmp_path / "small.html").read_text(), re.S).group(1))
    assert len(data["steps"][0]["inputs"][0]["value"]["grid"]) == 8   # 8 x 8 in full


def test_jupyter_display_is_bounded_in_size_and_time():
    import time

    x = cr.Variable(0.5, name="x")
    y = x
    for _ in range(3000):
        y = y * 1.0001
    start = time.perf_counter()
    shown = y._repr_html_()
    assert time.perf_counter() - start < 1.0
    assert "too large to show here" in shown and 'cr.draw(t, "graph.html"' in shown
    small = x * 2.0 + 1.0
    start = time.perf_counter()
    shown = small._repr_html_()
    assert time.perf_counter() - start < 1.5     # a second, and a margin for a busy machine
    assert shown.startswith("<iframe") and "step 0 of" in shown
    assert x._repr_html_() is None               # a leaf is its text repr
