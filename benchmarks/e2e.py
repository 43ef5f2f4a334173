"""End to end: the digits MLP (64-128-10, ReLU, Adam lr 1e-3, batch 64, 30 epochs).

chainrule eager, chainrule compiled and PyTorch CPU train the same model from the same initial
weights on the same batches in the same order; each reports its wall time for the 30 epochs
and its final test accuracy. Run alone: ``python benchmarks/e2e.py``.
"""
from __future__ import annotations

import time

import numpy as np

EPOCHS, BATCH, HIDDEN, LR = 30, 64, 128, 1e-3


def data(seed: int = 0):
    import chainrule as cr

    X_train, y_train, X_test, y_test = cr.data.digits(seed=seed, dtype=np.float32)
    rng = np.random.default_rng(seed)
    bound1, bound2 = 1 / np.sqrt(64), 1 / np.sqrt(HIDDEN)
    init = [rng.uniform(-bound1, bound1, (64, HIDDEN)).astype(np.float32),
            rng.uniform(-bound1, bound1, HIDDEN).astype(np.float32),
            rng.uniform(-bound2, bound2, (HIDDEN, 10)).astype(np.float32),
            rng.uniform(-bound2, bound2, 10).astype(np.float32)]
    order = [rng.permutation(len(X_train)) for _ in range(EPOCHS)]
    batches = [[idx[i:i + BATCH] for i in range(0, len(idx), BATCH)] for idx in order]
    return X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64), init, batches


def chainrule_eager(X, y, Xt, yt, init, batches) -> float:
    import chainrule as cr

    W1, b1, W2, b2 = params = [cr.Variable(a.copy()) for a in init]
    opt = cr.optim.Adam(params, lr=LR)
    for epoch in batches:
        for idx in epoch:
            loss = cr.cross_entropy(cr.relu(cr.tensor(X[idx]) @ W1 + b1) @ W2 + b2, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with cr.no_grad():
        scores = (cr.relu(cr.tensor(Xt) @ W1 + b1) @ W2 + b2).numpy()
    return float(np.mean(scores.argmax(1) == yt))


def chainrule_compiled(X, y, Xt, yt, init, batches) -> float:
    import chainrule as cr

    W1, b1, W2, b2 = params = [cr.Variable(a.copy(), name=n)
                               for a, n in zip(init, ("W1", "b1", "W2", "b2"))]
    x = cr.placeholder((None, 64), dtype=np.float32, name="x")
    labels = cr.placeholder((None,), dtype=np.int64, name="y")
    scores = cr.relu(x @ W1 + b1) @ W2 + b2
    step = cr.optim.Adam(params, lr=LR).minimize(cr.cross_entropy(scores, labels), [x, labels])
    for epoch in batches:
        for idx in epoch:
            step(X[idx], y[idx])
    predict = cr.function([x], scores)
    return float(np.mean(predict(Xt).argmax(1) == yt))


def torch_eager(X, y, Xt, yt, init, batches) -> float:
    import torch

    W1, b1, W2, b2 = params = [torch.tensor(a, requires_grad=True) for a in init]
    opt = torch.optim.Adam(params, lr=LR)
    Xg, yg = torch.from_numpy(X), torch.from_numpy(y)
    for epoch in batches:
        for idx in epoch:
            i = torch.from_numpy(idx)
            loss = torch.nn.functional.cross_entropy(
                torch.relu(Xg[i] @ W1 + b1) @ W2 + b2, yg[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        scores = torch.relu(torch.from_numpy(Xt) @ W1 + b1) @ W2 + b2
    return float((scores.argmax(1).numpy() == yt).mean())


RUNNERS = {"chainrule eager": chainrule_eager, "chainrule compiled": chainrule_compiled,
           "PyTorch eager": torch_eager}


def run(repeats: int = 3) -> dict:
    """name -> (best seconds, accuracy) or the error's first line; runs interleaved,
    after one untimed warm-up round."""
    args = data()
    times: dict = {n: [] for n in RUNNERS}
    acc: dict = {}
    for r in range(repeats + 1):        # the first round warms up (imports, caches) untimed
        for name, fn in RUNNERS.items():
            if isinstance(acc.get(name), str):
                continue
            try:
                t0 = time.perf_counter()
                acc[name] = fn(*args)
                if r:
                    times[name].append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001  (torch absent, ...)
                acc[name] = f"n/a ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return {n: acc[n] if isinstance(acc[n], str) else (min(times[n]), acc[n])
            for n in RUNNERS}


def table(results: dict) -> str:
    ref = results.get("PyTorch eager")
    head = "| digits MLP 64-128-10, Adam, batch 64, 30 epochs | " + " | ".join(results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    row = ["wall time (test accuracy)"]
    for name, r in results.items():
        if isinstance(r, str):
            row.append(r)
            continue
        text = f"{r[0]:.2f} s ({100 * r[1]:.1f}%)"
        if not isinstance(ref, str) and name != "PyTorch eager":
            text += f", {ref[0] / r[0]:.1f}× faster than PyTorch"
        row.append(text)
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
