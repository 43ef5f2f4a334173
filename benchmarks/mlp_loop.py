"""A tight, interleaved loop over the MLP step of row 1, for when run.py's figures are noisy.

Each round times 10 steps of every column in turn (floor, PyTorch, chainrule eager,
chainrule compiled); prints min / 25th percentile / median per step over the rounds.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/mlp_loop.py large
"""
from __future__ import annotations

import gc
import sys
import time

import numpy as np
import run as B


def main(size: str = "large", rounds: int = 40) -> None:
    params, xs, ys = B.mlp_data(**B.MLP_CONFIGS[size])
    columns = {"NumPy floor": B.make_numpy_mlp(params, xs, ys),
               "chainrule eager": B.make_cr_eager_mlp(params, xs, ys),
               "chainrule compiled": B.make_cr_compiled_mlp(params, xs, ys, [])}
    try:
        columns["PyTorch eager"] = B.make_torch_mlp(params, xs, ys)
    except Exception as exc:  # noqa: BLE001  (torch absent)
        print(f"PyTorch: n/a ({exc})")
    for step in columns.values():
        for _ in range(10):
            step()
    times: dict = {name: [] for name in columns}
    for _ in range(rounds):
        for name, step in columns.items():
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(10):
                step()
            times[name].append((time.perf_counter() - t0) / 10)
    floor = min(times["NumPy floor"])
    for name, ts in times.items():
        ms = np.array(ts) * 1e3
        print(f"{name:20s} min {ms.min():.3f} ms ({ms.min() / floor / 1e3:.2f}x)  "
              f"p25 {np.percentile(ms, 25):.3f}  median {np.median(ms):.3f}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["large"]))
