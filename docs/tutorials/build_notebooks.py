"""Write the tutorial notebooks (``python docs/tutorials/build_notebooks.py``; needs nbformat).

The notebooks are kept as this one readable source and written out as ``.ipynb`` without
outputs; ``tests/test_tutorials.py`` executes every one headlessly, and each checks its own
numbers with ``assert``. They follow the path of the backprop notes: the chain rule, the graph,
the gate patterns, vectorised backprop, your own gates, gradient checking, training.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
MD, CODE = "markdown", "code"

NOTEBOOKS: dict = {}


def notebook(name: str, cells: list) -> None:
    NOTEBOOKS[name] = cells


notebook("01_chain_rule_and_gradient_descent", [
    (MD, """# 1. Gradient descent and the chain rule

A gradient tells you which way is uphill. To go downhill you step against it:
`x <- x - lr * df/dx`. For a composite function the chain rule gives the gradient piece by
piece: if `f(x) = g(h(x))` then `df/dx = dg/dh * dh/dx`. chainrule does exactly this, one gate
at a time."""),
    (CODE, """import numpy as np
import chainrule as cr

cr.set_default_dtype(np.float64)"""),
    (MD, """Take `f(x) = (x^2 + 1)^3` at `x = 1`. By hand: `h = x^2 + 1 = 2`, `f = h^3 = 8`,
`df/dh = 3 h^2 = 12`, `dh/dx = 2x = 2`, so `df/dx = 12 * 2 = 24`."""),
    (CODE, """x = cr.Variable(1.0, name="x")
h = x ** 2 + 1
h.name = "h"
f = h ** 3
f.name = "f"
f.backward()
print(f.item(), x.grad.item())
assert f.item() == 8.0 and x.grad.item() == 24.0"""),
    (MD, """`cr.explain` writes the same walk out, gate by gate in the order backprop visits them:
each gate multiplies the gradient that reaches it from above (*upstream*) by its own *local*
derivative and sends the product *downstream*."""),
    (CODE, """text = cr.explain(f)
print(text)
assert "upstream 12.00" in text          # df/dh reaches the h gate"""),
    (MD, """Now descend: minimise `f(x, y) = (x - 3)^2 + (x * y - 2)^2` from `(0, 0)`. Each step
asks chainrule for both partial derivatives, then moves against them."""),
    (CODE, """x, y = cr.Variable(0.0, name="x"), cr.Variable(0.0, name="y")
lr = 0.05
for step in range(300):
    f = (x - 3) ** 2 + (x * y - 2) ** 2
    gx, gy = cr.grad(f, [x, y])
    x.data -= lr * gx.numpy()
    y.data -= lr * gy.numpy()
print(f"x = {x.item():.4f}, y = {y.item():.4f}, f = {f.item():.2e}")
assert abs(x.item() - 3) < 1e-3 and abs(x.item() * y.item() - 2) < 1e-3"""),
])

notebook("02_graph_and_the_sigmoid_neuron", [
    (MD, """# 2. The graph: Variables, placeholders and the sigmoid neuron

A `cr.Variable` is a value that learning moves (weights); a `cr.placeholder` is a value you
feed in (data). Every operation on them adds a gate to a graph, and backprop walks that graph
from the output back. First the circuit of the notes, `f = (x + y) * z`:"""),
    (CODE, """import numpy as np
import chainrule as cr

x, y, z = cr.Variable(-2.0, name="x"), cr.Variable(5.0, name="y"), cr.Variable(-4.0, name="z")
q = x + y
f = q * z
q.name, f.name = "q", "f"
f.backward()
print(x.grad, y.grad, z.grad)
assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)"""),
    (MD, """The sigmoid neuron `f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))`, built from primitive
gates at the notes' values. Its gradients are the notes' numbers: `w0: -0.20, x0: 0.39,
w1: -0.39, x1: -0.59, w2: 0.20`."""),
    (CODE, """v = {n: cr.Variable(val, name=n, dtype=np.float64)
     for n, val in [("w0", 2.0), ("x0", -1.0), ("w1", -3.0), ("x1", -2.0), ("w2", -3.0)]}
f = 1.0 / (1.0 + cr.exp(-(v["w0"] * v["x0"] + v["w1"] * v["x1"] + v["w2"])))
f.name = "f"
f.backward()
grads = {n: round(t.grad.item(), 2) for n, t in v.items()}
print(round(f.item(), 2), grads)
assert round(f.item(), 2) == 0.73
assert grads == {"w0": -0.2, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.2}"""),
    (MD, """Step through it yourself: `cr.draw(f, "neuron.html")` writes one page (no network
needed) with Previous / Next / Play and the arrow keys: the forward pass gate by gate, then the
backward pass with each gate's upstream x local = downstream. In Jupyter, displaying `f` shows
the same stepper inline."""),
    (CODE, """cr.draw(f, "neuron.html")
page = open("neuron.html").read()
assert "Previous" in page and "Next" in page and "Play" in page
f   # the stepper, inline"""),
    (MD, """The same neuron as a *static* graph: `x` is a placeholder, fed later. The graph can be
evaluated, explained and compiled with any inputs."""),
    (CODE, """xs = cr.placeholder((2,), name="x", dtype=np.float64)
w = cr.Variable([2.0, -3.0], name="w", dtype=np.float64)
b = cr.Variable(-3.0, name="b", dtype=np.float64)
out = cr.sigmoid((w * xs).sum() + b)
out.name = "out"
print(out.eval({xs: np.array([-1.0, -2.0])}))
text = cr.explain(out, feed={xs: np.array([-1.0, -2.0])})
print(text)
assert "backward pass of out = 0.73" in text
gw, gb = cr.grad(out, [w, b])
step = cr.function([xs], [out, gw, gb])
value, dw, db = step(np.array([-1.0, -2.0]))
assert np.allclose(dw, [-0.196612, -0.393224]) and round(float(db), 2) == 0.2"""),
])

notebook("03_gate_patterns", [
    (MD, """# 3. Patterns in the backward flow

Four gates explain most of what you will see in a backward pass:

* **add distributes**: it passes its upstream gradient to every input unchanged;
* **max routes**: it sends the whole gradient to the input that won, nothing to the others;
* **mul switches**: each input receives the upstream times the *other* input;
* **fan-out adds**: a value used twice receives the sum of both branches' gradients."""),
    (CODE, """import numpy as np
import chainrule as cr

cr.set_default_dtype(np.float64)
x, y, z, w = (cr.Variable(v, name=n) for v, n in [(3.0, "x"), (-4.0, "y"), (2.0, "z"), (-1.0, "w")])
f = 2 * (x * y + cr.maximum(z, w))
f.name = "f"
f.backward()
print(x.grad, y.grad, z.grad, w.grad)"""),
    (MD, """The upstream at the add gate is 2 (from `2 * ...`): add hands 2 to both of its
inputs. The max gate routes its 2 to `z` (2 > -1); `w` gets 0. The mul gate switches: `x`
receives `2 * y = -8`, `y` receives `2 * x = 6`."""),
    (CODE, """grads = (x.grad.item(), y.grad.item(), z.grad.item(), w.grad.item())
assert grads == (-8.0, 6.0, 2.0, 0.0)
print(cr.explain(f))"""),
    (MD, """Fan-out: `a` is used twice, so its gradient is the sum of what both uses send back.
`cr.explain` writes the sum out."""),
    (CODE, """a, b = cr.Variable(3.0, name="a"), cr.Variable(-4.0, name="b")
out = a * b + a
out.name = "out"
text = cr.explain(out)
print(text)
out.backward()
assert a.grad.item() == b.item() + 1 == -3.0
assert "a feeds 2 gates: its gradient is the sum of theirs" in text"""),
    (MD, """A broadcast is a hidden fan-out: a bias `(3,)` added to a batch `(4, 3)` is used by
every row, so its gradient is the upstream summed over the batch axis."""),
    (CODE, """h = cr.Variable(np.arange(12.0).reshape(4, 3), name="h")
bias = cr.Variable(np.zeros(3), name="bias")
loss = ((h + bias) * np.array([1.0, 2.0, 3.0])).sum()
loss.backward()
print(bias.grad)
assert bias.grad.numpy().tolist() == [4.0, 8.0, 12.0]
assert "summed over axis 0" in cr.explain(loss)"""),
])

notebook("04_vectorised_backprop", [
    (MD, """# 4. Vectorised backprop without Jacobians

For `D = W @ X` with an upstream gradient `dD` (same shape as `D`), the gradients are
`dW = dD @ X.T` and `dX = W.T @ dD`. No Jacobian is ever formed: the shapes tell you the
formula, since `dW` must have `W`'s shape and each term must be a product of `dD` and the other
operand."""),
    (CODE, """import numpy as np
import chainrule as cr

rng = np.random.default_rng(0)
W = cr.Variable(rng.standard_normal((5, 10)), name="W")
X = cr.Variable(rng.standard_normal((10, 3)), name="X")
D = W @ X
dD = rng.standard_normal(D.shape)     # any upstream gradient
D.backward(dD)
assert np.allclose(W.grad.numpy(), dD @ X.numpy().T)
assert np.allclose(X.grad.numpy(), W.numpy().T @ dD)
print(W.grad.shape, X.grad.shape)"""),
    (MD, """The same holds through a whole layer. For `loss = sum(relu(x @ W + b) ** 2)` the
backward pass by hand is four lines, and it matches chainrule's exactly:"""),
    (CODE, """x = rng.standard_normal((8, 4))
W = cr.Variable(rng.standard_normal((4, 6)), name="W")
b = cr.Variable(rng.standard_normal(6), name="b")
z = x @ W + b
a = cr.relu(z)
loss = (a ** 2).sum()
loss.backward()

da = 2 * a.numpy()                     # d loss / d a
dz = da * (z.numpy() > 0)              # relu routes where z > 0
dW = x.T @ dz                          # matmul: the other operand, transposed
db = dz.sum(axis=0)                    # the bias was broadcast over the batch: sum it back
assert np.allclose(W.grad.numpy(), dW) and np.allclose(b.grad.numpy(), db)
print("hand-written backward matches:", np.abs(W.grad.numpy() - dW).max())"""),
    (MD, """`cr.explain` shows a small layer's numbers in full (tensors up to 8 x 8), and says
where a broadcast gradient was summed:"""),
    (CODE, """W2 = cr.Variable(np.array([[1.0, -1.0], [0.5, 2.0]]), name="W2")
b2 = cr.Variable(np.array([0.1, -0.2]), name="b2")
x2 = cr.tensor(np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]]), name="x2")
out = (x2 @ W2 + b2).sum()
out.name = "out"
text = cr.explain(out)
print(text)
assert "b2 was broadcast from (2,) to (3, 2)" in text
assert "W2 grad (2, 2):" in text"""),
])

notebook("05_your_own_gate", [
    (MD, """# 5. Your own gate: forward and backward

Every gate has the same small API: `forward` computes the output from its inputs and caches
what `backward` needs; `backward` receives the upstream gradient and returns one
downstream gradient per input (upstream times the local gradient). `cr.Function` opens it to
you; your gate then works in eager and static graphs, draws and explains like a built-in."""),
    (CODE, """import numpy as np
import chainrule as cr

class Multiply(cr.Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dz):
        return dz * self.y, dz * self.x          # mul switches its inputs

a, b = cr.Variable(3.0, name="a"), cr.Variable(-4.0, name="b")
z = Multiply()(a, b)
z.backward()
assert (z.item(), a.grad.item(), b.grad.item()) == (-12.0, -4.0, 3.0)"""),
    (MD, """A sigmoid gate in one piece: its local gradient is `s (1 - s)`, computed from the
cached output. Checked against finite differences with `cr.gradcheck`:"""),
    (CODE, """class Sigmoid(cr.Function):
    def forward(self, x):
        self.s = 1.0 / (1.0 + np.exp(-x))
        return self.s

    def backward(self, ds):
        return ds * self.s * (1.0 - self.s)

x = cr.Variable(np.array([-2.0, 0.0, 1.0, 3.0]), name="x", dtype=np.float64)
s = Sigmoid()(x)
assert cr.gradcheck(lambda t: Sigmoid()(t), [x])
s.sum().backward()
print(x.grad)
assert np.allclose(x.grad.numpy(), s.numpy() * (1 - s.numpy()))
print(cr.explain(s.sum()))"""),
    (MD, """A gate with a bug is caught at once: this one forgets the upstream gradient."""),
    (CODE, """class BrokenSquare(cr.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return 2 * self.x                 # should be g * 2 * self.x

x = cr.Variable(np.array([1.0, 2.0]), name="x", dtype=np.float64)
try:
    cr.gradcheck(lambda t: (BrokenSquare()(t) * 3.0).sum(), [x])
    raise AssertionError("the broken gate should fail the check")
except cr.GradcheckError as error:
    print(error)"""),
])

notebook("06_numerical_vs_analytic_gradients", [
    (MD, """# 6. Numerical versus analytic gradients

The analytic gradient (backprop) is exact and cheap; the numerical one,
`(f(x + h) - f(x - h)) / 2h`, is slow but needs no derivation, so it checks the other. The
centred difference has error O(h^2); the one-sided `(f(x + h) - f(x)) / h` only O(h)."""),
    (CODE, """import numpy as np
import chainrule as cr

def f(x):
    return cr.sin(x) * cr.exp(x)

x0 = 0.7
exact = np.cos(x0) * np.exp(x0) + np.sin(x0) * np.exp(x0)
for h in (1e-1, 1e-2, 1e-3):
    fx = lambda v: float(f(cr.tensor(v, dtype=np.float64)).numpy())
    centred = (fx(x0 + h) - fx(x0 - h)) / (2 * h)
    one_sided = (fx(x0 + h) - fx(x0)) / h
    print(f"h={h:.0e}  centred error {abs(centred - exact):.1e}  "
          f"one-sided {abs(one_sided - exact):.1e}")
    assert abs(centred - exact) < abs(one_sided - exact)"""),
    (CODE, """x = cr.Variable(np.array([0.7, -0.3, 1.5]), name="x", dtype=np.float64)
(g,) = cr.grad(f(x).sum(), [x])
(num,) = cr.numerical_grad(lambda t: f(t).sum(), [x])
rel = np.abs(g.numpy() - num) / np.maximum(np.abs(g.numpy()), np.abs(num))
print(g.numpy(), num, rel.max())
assert rel.max() < 1e-7
assert cr.gradcheck(lambda t: f(t), [x])"""),
    (MD, """Smaller is not always better: below about `h = 1e-6`, rounding in
`f(x + h) - f(x - h)` grows faster than the truncation error shrinks, even in float64 (and
far sooner in float32, which is why gradients are checked in float64)."""),
    (CODE, """def centred_error(h):
    fx = lambda v: float(f(cr.tensor(v, dtype=np.float64)).numpy())
    return abs((fx(x0 + h) - fx(x0 - h)) / (2 * h) - exact)

errors = {h: centred_error(h) for h in (1e-5, 1e-12)}
print(errors)
assert errors[1e-12] > 100 * errors[1e-5]"""),
])

notebook("07_training_an_mlp", [
    (MD, """# 7. Training an MLP

Everything together: a model of `cr.nn` modules, a loss, `backward()` and an optimizer step,
repeated. The spiral dataset cannot be separated by a line; two hidden layers can."""),
    (CODE, """import numpy as np
import chainrule as cr

cr.manual_seed(0)
X, y = cr.data.spiral(n=100, classes=3, seed=0)
model = cr.nn.Sequential(cr.nn.Linear(2, 32), cr.nn.ReLU(), cr.nn.Linear(32, 32), cr.nn.ReLU(),
                         cr.nn.Linear(32, 3))
optimizer = cr.optim.Adam(model.parameters(), lr=0.02)
losses = []
for step in range(300):
    optimizer.zero_grad()
    loss = cr.cross_entropy(model(cr.tensor(X)), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
with cr.no_grad():
    accuracy = float((model(cr.tensor(X)).numpy().argmax(axis=1) == y).mean())
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, accuracy {accuracy:.1%}")
assert losses[-1] < 0.3 * losses[0] and accuracy > 0.9"""),
    (MD, """The model's graph, one box per layer (`group="module"`): click a box in the page to
open it, and step through the backward pass of a batch of four."""),
    (CODE, """batch = cr.cross_entropy(model(cr.tensor(X[:4])), y[:4])
dot = cr.draw(batch, "mlp.html", group="module")
assert '"g_0"' in dot and '"g_4"' in dot
print(cr.explain(batch).splitlines()[0])"""),
])

notebook("08_a_small_cnn", [
    (MD, """# 8. A small convolutional network

`cr.nn.Conv2d` slides a small kernel over the image; its backward pass is again upstream times
local, summed over every position the kernel visited. A few steps on 8x8 digits:"""),
    (CODE, """import numpy as np
import chainrule as cr

cr.manual_seed(0)
X_train, y_train, X_test, y_test = cr.data.digits(images=True)
X, y = X_train[:256], y_train[:256]
model = cr.nn.Sequential(
    cr.nn.Conv2d(1, 8, 3, padding=1), cr.nn.ReLU(), cr.nn.MaxPool2d(2),
    cr.nn.Flatten(), cr.nn.Linear(8 * 4 * 4, 10))
optimizer = cr.optim.Adam(model.parameters(), lr=0.01)
losses = []
for step in range(40):
    optimizer.zero_grad()
    loss = cr.cross_entropy(model(cr.tensor(X)), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
with cr.no_grad():
    accuracy = float((model(cr.tensor(X_test)).numpy().argmax(axis=1) == y_test).mean())
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, test accuracy {accuracy:.1%}")
assert losses[-1] < 0.5 * losses[0] and accuracy > 0.8"""),
    (MD, """The gradient that reaches the kernel is checked against finite differences on a tiny
input, and the network's graph is drawn one box per layer."""),
    (CODE, """conv = cr.nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64)
img = cr.Variable(np.random.default_rng(0).standard_normal((1, 1, 5, 5)), dtype=np.float64)
assert cr.gradcheck(lambda t: conv(t), [img])
small = cr.cross_entropy(model(cr.tensor(X[:2])), y[:2])
dot = cr.draw(small, "cnn.html", group="module")
assert '"g_0"' in dot and '"g_4"' in dot"""),
])


def main() -> None:
    import nbformat

    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == MD
                    else nbformat.v4.new_code_cell(src) for kind, src in cells]
        for i, cell in enumerate(nb.cells):   # stable ids: the files only change with content
            cell["id"] = f"{name[:2]}-{i:02d}"
        path = HERE / f"{name}.ipynb"
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
