"""The hand-written NumPy floor that every benchmark column is measured against.

An MLP (affine -> ReLU -> ... -> affine -> softmax cross-entropy on integer labels) with its
backward pass written out by hand, the way an expert would write it for speed:

* ``x @ W + b`` with ``W`` stored ``(in, out)``, so neither pass needs a transpose copy;
* the loss is a fused, numerically stable log-softmax cross-entropy whose gradient with
  respect to the logits is ``(softmax - onehot) / N``, formed in place in the ``exp`` buffer;
* ReLU backward multiplies by the boolean mask ``h > 0`` in place (the mask is taken on the
  post-ReLU activation, which is positive exactly where the pre-activation was);
* SGD updates are in place, ``W -= lr * dW``; everything stays in the parameters' dtype
  (float32 in the benchmarks).

Run ``python benchmarks/handwritten.py`` to check the gradients against central finite
differences (float64) and, when PyTorch is installed, against ``torch.autograd`` on the
benchmark sizes (float32).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> params = init_params([4, 8, 3], rng)
>>> x = rng.standard_normal((5, 4), dtype=np.float32)
>>> y = rng.integers(0, 3, size=5)
>>> loss = train_step(params, x, y, lr=0.1)
>>> bool(np.isfinite(loss))
True
"""
from __future__ import annotations

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]


def init_params(sizes: list[int], rng: np.random.Generator, dtype=np.float32) -> Params:
    """He-initialised ``(W, b)`` pairs, ``W`` of shape ``(in, out)``, ``b`` zeros."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
        b = np.zeros(n_out, dtype=dtype)
        params.append((W, b))
    return params


def copy_params(params: Params) -> Params:
    """An independent copy, so that every benchmark column starts from the same weights."""
    return [(W.copy(), b.copy()) for W, b in params]


def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean softmax cross-entropy of the MLP on ``(x, y)`` and its gradients ``[(dW, db), ...]``.

    Hidden layers use ReLU; the last layer gives the logits.
    """
    n = x.shape[0]
    rows = np.arange(n)
    # Forward: keep each layer's input (post-ReLU activation) for the backward pass.
    inputs = []
    h = x
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        inputs.append(h)
        z = h @ W
        z += b
        if i < last:
            np.maximum(z, 0, out=z)  # ReLU in place: z is a fresh buffer we own
        h = z
    logits = h

    # Fused stable log-softmax cross-entropy: loss = logsumexp(z) - z[y].
    logits -= logits.max(axis=1, keepdims=True)  # logits is our own buffer; shift in place
    e = np.exp(logits)
    sum_e = e.sum(axis=1, keepdims=True)
    loss = float(np.log(sum_e).sum() - logits[rows, y].sum()) / n

    # d loss / d logits = (softmax - onehot) / N, built in the exp buffer.
    e /= sum_e
    e[rows, y] -= 1
    e /= n
    g = e

    grads: Params = [None] * len(params)  # type: ignore[list-item]
    for i in range(last, -1, -1):
        W, _ = params[i]
        h_in = inputs[i]
        dW = h_in.T @ g
        db = g.sum(axis=0)
        grads[i] = (dW, db)
        if i > 0:
            g = g @ W.T
            g *= h_in > 0  # ReLU backward: boolean mask multiply, in place
    return loss, grads


def sgd_update(params: Params, grads: Params, lr: float) -> None:
    """In-place SGD: ``W -= lr * dW`` for every parameter."""
    for (W, b), (dW, db) in zip(params, grads):
        dW *= lr  # the gradient buffers are ours: scale in place instead of allocating lr * dW
        db *= lr
        W -= dW
        b -= db


def train_step(params: Params, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    """One SGD step (forward + backward + update) in place; returns the loss before the step."""
    loss, grads = loss_and_grads(params, x, y)
    sgd_update(params, grads, lr)
    return loss


# ------------------------------------------------------------------------------------------
# Self-test
# ------------------------------------------------------------------------------------------

def _loss_only(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    """The loss, written the plain way (no in-place tricks), for finite differences."""
    h = x
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < len(params) - 1:
            h = np.maximum(h, 0)
    m = h.max(axis=1, keepdims=True)
    logp = h - m - np.log(np.exp(h - m).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def check_finite_differences(eps: float = 1e-6) -> float:
    """Largest relative error of the analytic gradients against central differences (float64)."""
    rng = np.random.default_rng(1)
    params = init_params([5, 7, 6, 4], rng, dtype=np.float64)
    for _, b in params:
        b += rng.standard_normal(b.shape) * 0.1  # non-zero biases exercise db properly
    x = rng.standard_normal((9, 5))
    y = rng.integers(0, 4, size=9)
    loss, grads = loss_and_grads(params, x, y)
    assert abs(loss - _loss_only(params, x, y)) < 1e-12, "fused loss disagrees with plain loss"
    worst = 0.0
    for (W, b), (dW, db) in zip(params, grads):
        for p, dp in ((W, dW), (b, db)):
            num = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                up = _loss_only(params, x, y)
                p[idx] = old - eps
                down = _loss_only(params, x, y)
                p[idx] = old
                num[idx] = (up - down) / (2 * eps)
            err = np.abs(num - dp).max() / max(1e-8, np.abs(num).max())
            worst = max(worst, float(err))
    return worst


def check_against_torch(sizes: list[int], batch: int, lr: float = 0.05) -> float:
    """Largest relative difference from torch (float32) of the gradients and of the updated
    weights after one ``train_step``; raises ImportError without torch."""
    import torch

    rng = np.random.default_rng(2)
    params = init_params(sizes, rng)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], size=batch)

    tparams = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
               for W, b in params]
    h = torch.from_numpy(x)
    for i, (W, b) in enumerate(tparams):
        h = h @ W + b
        if i < len(tparams) - 1:
            h = torch.relu(h)
    tloss = torch.nn.functional.cross_entropy(h, torch.from_numpy(y))
    tloss.backward()

    loss, grads = loss_and_grads(copy_params(params), x, y)
    worst = abs(loss - tloss.item()) / abs(tloss.item())
    for (dW, db), (W, b) in zip(grads, tparams):
        for mine, ref in ((dW, W.grad.numpy()), (db, b.grad.numpy())):
            assert mine.dtype == np.float32, f"gradient dtype drifted to {mine.dtype}"
            worst = max(worst, float(np.abs(mine - ref).max() / np.abs(ref).max()))

    stepped = copy_params(params)
    train_step(stepped, x, y, lr)
    with torch.no_grad():
        for (W, b), (tW, tb) in zip(stepped, tparams):
            for mine, ref in ((W, tW - lr * tW.grad), (b, tb - lr * tb.grad)):
                assert mine.dtype == np.float32
                ref = ref.numpy()
                worst = max(worst, float(np.abs(mine - ref).max() / np.abs(ref).max()))
    return worst


def main() -> int:
    import doctest

    failures, _ = doctest.testmod()
    fd = check_finite_differences()
    print(f"finite differences (float64, 5-7-6-4): max rel error {fd:.2e}")
    ok = failures == 0 and fd < 1e-6
    try:
        for sizes, batch in (([64, 128, 10], 64), ([784, 512, 256, 10], 256)):
            err = check_against_torch(sizes, batch)
            print(f"torch float32 {'-'.join(map(str, sizes))} batch {batch}: "
                  f"max rel difference {err:.2e}")
            ok = ok and err < 1e-4
    except ImportError:
        print("torch not installed: torch comparison skipped")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
