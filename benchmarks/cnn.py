"""CNN training steps: a hand-written NumPy floor, PyTorch eager, chainrule eager and compiled.

Three models, float32, plain SGD steps on one fixed batch of 64 (issue 8):

* ``digits``: conv3x3 1->16 pad 1, ReLU, max-pool 2, conv3x3 16->32 pad 1, ReLU, max-pool 2,
  linear 128->10 on (64, 1, 8, 8);
* ``lenet``: LeNet-5 on (64, 1, 28, 28): conv5x5 1->6 pad 2, ReLU, max-pool 2, conv5x5 6->16,
  ReLU, max-pool 2, linear 400->120->84->10 with ReLUs;
* ``cifar``: two [conv3x3 pad 1, BatchNorm2d (training), ReLU, max-pool 2] blocks, 3->32->64,
  on (64, 3, 32, 32), then linear 4096->10.

The floor is what an expert writes by hand: NHWC throughout, im2col columns ordered
(kh, kw, C) on a strided view and one matmul per conv for the forward pass, dW and dX; dX as
per-offset products in one batched matmul and contiguous adds; 2x2 max pooling as pairwise
``np.maximum``; batch norm in closed form with per-channel sums as ones matvecs; no input
gradient for the first conv. Every column runs the same number of steps per repeat, the
columns take turns repeat by repeat, and each reports its best repeat (ms per step).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/cnn.py

On a machine others are using, wall-clock times with two BLAS threads swing by 10x (idle
threads spin while the cores are taken); ``OPENBLAS_NUM_THREADS=1 ... cnn.py --cpu-time``
compares every column on one thread by CPU time instead.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import chainrule as cr

BATCH = 64
LR = 0.01
DT = np.float32


# -- the models, as layer lists -------------------------------------------------------------
# ("conv", C, O, k, pad) | ("bn", C) | ("relu",) | ("pool",) | ("flatten",) | ("linear", I, O)
MODELS = {
    "digits": ((1, 8, 8), [("conv", 1, 16, 3, 1), ("relu",), ("pool",), ("conv", 16, 32, 3, 1),
                           ("relu",), ("pool",), ("flatten",), ("linear", 128, 10)]),
    "lenet": ((1, 28, 28), [("conv", 1, 6, 5, 2), ("relu",), ("pool",), ("conv", 6, 16, 5, 0),
                            ("relu",), ("pool",), ("flatten",), ("linear", 400, 120), ("relu",),
                            ("linear", 120, 84), ("relu",), ("linear", 84, 10)]),
    "cifar": ((3, 32, 32), [("conv", 3, 32, 3, 1), ("bn", 32), ("relu",), ("pool",),
                            ("conv", 32, 64, 3, 1), ("bn", 64), ("relu",), ("pool",),
                            ("flatten",), ("linear", 4096, 10)]),
}


def init(layers, rng) -> list:
    """One parameter list per layer (PyTorch's shapes: conv (O, C, k, k), linear (O, I))."""
    params = []
    for layer in layers:
        if layer[0] == "conv":
            _, c, o, k, _ = layer
            bound = 1 / np.sqrt(c * k * k)
            params.append([rng.uniform(-bound, bound, (o, c, k, k)).astype(DT),
                           rng.uniform(-bound, bound, o).astype(DT)])
        elif layer[0] == "linear":
            _, i, o = layer
            bound = 1 / np.sqrt(i)
            params.append([rng.uniform(-bound, bound, (o, i)).astype(DT),
                           rng.uniform(-bound, bound, o).astype(DT)])
        elif layer[0] == "bn":
            params.append([np.ones(layer[1], DT), np.zeros(layer[1], DT)])
        else:
            params.append([])
    return params


# -- the hand-written floor (NHWC inside) ---------------------------------------------------
def _im2col(x, k, pad):
    n, h, w, c = x.shape
    if pad:
        xp = np.zeros((n, h + 2 * pad, w + 2 * pad, c), x.dtype)
        xp[:, pad:pad + h, pad:pad + w] = x
    else:
        xp = x
    oh, ow = xp.shape[1] - k + 1, xp.shape[2] - k + 1
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(xp, (n, oh, ow, k, k, c),
                                           (s[0], s[1], s[2], s[1], s[2], s[3]))
    return view.reshape(n * oh * ow, k * k * c), (n, oh, ow)


class Floor:
    """The floor's training step: forward, backward and SGD, all by hand."""

    def __init__(self, layers, params):
        self.layers = layers
        # conv weights as (k*k*C, O) matrices in the im2col column order; linear as (I, O)
        self.p = []
        for layer, ps in zip(layers, params):
            if layer[0] == "conv":
                w, b = ps
                o, c, k, _ = w.shape
                self.p.append([np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(k * k * c, o)),
                               b.copy()])
            elif layer[0] == "linear":
                self.p.append([np.ascontiguousarray(ps[0].T), ps[1].copy()])
            else:
                self.p.append([a.copy() for a in ps])

    def step(self, x, y):
        h = np.ascontiguousarray(x.transpose(0, 2, 3, 1))       # NHWC
        tape = []
        for i, (layer, ps) in enumerate(zip(self.layers, self.p)):
            kind = layer[0]
            if kind == "conv":
                _, c, o, k, pad = layer
                cols, (n, oh, ow) = _im2col(h, k, pad)
                out = cols @ ps[0]
                out += ps[1]
                tape.append((cols, h.shape))
                h = out.reshape(n, oh, ow, o)
            elif kind == "relu":
                np.maximum(h, 0, out=h)
                tape.append(h)
            elif kind == "pool":
                n, hh, ww, c = h.shape
                rows = np.maximum(h[:, 0::2], h[:, 1::2])
                out = np.maximum(rows[:, :, 0::2], rows[:, :, 1::2])
                tape.append((h, out))
                h = out
            elif kind == "bn":
                shape = h.shape
                r = h.reshape(-1, shape[-1])
                ones = np.ones(len(r), DT)
                xc = r - ones @ r / len(r)
                var = ones @ (xc * xc) / len(r)
                inv = 1 / np.sqrt(var + 1e-5)
                xc *= inv
                tape.append((xc, inv, ones))
                out = xc * ps[0]
                out += ps[1]
                h = out.reshape(shape)
            elif kind == "flatten":      # in PyTorch's (C, H, W) order, as the weights are
                tape.append(h.shape)
                h = h.transpose(0, 3, 1, 2).reshape(len(h), -1)
            elif kind == "linear":
                tape.append(h)
                out = h @ ps[0]
                out += ps[1]
                h = out
        # softmax cross-entropy and its gradient
        z = h - h.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
        e /= s
        e[rows, y] -= 1
        e /= len(y)
        g = e
        for i in range(len(self.layers) - 1, -1, -1):
            layer, ps, saved = self.layers[i], self.p[i], tape[i]
            kind = layer[0]
            if kind == "linear":
                hin = saved
                dw, db = hin.T @ g, np.ones(len(g), DT) @ g
                g = g @ ps[0].T if i else None
                ps[0] -= LR * dw
                ps[1] -= LR * db
            elif kind == "flatten":
                n, hh, ww, c = saved
                g = g.reshape(n, c, hh, ww).transpose(0, 2, 3, 1)
            elif kind == "bn":
                xhat, inv, ones = saved
                shape = g.shape
                g2 = g.reshape(-1, shape[-1])
                db = ones @ g2
                dw = ones @ (g2 * xhat)
                m = len(g2)
                dx = g2 * m
                dx -= db
                dx -= xhat * dw
                dx *= ps[0] * inv / m
                ps[0] -= LR * dw
                ps[1] -= LR * db
                g = dx.reshape(shape)
            elif kind == "pool":
                hin, out = saved
                gx = np.zeros_like(hin)
                for a in (0, 1):
                    for b in (0, 1):
                        win = hin[:, a::2, b::2]
                        gx[:, a::2, b::2] = (win == out) * g
                g = gx
            elif kind == "relu":
                g = g * (saved > 0)
            elif kind == "conv":
                _, c, o, k, pad = layer
                cols, xshape = saved
                g2 = g.reshape(-1, o)
                dw = cols.T @ g2
                db = np.ones(len(g2), DT) @ g2
                if i:   # the first conv's input needs no gradient
                    n, hh, ww, _ = xshape
                    oh, ow = g.shape[1], g.shape[2]
                    wk = ps[0].reshape(k * k, c, o).transpose(0, 2, 1)   # (k*k, O, C)
                    prods = np.matmul(g2, wk)                            # (k*k, M, C)
                    gp = np.zeros((n, hh + 2 * pad, ww + 2 * pad, c), DT)
                    for a in range(k):
                        for b in range(k):
                            gp[:, a:a + oh, b:b + ow] += prods[a * k + b].reshape(n, oh, ow, c)
                    g = gp[:, pad:pad + hh, pad:pad + ww]
                ps[0] -= LR * dw
                ps[1] -= LR * db
        return loss


# -- chainrule: the same model from ops and Variables ---------------------------------------
class Chainrule:
    def __init__(self, layers, params, compiled: bool, shape):
        self.layers = layers
        self.vars = []
        self.stats = []
        for layer, ps in zip(layers, params):
            self.vars.append([cr.Variable(a.copy()) for a in ps])
            if layer[0] == "bn":
                self.stats.append((np.zeros(layer[1], DT), np.ones(layer[1], DT)))
            else:
                self.stats.append(None)
        self.params = [v for vs in self.vars for v in vs]
        self.compiled = compiled
        if compiled:
            x = cr.placeholder((None,) + shape, name="x")
            y = cr.placeholder((None,), dtype=np.int64, name="y")
            loss = cr.cross_entropy(self.forward(x), y)
            grads = cr.grad(loss, self.params)
            self.fn = cr.function([x, y], loss, updates=[
                (p, p - LR * g) for p, g in zip(self.params, grads)])

    def forward(self, h):
        for layer, vs, stats in zip(self.layers, self.vars, self.stats):
            kind = layer[0]
            if kind == "conv":
                h = cr.conv2d(h, vs[0], vs[1], padding=layer[4])
            elif kind == "relu":
                h = cr.relu(h)
            elif kind == "pool":
                h = cr.max_pool2d(h, 2)
            elif kind == "bn":
                h = cr.batch_norm(h, None, None, vs[0], vs[1], training=True)
            elif kind == "flatten":
                h = cr.reshape(h, (-1, int(np.prod(h.shape[1:]))))
            elif kind == "linear":
                h = cr.nn.functional.linear(h, vs[0], vs[1])
        return h

    def step(self, x, y):
        if self.compiled:
            return float(self.fn(x, y))
        loss = cr.cross_entropy(self.forward(cr.tensor(x)), y)
        loss.backward()
        for p in self.params:
            p.data -= LR * p.grad.data
            p.grad = None
        return loss.item()


# -- PyTorch eager --------------------------------------------------------------------------
class Torch:
    def __init__(self, layers, params):
        import torch

        self.torch = torch
        mods = []
        for layer, ps in zip(layers, params):
            kind = layer[0]
            if kind == "conv":
                m = torch.nn.Conv2d(layer[1], layer[2], layer[3], padding=layer[4])
            elif kind == "linear":
                m = torch.nn.Linear(layer[1], layer[2])
            elif kind == "bn":
                m = torch.nn.BatchNorm2d(layer[1])
            elif kind == "relu":
                m = torch.nn.ReLU()
            elif kind == "pool":
                m = torch.nn.MaxPool2d(2)
            else:
                m = torch.nn.Flatten()
            if ps:
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(ps[0]))
                    m.bias.copy_(torch.from_numpy(ps[1]))
            mods.append(m)
        self.model = torch.nn.Sequential(*mods)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def step(self, x, y):
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(torch.from_numpy(x)),
                                                 torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return loss.item()


def check(name: str) -> None:
    """One step of every column from the same weights: the losses agree."""
    shape, layers = MODELS[name]
    rng = np.random.default_rng(0)
    params = init(layers, rng)
    x = rng.standard_normal((BATCH,) + shape).astype(DT)
    y = rng.integers(0, 10, BATCH)
    runs = {"floor": Floor(layers, params), "torch": Torch(layers, params),
            "eager": Chainrule(layers, params, False, shape),
            "compiled": Chainrule(layers, params, True, shape)}
    losses = {k: [r.step(x, y) for _ in range(3)] for k, r in runs.items()}
    ref = np.array(losses["torch"])
    for k, v in losses.items():
        if not np.allclose(v, ref, rtol=1e-4, atol=1e-5):
            raise SystemExit(f"{name}: {k} losses {v} differ from PyTorch's {ref.tolist()}")


def bench(name: str, repeats: int, steps: int, clock=time.perf_counter) -> dict:
    shape, layers = MODELS[name]
    rng = np.random.default_rng(0)
    params = init(layers, rng)
    x = rng.standard_normal((BATCH,) + shape).astype(DT)
    y = rng.integers(0, 10, BATCH)
    runs = {"floor": Floor(layers, params), "torch": Torch(layers, params),
            "eager": Chainrule(layers, params, False, shape),
            "compiled": Chainrule(layers, params, True, shape)}
    best = {k: float("inf") for k in runs}
    for r in runs.values():      # warm up: first-touch page faults, BLAS buffers
        for _ in range(2):
            r.step(x, y)
    for _ in range(repeats):
        for k, r in runs.items():
            t0 = clock()
            for _ in range(steps):
                r.step(x, y)
            best[k] = min(best[k], (clock() - t0) / steps * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by CPU time of this process (steadier on a shared machine; "
                         "run with OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(1))")
    args = ap.parse_args()
    import torch

    clock = time.perf_counter
    if args.cpu_time:
        torch.set_num_threads(1)
        clock = time.process_time
    print(f"float32, batch {BATCH}, SGD steps; best of {args.repeats} interleaved repeats of "
          f"{args.steps} steps; torch {torch.__version__} ({torch.get_num_threads()} threads)"
          + ("; CPU time" if args.cpu_time else ""))
    print(f"{'model':8} {'floor ms':>9} {'torch ms':>9} {'eager ms':>9} {'compiled':>9}"
          f" {'torch/floor':>12} {'eager/floor':>12} {'compiled/floor':>15}")
    for name in args.models:
        check(name)
        t = bench(name, args.repeats, args.steps, clock)
        f = t["floor"]
        print(f"{name:8} {f:9.2f} {t['torch']:9.2f} {t['eager']:9.2f} {t['compiled']:9.2f}"
              f" {t['torch'] / f:11.2f}x {t['eager'] / f:11.2f}x {t['compiled'] / f:14.2f}x")


if __name__ == "__main__":
    main()
