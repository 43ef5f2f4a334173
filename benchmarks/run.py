"""Side-by-side benchmarks of chainrule against a hand-written NumPy floor, PyTorch and micrograd.

Usage (from the repository root; see benchmarks/README.md for why the two variables are unset)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/run.py [--quick] [--only NAME]

NAME is one of ``mlp``, ``perop``, ``deep``, ``site`` (comma-separated for several). Every figure
is the best of its repeats after warm-up, measured with ``time.perf_counter`` in this run; ratios
are against the hand-written NumPy floor measured alongside. A column whose library is missing or
raises prints ``n/a`` with the first line of the error instead of stopping the run.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Benchmark the working tree's chainrule, whether or not it is installed into the venv.
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))

import handwritten  # noqa: E402  (needs the path above)

LR = 0.01
SECTIONS = ("mlp", "perop", "deep", "site", "e2e")


# ------------------------------------------------------------------------------------------
# Timing and result cells
# ------------------------------------------------------------------------------------------

@dataclass
class Settings:
    quick: bool

    @property
    def repeats(self) -> int:
        return 5 if self.quick else 15

    @property
    def min_time(self) -> float:
        """Seconds each repeat should last, so that timer resolution never matters."""
        return 0.005 if self.quick else 0.025


@dataclass
class NA:
    """A cell that could not be measured, with the reason."""

    reason: str

    def __str__(self) -> str:
        return f"n/a ({self.reason})"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    reason = reason.replace("|", "/")  # keep the markdown table intact
    return reason if len(reason) <= 90 else reason[:87] + "..."


def best_time(fn: Callable[[], object], s: Settings, warmup: int = 3,
                min_time: float | None = None) -> float:
    """Best seconds per call of ``fn`` over ``s.repeats`` repeats, after ``warmup`` calls.

    Each repeat times a loop of ``inner`` calls, with ``inner`` calibrated so that a repeat
    lasts at least ``min_time`` (default ``s.min_time``). The garbage collector stays on, as in
    real use, so engines that leave reference cycles pay for collecting them; ``gc.collect()``
    runs before each repeat, outside the timing, so every repeat starts from the same heap.
    """
    min_time = s.min_time if min_time is None else min_time
    for _ in range(warmup):
        fn()
    inner = 1
    while True:
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        inner *= 2 if elapsed == 0 else max(2, min(10, int(1.2 * min_time / elapsed) + 1))
    times = [elapsed / inner]
    for _ in range(s.repeats - 1):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return min(times)


def fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def cell(value: float | NA, floor: float | NA | None = None, note: str = "") -> str:
    if isinstance(value, NA):
        return str(value)
    text = fmt_time(value)
    if floor is not None and not isinstance(floor, NA):
        text += f" ({value / floor:.2f}×)"
    return text + note


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


_CR_CACHE: dict[str, object] = {}


def import_chainrule():
    """``chainrule`` or raise; the import error is remembered so it is reported once per cell."""
    if "mod" not in _CR_CACHE:
        try:
            import chainrule
            _CR_CACHE["mod"] = chainrule
        except Exception as exc:  # noqa: BLE001  (the core may be half-written: any error)
            _CR_CACHE["mod"] = exc
    mod = _CR_CACHE["mod"]
    if isinstance(mod, BaseException):
        raise mod
    return mod


def import_torch():
    import torch
    return torch


def measure(make: Callable[[], Callable[[], object]], s: Settings,
            check: Callable[[object], str] | None = None,
            min_time: float | None = None) -> tuple[float | NA, str]:
    """Build a step with ``make`` and time it; any exception becomes an ``NA`` cell.

    ``check`` sees the first call's result and returns a note for the cell ("" when fine).
    """
    try:
        step = make()
        note = check(step()) if check else ""
        return best_time(step, s, min_time=min_time), note
    except Exception as exc:  # noqa: BLE001
        return NA(first_line(exc)), ""


def measure_interleaved(columns, s: Settings, min_time: float | None = None) -> list:
    """Like :func:`measure` for several columns, but repeat by repeat in turn (floor, then
    each rival, then the floor again...), so that a slow phase of a shared machine lands on
    every column alike instead of on whichever one was running. Medians per column."""
    min_time = s.min_time if min_time is None else min_time
    steps, results = [], []
    for make, check in columns:
        try:
            step = make()
            note = check(step()) if check else ""
            for _ in range(3):
                step()
            inner = 1
            while True:
                gc.collect()
                t0 = time.perf_counter()
                for _ in range(inner):
                    step()
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time:
                    break
                inner *= 2 if elapsed == 0 else max(2, min(10, int(1.2 * min_time / elapsed) + 1))
            steps.append((step, inner, [elapsed / inner]))
            results.append(note)
        except Exception as exc:  # noqa: BLE001
            steps.append(None)
            results.append(NA(first_line(exc)))
    for _ in range(s.repeats - 1):
        for entry in steps:
            if entry is None:
                continue
            step, inner, times = entry
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(inner):
                step()
            times.append((time.perf_counter() - t0) / inner)
    return [(r, "") if entry is None else (min(entry[2]), r)
            for entry, r in zip(steps, results)]


# ------------------------------------------------------------------------------------------
# Header
# ------------------------------------------------------------------------------------------

def environment_header() -> str:
    lines = ["## Environment", ""]
    lines.append(f"- machine: {platform.machine()}, {os.cpu_count()} logical cores "
                 f"(affinity: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}); "
                 f"Python {platform.python_version()}; numpy {np.__version__}")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        busy = " -- other work is running; figures will be noisy" if load > 0.5 else ""
        lines.append(f"- 1-min load average at start: {load:.2f}{busy}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        value = os.environ.get(var)
        state = "unset" if value is None else f"SET to {value!r} -- numpy may be slowed; see README"
        lines.append(f"- `{var}`: {state}")
    try:
        import threadpoolctl

        for info in threadpoolctl.threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(f"- numpy BLAS: {info.get('internal_api')} {info.get('version')}, "
                             f"kernel {info.get('architecture')}, {info.get('num_threads')} threads")
    except ImportError:
        lines.append("- numpy BLAS: (install threadpoolctl to show kernel and threads)")
    try:
        torch = import_torch()
        lines.append(f"- torch {torch.__version__}: {torch.get_num_threads()} intra-op threads "
                     "(default, `torch.set_num_threads` not called)")
    except Exception as exc:  # noqa: BLE001
        lines.append(f"- torch: n/a ({first_line(exc)})")
    try:
        cr = import_chainrule()
        lines.append(f"- chainrule {getattr(cr, '__version__', '?')} from {Path(cr.__file__).parent}")
    except Exception as exc:  # noqa: BLE001
        lines.append(f"- chainrule: n/a ({first_line(exc)})")
    try:
        import micrograd  # noqa: F401
        lines.append("- micrograd 0.1.0 (PyPI)")
    except ImportError:
        lines.append("- micrograd: not installed (`pip install micrograd==0.1.0`)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# 1. MLP training step
# ------------------------------------------------------------------------------------------

MLP_CONFIGS = {
    "small": dict(sizes=[64, 128, 10], batch=64),
    "large": dict(sizes=[784, 512, 256, 10], batch=256),
}


N_BATCHES = 16


def mlp_data(sizes: list[int], batch: int):
    """Initial parameters and a pool of ``N_BATCHES`` batches with random labels.

    Steps cycle through the pool: a single repeated batch is memorised within a few hundred
    steps and drives the softmax towards saturation, so later repeats would time a different
    (and, once values underflow to subnormals, much slower) computation than earlier ones.
    """
    rng = np.random.default_rng(0)
    params = handwritten.init_params(sizes, rng)
    xs = rng.standard_normal((N_BATCHES, batch, sizes[0]), dtype=np.float32)
    ys = rng.integers(0, sizes[-1], size=(N_BATCHES, batch)).astype(np.int64)
    return params, list(xs), list(ys)


def cycling(step: Callable[[np.ndarray, np.ndarray], object], xs, ys) -> Callable[[], object]:
    """A no-argument step that feeds the next batch of the pool on every call."""
    batches = itertools.cycle(list(zip(xs, ys)))
    return lambda: step(*next(batches))


def make_numpy_mlp(params, xs, ys):
    params = handwritten.copy_params(params)
    return cycling(lambda x, y: handwritten.train_step(params, x, y, LR), xs, ys)


def make_torch_mlp(params, xs, ys):
    torch = import_torch()
    F = torch.nn.functional
    tparams = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
               for W, b in params]
    flat = [p for pair in tparams for p in pair]
    last = len(tparams) - 1

    def step(x, y):
        h = torch.from_numpy(x)  # zero-copy wrap each step, as a training loop would
        for i, (W, b) in enumerate(tparams):
            h = h @ W + b
            if i < last:
                h = torch.relu(h)
        loss = F.cross_entropy(h, torch.from_numpy(y))
        loss.backward()
        with torch.no_grad():
            for p in flat:
                p.add_(p.grad, alpha=-LR)  # in place, as torch.optim.SGD does
                p.grad = None
        return loss.detach()

    return cycling(step, xs, ys)


def _cr_params(cr, params):
    pairs = []
    for i, (W, b) in enumerate(params, start=1):
        pairs.append((cr.Variable(W.copy(), name=f"W{i}"), cr.Variable(b.copy(), name=f"b{i}")))
    return pairs


def _cr_mlp_loss(cr, pairs, x, y):
    h = x
    last = len(pairs) - 1
    for i, (W, b) in enumerate(pairs):
        h = h @ W + b
        if i < last:
            h = cr.relu(h)
    return cr.cross_entropy(h, y)


def make_cr_eager_mlp(params, xs, ys):
    cr = import_chainrule()
    pairs = _cr_params(cr, params)
    flat = [p for pair in pairs for p in pair]

    def step(x, y):
        loss = _cr_mlp_loss(cr, pairs, cr.tensor(x), cr.tensor(y))  # wrap each step
        loss.backward()
        for p in flat:
            p.data -= LR * p.grad.data
            p.grad = None
        return loss

    return cycling(step, xs, ys)


COMPILED_FALLBACK_NOTE = " †"


def make_cr_compiled_mlp(params, xs, ys, notes: list[str]):
    cr = import_chainrule()
    pairs = _cr_params(cr, params)
    flat = [p for pair in pairs for p in pair]
    xp = cr.placeholder((None, xs[0].shape[1]), dtype=np.float32, name="x")
    yp = cr.placeholder((None,), dtype=np.int64, name="y")
    loss = _cr_mlp_loss(cr, pairs, xp, yp)
    grads = cr.grad(loss, flat)
    try:
        fn = cr.function([xp, yp], [loss],
                         updates=[(p, p - LR * g) for p, g in zip(flat, grads)])
    except TypeError as exc:
        if "updates" not in str(exc):
            raise
        # `updates=` is not in the public spec (api.md): compile loss and gradients and apply
        # the SGD update in NumPy, and mark the cell so the figure is not mistaken for it.
        notes.append(COMPILED_FALLBACK_NOTE)
        fn_grads = cr.function([xp, yp], [loss, *grads])

        def step_fallback(x, y):
            out = fn_grads(x, y)
            for p, g in zip(flat, out[1:]):
                p.data -= LR * g
            return out[0]

        return cycling(step_fallback, xs, ys)
    return cycling(lambda x, y: fn(x, y)[0], xs, ys)


def _loss_value(out) -> float:
    if isinstance(out, (float, np.floating)):
        return float(out)
    if hasattr(out, "numpy"):
        out = out.numpy()
    return float(np.asarray(out))


def bench_mlp(s: Settings) -> str:
    header = ["MLP step (fwd+bwd+SGD), float32", "NumPy floor",
              "PyTorch eager", "chainrule eager", "chainrule compiled"]
    rows = []
    footnotes = set()
    for name, cfg in MLP_CONFIGS.items():
        params, xs, ys = mlp_data(**cfg)
        ref_loss = handwritten.loss_and_grads(handwritten.copy_params(params), xs[0], ys[0])[0]

        def check(out, ref=ref_loss):
            """First-step loss must match the floor's: flags a column computing something else."""
            value = _loss_value(out)
            if abs(value - ref) > 1e-4 * max(1.0, abs(ref)):
                footnotes.add("! first-step loss differs from the floor's (see README)")
                return f" ! loss {value:.5g} vs {ref:.5g}"
            return ""

        notes: list[str] = []
        (floor, _), (t_torch, n_torch), (t_eager, n_eager), (t_comp, n_comp) = \
            measure_interleaved([
                (lambda: make_numpy_mlp(params, xs, ys), None),
                (lambda: make_torch_mlp(params, xs, ys), check),
                (lambda: make_cr_eager_mlp(params, xs, ys), check),
                (lambda: make_cr_compiled_mlp(params, xs, ys, notes), check),
            ], s)
        if notes:
            footnotes.add("† `cr.function(..., updates=)` unsupported: compiled loss+grads, "
                          "SGD update applied in NumPy")
        label = f"{name}: batch {cfg['batch']}, {'-'.join(map(str, cfg['sizes']))}, ReLU"
        rows.append([label, cell(floor), cell(t_torch, floor, n_torch),
                     cell(t_eager, floor, n_eager), cell(t_comp, floor, "".join(notes) + n_comp)])
    out = ["## 1. MLP training step", "",
           "Time per step (ratio to the NumPy floor). Softmax cross-entropy on integer labels; "
           f"steps cycle through {N_BATCHES} batches with random labels.", "",
           table(header, rows)]
    if footnotes:
        out += [""] + sorted(footnotes)
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# 2. Per-op overhead on tiny tensors
# ------------------------------------------------------------------------------------------

PEROP_OPS = 2000
PEROP_MIN_TIME = 0.025


def _perop_inputs():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(4), rng.uniform(0.5, 1.5, 4), rng.uniform(-0.5, 0.5, 4))


def make_numpy_perop(n_ops: int):
    h0, a, b = _perop_inputs()

    def step():
        h = h0
        saved = []  # tanh outputs, the only values the backward pass needs
        for k in range(n_ops):
            op = k % 3
            if op == 0:
                h = h * a
            elif op == 1:
                h = h + b
            else:
                h = np.tanh(h)
                saved.append(h)
        g = np.ones_like(h)  # d sum(h) / d h
        for k in range(n_ops - 1, -1, -1):
            op = k % 3
            if op == 0:
                g = g * a
            elif op == 2:
                t = saved.pop()
                g = g * (1.0 - t * t)  # d tanh(x) = 1 - y^2
        return g

    return step


def make_cr_perop(n_ops: int):
    cr = import_chainrule()
    h0, a0, b0 = _perop_inputs()
    a, b = cr.tensor(a0), cr.tensor(b0)

    def step():
        x = cr.tensor(h0, requires_grad=True)
        _chain(x, a, b, n_ops).sum().backward()
        return x.grad

    return step


def _chain(h, a, b, n_ops: int):
    """The row-2 chain, for any engine whose tensors have ``*``, ``+`` and ``.tanh()``."""
    for k in range(n_ops):
        op = k % 3
        if op == 0:
            h = h * a
        elif op == 1:
            h = h + b
        else:
            h = h.tanh()
    return h


def make_torch_perop(n_ops: int):
    torch = import_torch()
    h0, a0, b0 = _perop_inputs()
    a, b = torch.from_numpy(a0), torch.from_numpy(b0)

    def step():
        x = torch.tensor(h0, requires_grad=True)
        _chain(x, a, b, n_ops).sum().backward()
        return x.grad

    return step


def make_micrograd_perop(n_ops: int):
    import math

    from micrograd.engine import Value

    def tanh(v: Value) -> Value:
        # micrograd 0.1.0 on PyPI has no tanh; this is the one from micrograd's own lecture
        # version, written exactly as its built-in ops are (closure over out), so costs match.
        t = math.tanh(v.data)
        out = Value(t, (v,), "tanh")

        def _backward():
            v.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out

    # micrograd's topological sort recurses once per node of the chain.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * n_ops + 1000))
    a, b = Value(0.9), Value(0.1)

    def step():
        x = Value(0.3)
        h = x
        for k in range(n_ops):
            op = k % 3
            if op == 0:
                h = h * a
            elif op == 1:
                h = h + b
            else:
                h = tanh(h)
        h.backward()
        return x.grad

    return step


def _chain_floats(h, n_ops: int, tanh):
    """The chain as people write it: Python floats as the constants (``x * 1.01``)."""
    for k in range(n_ops):
        op = k % 3
        if op == 0:
            h = h * 1.01
        elif op == 1:
            h = h + 0.01
        else:
            h = tanh(h)
    return h


def make_numpy_perop_floats(n_ops: int, shape: tuple):
    h0 = np.full(shape, 0.3)

    def step():
        h, saved = h0, []
        for k in range(n_ops):
            op = k % 3
            if op == 0:
                h = h * 1.01
            elif op == 1:
                h = h + 0.01
            else:
                h = np.tanh(h)
                saved.append(h)
        g = np.ones_like(h)
        for k in range(n_ops - 1, -1, -1):
            op = k % 3
            if op == 0:
                g = g * 1.01
            elif op == 2:
                t = saved.pop()
                g = g * (1.0 - t * t)  # d tanh(x) = 1 - y^2
        return g

    return step


def _make_engine_perop_floats(engine, n_ops: int, shape: tuple):
    """chainrule and PyTorch, written the same way: a leaf, the chain, sum().backward()."""
    h0 = np.full(shape, 0.3)

    def step():
        x = engine.tensor(h0, requires_grad=True)
        _chain_floats(x, n_ops, engine.tanh).sum().backward()
        return x.grad

    return step


def make_cr_perop_floats(n_ops: int, shape: tuple):
    return _make_engine_perop_floats(import_chainrule(), n_ops, shape)


def make_torch_perop_floats(n_ops: int, shape: tuple):
    return _make_engine_perop_floats(import_torch(), n_ops, shape)


def bench_perop(s: Settings) -> str:
    n = PEROP_OPS
    cols = [("NumPy floor (hand-written fwd+bwd)", make_numpy_perop),
            ("PyTorch eager", make_torch_perop),
            ("chainrule eager", make_cr_perop),
            ("micrograd (scalar)", make_micrograd_perop)]
    # Same repeat length in both modes: the cyclic GC's share depends on it (see README).
    # Columns take turns repeat by repeat, like the MLP rows.
    timed = measure_interleaved([(lambda make=make: make(n), None) for _, make in cols], s,
                                min_time=PEROP_MIN_TIME)
    per_op = {label: t if isinstance(t, NA) else t / n
              for (label, _), (t, _) in zip(cols, timed)}
    floor = per_op[cols[0][0]]

    def us(v):
        if isinstance(v, NA):
            return str(v)
        text = f"{v * 1e6:.2f} µs/op"
        return text if isinstance(floor, NA) else text + f" ({v / floor:.1f}×)"

    header = ["chain (mul, add, tanh cycling)"] + [c[0] for c in cols]
    rows = [[f"{n} ops, shape (4,) float64, fwd + bwd"] + [us(per_op[c[0]]) for c in cols]]
    # the same chain with Python floats as constants, on 0-d and one-element tensors; micrograd
    # is shape-less, so its one column is the scalar chain measured above
    float_cols = []
    for shape in ((), (1,)):
        float_cols += [(f"{label} {shape}", make, shape) for label, make in (
            ("floor", make_numpy_perop_floats), ("torch", make_torch_perop_floats),
            ("chainrule", make_cr_perop_floats))]
    timed = measure_interleaved(
        [(lambda make=make, shape=shape: make(n, shape), None) for _, make, shape in float_cols]
        + [(lambda: make_micrograd_perop(n), None)], s, min_time=PEROP_MIN_TIME)
    got = {c[0]: t if isinstance(t, NA) else t / n for c, (t, _) in zip(float_cols, timed)}
    micro = timed[-1][0] if isinstance(timed[-1][0], NA) else timed[-1][0] / n
    for shape in ((), (1,)):
        floor = got[f"floor {shape}"]
        rows.append([f"{n} ops, Python-float constants, shape {shape} float64"]
                    + [us(got[f"{k} {shape}"]) for k in ("floor", "torch", "chainrule")]
                    + [us(micro)])
    return "\n".join([
        "## 2. Per-op overhead on tiny tensors", "",
        "Whole chain (forward, then `sum().backward()`) divided by the number of ops "
        "(ratio to the NumPy floor). micrograd chains the same ops on one scalar `Value` "
        "(tanh added in micrograd's own style; recursion limit raised for its recursive sort).",
        "", table(header, rows)])


# ------------------------------------------------------------------------------------------
# 3. Deep chains (each case in a child process: clean peak-RSS and crash isolation)
# ------------------------------------------------------------------------------------------

DEEP_FACTOR = 0.999999  # h = h * c keeps the value finite over 10^6 nodes


def deep_chain(impl: str, n: int) -> Callable[[], object]:
    c = DEEP_FACTOR
    if impl == "numpy":
        def run():
            h = np.array(1.0)
            for _ in range(n):
                h = h * c
            g = np.array(1.0)
            for _ in range(n):
                g = g * c  # d (h * c) / d h = c
            return g
        return run
    if impl == "chainrule":
        cr = import_chainrule()

        def run():
            x = cr.tensor(np.array(1.0), requires_grad=True)
            h = x
            for _ in range(n):
                h = h * c
            h.backward()
            return x.grad
        return run
    if impl == "torch":
        torch = import_torch()

        def run():
            x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
            h = x
            for _ in range(n):
                h = h * c
            h.backward()
            return x.grad
        return run
    raise ValueError(impl)


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kb() -> int:
    """Peak resident set size of this process in kB.

    Prefers Linux's ``VmHWM``: ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a child
    started from a big parent (torch imported) would report the parent's peak instead.
    """
    hwm = _proc_status_kb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss_kb() -> int:
    """Reset the peak to the current RSS where Linux allows it; return the new baseline (kB)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak resident set size ("high water mark")
        rss = _proc_status_kb("VmRSS")
        if rss is not None:
            return rss
    except OSError:
        pass
    return peak_rss_kb()


def deep_child(impl: str, n: int, repeats: int, budget: float) -> None:
    """Child-process entry: print JSON with the per-repeat seconds and the peak RSS growth.

    Runs up to ``repeats`` timed repeats but starts no new one once ``budget`` seconds have
    been spent, so a slow engine shows as fewer repeats rather than a blown time limit.
    """
    deep_chain(impl, min(n, 10_000))()  # warm-up: imports, caches, first-call paths
    base_kb = reset_peak_rss_kb()
    run = deep_chain(impl, n)
    times = []
    while len(times) < repeats and sum(times) < budget:
        t0 = time.perf_counter()
        run()  # returns after its locals, the whole graph among them, have been freed
        times.append(time.perf_counter() - t0)
    peak_kb = peak_rss_kb()
    print(json.dumps({"times": times, "rss_growth_mb": (peak_kb - base_kb) / 1024}))


def run_deep_case(impl: str, n: int, repeats: int, budget: float,
                  timeout: float) -> dict | NA:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_deep-child", impl, str(n),
           str(repeats), str(budget)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return NA(f"over {timeout:.0f} s timeout")
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        last = err[-1] if err else f"exit code {proc.returncode}"
        if proc.returncode < 0:
            last = f"killed by signal {-proc.returncode}: {last}"
        return NA(last.replace("|", "/")[:90])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["best"] = min(result["times"])
    return result


def bench_deep(s: Settings) -> str:
    sizes = [100_000] if s.quick else [100_000, 1_000_000]
    repeats = 3 if s.quick else 5
    # Per case: stop starting repeats after `budget` s; kill the child after `timeout` s.
    budget = {100_000: 3.0 if s.quick else 8.0, 1_000_000: 15.0}
    timeout = 60.0 if s.quick else 120.0
    rows = []
    for n in sizes:
        results = {impl: run_deep_case(impl, n, repeats, budget[n], timeout)
                   for impl in ("numpy", "torch", "chainrule")}
        floor = results["numpy"]
        floor_t = floor if isinstance(floor, NA) else floor["best"]

        def show(r, with_rss=True):
            if isinstance(r, NA):
                return str(r)
            t = r["best"]
            text = f"{t:.3f} s = {t / n * 1e6:.2f} µs/node"
            if not isinstance(floor_t, NA) and r is not floor:
                text += f" ({t / floor_t:.0f}×)"
            if with_rss:
                text += f", +{r['rss_growth_mb']:.0f} MB peak RSS"
            return text + f" [best of {len(r['times'])}]"

        rows.append([f"10^{len(str(n)) - 1} nodes", show(floor, with_rss=False),
                     show(results["torch"]), show(results["chainrule"])])
    header = ["`h = h * c` on a 0-d float64 tensor, fwd + bwd", "NumPy floor",
              "PyTorch eager", "chainrule eager"]
    out = ["## 3. Deep chains", "",
           "Forward + backward + freeing the graph, each case in its own process after a "
           "10^4-node warm-up; peak RSS growth over the warmed-up baseline (Linux `VmHWM`, "
           "reset after warm-up; `getrusage` elsewhere). "
           f"Up to {repeats} repeats, fewer when one case would pass its time budget "
           "(the count is shown). The NumPy floor is the hand-written forward loop and "
           "backward loop `g = g * c`."]
    if s.quick:
        out.append("`--quick` runs 10^5 only.")
    return "\n".join(out + ["", table(header, rows)])


# ------------------------------------------------------------------------------------------
# 4. Creation-site capture
# ------------------------------------------------------------------------------------------

def bench_site_capture(s: Settings) -> str:
    """Cost of creation-site capture (errors and drawings name the user's line).

    Times the per-op chain of row 2 with capture on (as shipped) and off (the capture function
    replaced by one returning nothing), in the same run, interleaved.
    """
    title = ["## 4. Creation-site capture cost", ""]
    try:
        cr = import_chainrule()
        from chainrule.ops import registry
    except Exception as exc:  # noqa: BLE001
        return "\n".join(title + [f"n/a ({first_line(exc)})"])
    # "off" is the shipped apply() with its site-capture lines replaced by `t.site = ()`,
    # compiled from its own source, so both variants differ in exactly those lines
    import inspect
    import textwrap

    import chainrule.ops as ops_pkg

    src = textwrap.dedent(inspect.getsource(registry.apply)).splitlines()
    try:
        first = next(i for i, ln in enumerate(src) if "# the creation site" in ln)
        last = next(i for i, ln in enumerate(src) if "site_of(f)" in ln)
    except StopIteration:
        return "\n".join(title + ["n/a (apply() has no marked site-capture block)"])
    indent = src[first][: len(src[first]) - len(src[first].lstrip())]
    patched = "\n".join(src[:first] + [indent + "t.site = ()"] + src[last + 1:])
    namespace = dict(vars(registry))
    exec(compile(patched, "<apply without site capture>", "exec"), namespace)
    real, fake = registry.apply, namespace["apply"]

    def use(fn):
        registry.apply = fn
        ops_pkg.apply = fn

    n = PEROP_OPS
    step = make_cr_perop(n)
    on, off = [], []
    try:
        for _ in range(3):
            use(real)
            on.append(best_time(step, s) / n * 1e6)
            use(fake)
            off.append(best_time(step, s) / n * 1e6)
    finally:
        use(real)
    a, b = min(on), min(off)
    del cr
    return "\n".join(title + [
        "The per-op chain of row 2 (forward + backward, µs per op), with the capture of each "
        "node's creation site on (as shipped) and switched off, interleaved in one run.",
        "",
        "| capture on | capture off | cost per op |",
        "|---|---|---|",
        f"| {a:.2f} µs/op | {b:.2f} µs/op | {a - b:+.2f} µs ({100 * (a - b) / b:+.0f}%) |",
    ])


# ------------------------------------------------------------------------------------------

def bench_e2e(s: Settings) -> str:
    """Row 5: the digits MLP trained end to end (benchmarks/e2e.py), interleaved repeats."""
    import e2e

    title = ["## 5. End to end: digits MLP", "",
             "64-128-10 ReLU, softmax cross-entropy, Adam lr 1e-3, batch 64, 30 epochs on "
             "scikit-learn's digits (1437 train / 360 test); same initial weights and the same "
             "batches in the same order for every column; best wall time of "
             f"{3 if s.repeats > 5 else 1} interleaved run(s), and the final test accuracy.", ""]
    try:
        return "\n".join(title + [e2e.table(e2e.run(repeats=3 if s.repeats > 5 else 1))])
    except Exception as exc:  # noqa: BLE001  (scikit-learn absent, ...)
        return "\n".join(title + [f"n/a ({first_line(exc)})"])


BENCHES = {"mlp": bench_mlp, "perop": bench_perop, "deep": bench_deep, "site": bench_site_capture,
           "e2e": bench_e2e}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_deep-child":
        deep_child(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 10^5 chain only")
    parser.add_argument("--only", metavar="NAME",
                        help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    names = list(SECTIONS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(SECTIONS)}")
    s = Settings(quick=args.quick)

    t0 = time.perf_counter()
    print("# chainrule benchmarks" + (" (--quick)" if s.quick else ""), flush=True)
    print(f"\n{environment_header()}\n- timing: best of {s.repeats} repeats after warm-up (on a "
          f"shared machine noise only adds time), each "
          f"repeat >= {s.min_time * 1e3:.0f} ms (calibrated inner loop), gc on, "
          "gc.collect() between repeats\n", flush=True)
    for name in names:
        print(BENCHES[name](s) + "\n", flush=True)
    print(f"_total wall time {time.perf_counter() - t0:.1f} s_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
