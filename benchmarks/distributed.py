"""Data-parallel speed: samples per second of one process against N MPI ranks, same global batch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/distributed.py

One process runs the compiled ``opt.minimize`` step with NumPy's default BLAS threads (2 on
these machines); N ranks run ``cr.distributed.compiled_step`` with one BLAS thread each, each
on its shard of the same global batch. The columns take turns (one process, then the ranks,
round after round) and each figure is the best round. Also measured: the allreduce of the
model's gradient buffer alone (its share of a rank's step), and allreduce times over buffer
sizes, the fit ``t(bytes) = latency + bytes / bandwidth`` that docs/distributed.md uses.

Needs ``pip install 'chainrule[mpi]'``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}

MODELS = {
    "mlp-small": ("64-128-10 MLP", 64),
    "mlp-large": ("784-512-256-10 MLP", 256),
    "digits-cnn": ("digits CNN (1x8x8)", 64),
    "lenet": ("LeNet-5 (1x28x28)", 64),
    "bn-cnn": ("2x [conv3x3+BN+ReLU+pool] (3x32x32)", 64),
}


# -- one rank (or the single process) ----------------------------------------------------------
def build(cr, name: str, rng: np.random.Generator):
    """Parameters and a loss function of (x, y) for each model, float32."""
    f32 = np.float32

    def var(*shape, fan_in):
        return cr.Variable((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(f32))

    def zeros(n):
        return cr.Variable(np.zeros(n, f32))

    if name.startswith("mlp"):
        sizes = [64, 128, 10] if name == "mlp-small" else [784, 512, 256, 10]
        ps = []
        for a, b in zip(sizes, sizes[1:]):
            ps += [var(a, b, fan_in=a), zeros(b)]

        def loss(x, y):
            h = x
            for i in range(0, len(ps), 2):
                h = h @ ps[i] + ps[i + 1]
                if i + 2 < len(ps):
                    h = cr.relu(h)
            return cr.cross_entropy(h, y)
        return ps, loss, (sizes[0],)
    if name == "digits-cnn":
        ps = [var(16, 1, 3, 3, fan_in=9), zeros(16), var(32, 16, 3, 3, fan_in=144), zeros(32),
              var(128, 10, fan_in=128), zeros(10)]

        def loss(x, y):
            h = cr.max_pool2d(cr.relu(cr.conv2d(x, ps[0], ps[1], padding=1)), 2)
            h = cr.max_pool2d(cr.relu(cr.conv2d(h, ps[2], ps[3], padding=1)), 2)
            return cr.cross_entropy(cr.reshape(h, (-1, 128)) @ ps[4] + ps[5], y)
        return ps, loss, (1, 8, 8)
    if name == "lenet":
        ps = [var(6, 1, 5, 5, fan_in=25), zeros(6), var(16, 6, 5, 5, fan_in=150), zeros(16),
              var(400, 120, fan_in=400), zeros(120), var(120, 84, fan_in=120), zeros(84),
              var(84, 10, fan_in=84), zeros(10)]

        def loss(x, y):
            h = cr.max_pool2d(cr.relu(cr.conv2d(x, ps[0], ps[1], padding=2)), 2)
            h = cr.max_pool2d(cr.relu(cr.conv2d(h, ps[2], ps[3])), 2)
            h = cr.relu(cr.reshape(h, (-1, 400)) @ ps[4] + ps[5])
            h = cr.relu(h @ ps[6] + ps[7])
            return cr.cross_entropy(h @ ps[8] + ps[9], y)
        return ps, loss, (1, 28, 28)
    if name == "bn-cnn":
        ps = [var(16, 3, 3, 3, fan_in=27), zeros(16), cr.Variable(np.ones(16, f32)), zeros(16),
              var(32, 16, 3, 3, fan_in=144), zeros(32), cr.Variable(np.ones(32, f32)),
              zeros(32), var(2048, 10, fan_in=2048), zeros(10)]

        def block(h, w, b, gamma, beta):
            h = cr.batch_norm(cr.conv2d(h, w, b, padding=1), None, None, gamma, beta,
                              training=True)
            return cr.max_pool2d(cr.relu(h), 2)

        def loss(x, y):
            h = block(x, *ps[0:4])
            h = block(h, *ps[4:8])
            return cr.cross_entropy(cr.reshape(h, (-1, 2048)) @ ps[8] + ps[9], y)
        return ps, loss, (3, 32, 32)
    raise ValueError(name)


def worker(name: str, steps: int, rounds: int, fraction: float = 1.0) -> None:
    import chainrule as cr

    cr.distributed.init()
    rank, world = cr.distributed.rank(), cr.distributed.world_size()
    rng = np.random.default_rng(0)
    ps, loss_fn, shape = build(cr, name, rng)
    batch = MODELS[name][1]
    data = rng.standard_normal((8, batch) + shape).astype(np.float32)
    labels = rng.integers(0, 10, (8, batch))
    opt = cr.optim.SGD(ps, lr=0.01, momentum=0.9)
    x = cr.placeholder((None,) + shape, dtype=np.float32, name="x")
    y = cr.placeholder((None,), dtype=np.int64, name="y")
    if world == 1:
        step = opt.minimize(loss_fn(x, y), [x, y])
        n = max(1, int(batch * fraction))       # a shard's share of the work, for the model
        shards = [(data[i][:n], labels[i][:n]) for i in range(8)]
    else:
        step = cr.distributed.compiled_step(opt, loss_fn(x, y), [x, y])
        lo = rank * batch // world
        hi = (rank + 1) * batch // world
        shards = [(data[i][lo:hi], labels[i][lo:hi]) for i in range(8)]
    for i in range(3):                                   # warm up
        step(*shards[i % 8])
    best = best_ar = float("inf")
    for _ in range(rounds):
        cr.distributed.barrier()
        t0 = time.perf_counter()
        for i in range(steps):
            step(*shards[i % 8])
        cr.distributed.barrier()
        best = min(best, (time.perf_counter() - t0) / steps)
        if world > 1:
            cr.distributed.barrier()
            t0 = time.perf_counter()
            for _ in range(steps):
                step.buffer.allreduce()
            best_ar = min(best_ar, (time.perf_counter() - t0) / steps)
    if rank == 0:
        n_bytes = sum(p.data.nbytes for p in ps)
        print(json.dumps({"step": best, "allreduce": best_ar if world > 1 else 0.0,
                          "bytes": n_bytes}))


def allreduce_sweep(rounds: int) -> None:
    import chainrule as cr

    cr.distributed.init()
    out = {}
    for n_bytes in [8, 1 << 10, 1 << 14, 1 << 17, 1 << 20, 1 << 22, 1 << 24]:
        buf = np.ones(max(1, n_bytes // 4), np.float32)
        reps = 200 if n_bytes < 1 << 20 else 20
        best = float("inf")
        for _ in range(rounds):
            cr.distributed.barrier()
            t0 = time.perf_counter()
            for _ in range(reps):
                cr.distributed.allreduce_(buf)
            best = min(best, (time.perf_counter() - t0) / reps)
        out[n_bytes] = best
    if cr.distributed.rank() == 0:
        print(json.dumps(out))


# -- the launcher ------------------------------------------------------------------------------
def run(ranks: int, args: list[str], one_thread: bool = False) -> dict:
    env = dict(os.environ, **MPI_ENV)
    cmd = [sys.executable, __file__, *args]
    if ranks > 1 or one_thread:
        env["OPENBLAS_NUM_THREADS"] = "1"
    if ranks > 1:
        cmd = [str(MPIEXEC), "-n", str(ranks), "--oversubscribe", "--bind-to", "none",
               sys.executable, "-m", "mpi4py", *cmd[1:]]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"benchmark rank failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", default="launcher", choices=["launcher", "worker", "sweep"])
    ap.add_argument("--model", default="mlp-small", choices=list(MODELS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=1.0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "worker":
        return worker(a.model, a.steps, a.rounds, a.fraction)
    if a.role == "sweep":
        return allreduce_sweep(a.rounds)
    if not MPIEXEC.exists():
        raise SystemExit("no mpiexec beside this python: pip install 'chainrule[mpi]'")
    load = os.getloadavg()[0]
    print(f"# data-parallel benchmark: 1 process (default BLAS threads) vs {a.ranks} ranks "
          f"(1 BLAS thread each), same global batch; best of interleaved rounds; "
          f"1-min load at start {load:.2f}\n")
    print("| model | global batch | 1 process | "
          f"{a.ranks} ranks | speed-up | allreduce share of a rank's step |")
    print("|---|---|---|---|---|---|")
    fits: dict = {}
    for name in a.models.split(","):
        label, batch = MODELS[name]
        best1 = bestn = whole = half = None
        cmd = ["--role", "worker", "--model", name, "--steps", str(a.steps), "--rounds", "1"]

        def better(new, old):
            return new if old is None or new["step"] < old["step"] else old
        for _ in range(a.rounds):     # interleave the four columns, round after round
            best1 = better(run(1, cmd), best1)
            bestn = better(run(a.ranks, cmd), bestn)
            whole = better(run(1, cmd, one_thread=True), whole)
            half = better(run(1, cmd + ["--fraction", "0.5"], one_thread=True), half)
        # the model of docs/distributed.md: a step on one core is fixed work c0 (Python, per
        # step, not divided among ranks) + work c1 proportional to the batch, fitted from one
        # core's step on the whole batch and on half of it
        c1 = max(0.0, 2 * (whole["step"] - half["step"]))
        fits[name] = (max(0.0, whole["step"] - c1), c1, bestn["bytes"], batch)
        s1, sn = batch / best1["step"], batch / bestn["step"]
        print(f"| {label} | {batch} | {s1:,.0f} samples/s | {sn:,.0f} samples/s | "
              f"{sn / s1:.2f}x | {bestn['allreduce'] / bestn['step']:.0%} "
              f"({bestn['allreduce'] * 1e3:.3f} ms for {bestn['bytes'] / 1e6:.2f} MB) |",
              flush=True)
    sweep = run(a.ranks, ["--role", "sweep", "--rounds", str(a.rounds)])
    print(f"\nallreduce (sum, in place, float32) over {a.ranks} ranks on this machine:\n")
    print("| bytes | time |")
    print("|---|---|")
    for n, t in sweep.items():
        print(f"| {int(n):,} | {t * 1e6:,.1f} µs |")
    xs = np.array([float(n) for n in sweep])
    ts = np.array(list(sweep.values()))
    slope, intercept = np.polyfit(xs, ts, 1)
    print(f"\nfit: t = {intercept * 1e6:.1f} µs + bytes / {1 / slope / 1e9:.2f} GB/s")
    print("\nmodel (docs/distributed.md): step(N) = c0 + c1 / N + ring allreduce "
          "2(N-1) a + 2 (N-1)/N bytes / B, with a = 20 µs per message on Ethernet\n")
    print("| model | c0 (fixed) | c1 (divisible) | grad bytes | link | N=8 speed-up | "
          "N=64 speed-up | best N |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (c0, c1, nbytes, batch) in fits.items():
        for gbps in (10, 100):
            bw = gbps / 8 * 1e9

            def step(n):
                return c0 + c1 / n + (2 * (n - 1) * 20e-6 + 2 * (n - 1) / n * nbytes / bw
                                      if n > 1 else 0.0)
            best = min(range(1, 257), key=step)
            print(f"| {MODELS[name][0]} | {c0 * 1e3:.2f} ms | {c1 * 1e3:.2f} ms | "
                  f"{nbytes / 1e6:.2f} MB | {gbps} Gb/s | {step(1) / step(8):.2f}x | "
                  f"{step(1) / step(64):.2f}x | {best} ({step(1) / step(best):.2f}x) |")


if __name__ == "__main__":
    main()
