"""Inference of the large benchmark MLP: onnxruntime on the exported model against chainrule.

The MLP of row 1 (784-512-256-10, ReLU, float32) is exported with ``cr.onnx.export`` and run
by onnxruntime; chainrule runs the same weights as compiled flat NumPy (``cr.function`` on a
placeholder with a free batch dimension) and eagerly under ``cr.no_grad``. Each engine gets one
thread (OpenBLAS and onnxruntime are 3-20x slower on 2 threads on these shared machines), the
columns take turns repeat by repeat, and the best repeat is reported. Outputs are checked
against each other (rtol 1e-5) before timing.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/onnx_inference.py [--quick]
"""
from __future__ import annotations

import os

# one BLAS thread, set before NumPy is imported (it reads these once, at load)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import run as B  # benchmarks/run.py: timing helpers; puts src/ first on sys.path

SIZES = B.MLP_CONFIGS["large"]["sizes"]
BATCHES = (1, 64)
N_INPUTS = 8        # distinct input arrays cycled through, so no engine sees one array only


def build_model(cr):
    cr.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(SIZES)):
        layers.append(cr.nn.Linear(n_in, n_out, dtype=np.float32))
        if i < len(SIZES) - 2:
            layers.append(cr.nn.ReLU())
    return cr.nn.Sequential(*layers).eval()


def session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cycling(fn, xs):
    state = {"i": 0}

    def step():
        i = state["i"]
        state["i"] = (i + 1) % len(xs)
        return fn(xs[i])
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    s = B.Settings(quick=parser.parse_args().quick)

    cr = B.import_chainrule()
    import onnxruntime as ort

    model = build_model(cr)
    x = cr.placeholder((None, SIZES[0]), dtype=np.float32, name="x")
    compiled = cr.function([x], model(x))

    def eager(xb):
        with cr.no_grad():
            return model(cr.tensor(xb)).numpy()

    path = Path(tempfile.mkdtemp()) / "mlp_large.onnx"
    cr.onnx.export(model, np.zeros((1, SIZES[0]), np.float32), path)
    sess = session(path)

    def onnxruntime(xb):
        return sess.run(None, {"input": xb})[0]

    print(B.environment_header())
    print(f"- onnxruntime {ort.__version__}: intra_op_num_threads=1, inter_op_num_threads=1; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"\n## Inference, MLP {'-'.join(map(str, SIZES))} (ReLU, float32), best of "
          f"{s.repeats} interleaved repeats\n")
    rng = np.random.default_rng(0)
    rows = []
    for batch in BATCHES:
        xs = [rng.standard_normal((batch, SIZES[0]), dtype=np.float32) for _ in range(N_INPUTS)]
        want = compiled(xs[0])
        for name, fn in (("onnxruntime", onnxruntime), ("eager", eager)):
            np.testing.assert_allclose(fn(xs[0]), want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name} disagrees with compiled chainrule")
        columns = [(lambda fn=fn, xs=xs: cycling(fn, xs), None)
                   for fn in (compiled, onnxruntime, eager)]
        (t_cr, _), (t_ort, _), (t_eager, _) = B.measure_interleaved(columns, s)
        rows.append([str(batch), B.cell(t_cr), B.cell(t_ort, t_cr), B.cell(t_eager, t_cr),
                     f"{t_cr / t_ort:.2f}x" if not isinstance(t_ort, B.NA) else "n/a"])
    print(B.table(["batch", "chainrule compiled", "onnxruntime (× compiled)",
                   "chainrule eager no_grad (× compiled)", "onnxruntime speed-up"], rows))


if __name__ == "__main__":
    sys.exit(main())
