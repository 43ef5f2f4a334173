"""Is the compiled ``opt.minimize`` step as fast as a hand-written constant-rate update?

The large MLP of row 1 (batch 256, 784-512-256-10, float32), one compiled training step per
call, in four columns built from the same initial weights and timed round by round in turn
(interleaved), best of the rounds:

* ``constant rate``: ``cr.function(..., updates=[(p, p - 0.01 * g) ...])``, the floor an
  optimizer cannot beat;
* ``SGD.minimize``: ``cr.optim.SGD(params, lr=0.01).minimize(loss, [x, y])``, the learning rate
  a 0-d float32 Variable read at call time (what the README and ``chainrule train`` use);
* ``float64 lr``: the same step with the rate a 0-d *float64* Variable, as ``cr.optim`` did
  before issue 7: NumPy 2 promotes ``lr * g`` to float64 for every parameter;
* ``Adam.minimize`` and ``SGD(momentum=0.9).minimize``, for reference.

Every column's update is checked to keep the weights float32. On a busy machine two-thread
BLAS collapses (see README.md); ``OPENBLAS_NUM_THREADS=1`` then gives steadier ratios.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/optim_step.py
    ... optim_step.py --rounds 10 --size small          # quicker
"""
from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np
import run as B  # also puts the working tree's src/ first on sys.path

import chainrule as cr

LR = 0.01


def _graph(params, xs):
    pairs = B._cr_params(cr, params)
    flat = [p for pair in pairs for p in pair]
    x = cr.placeholder((None, xs[0].shape[1]), dtype=np.float32, name="x")
    y = cr.placeholder((None,), dtype=np.int64, name="y")
    return flat, x, y, B._cr_mlp_loss(cr, pairs, x, y)


def make_constant(params, xs, ys):
    flat, x, y, loss = _graph(params, xs)
    grads = cr.grad(loss, flat)
    fn = cr.function([x, y], loss, updates=[(p, p - LR * g) for p, g in zip(flat, grads)])
    return flat, B.cycling(fn, xs, ys)


def make_float64_lr(params, xs, ys):
    flat, x, y, loss = _graph(params, xs)
    grads = cr.grad(loss, flat)
    lr = cr.Variable(np.asarray(LR, dtype=np.float64), name="lr")
    fn = cr.function([x, y], loss, updates=[(p, p - lr * g) for p, g in zip(flat, grads)])
    return flat, B.cycling(fn, xs, ys)


def make_minimize(optimizer, **kwargs):
    def make(params, xs, ys):
        flat, x, y, loss = _graph(params, xs)
        step = getattr(cr.optim, optimizer)(flat, **kwargs).minimize(loss, [x, y])
        return flat, B.cycling(step, xs, ys)
    return make


COLUMNS = {
    "constant rate": make_constant,
    "SGD.minimize": make_minimize("SGD", lr=LR),
    "float64 lr": make_float64_lr,
    "SGD(momentum).minimize": make_minimize("SGD", lr=LR, momentum=0.9),
    "Adam.minimize": make_minimize("Adam", lr=1e-3),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(B.MLP_CONFIGS), default="large")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (best is kept)")
    parser.add_argument("--steps", type=int, default=10, help="steps per column per round")
    args = parser.parse_args(argv)
    params, xs, ys = B.mlp_data(**B.MLP_CONFIGS[args.size])
    steps = {}
    for name, make in COLUMNS.items():
        flat, step = make(params, xs, ys)
        for _ in range(5):
            step()
        dtypes = {str(p.dtype) for p in flat}
        if dtypes != {"float32"}:
            print(f"{name}: weights became {dtypes}")
            return 1
        steps[name] = step
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps)
    floor = min(times["constant rate"])
    print(f"{args.size} MLP, compiled training step, best of {args.rounds} interleaved rounds "
          f"of {args.steps} steps (load average {os.getloadavg()[0]:.1f}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})")
    for name, ts in times.items():
        ms = np.array(ts) * 1e3
        print(f"  {name:24s} best {ms.min():.3f} ms  ({ms.min() / floor / 1e3:.3f}x constant "
              f"rate)   median {np.median(ms):.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
