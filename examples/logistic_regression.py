"""Logistic regression in the static style: placeholders for data, Variables for weights,
one compiled NumPy function per training step (forward, backward and SGD update).

Run: python examples/logistic_regression.py
"""
import numpy as np

import chainrule as cr


def main(steps: int = 200) -> float:
    X, y = cr.data.moons(n=200, noise=0.1, seed=0)
    X = X.astype(np.float64)
    target = y.astype(np.float64)

    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    t = cr.placeholder((None,), dtype=np.float64, name="t")
    w = cr.Variable(np.zeros(2), name="w")
    b = cr.Variable(np.zeros(()), name="b")

    prob = cr.sigmoid(x @ w + b)
    loss = cr.binary_cross_entropy(prob, t)
    gw, gb = cr.grad(loss, [w, b])
    lr = 0.5
    step = cr.function([x, t], loss, updates=[(w, w - lr * gw), (b, b - lr * gb)])
    print(step.source)

    for i in range(steps):
        value = step(X, target)
        if i % 50 == 0:
            print(f"step {i:4d}  loss {float(value):.4f}")
    predict = cr.function([x], prob)
    accuracy = float(np.mean((predict(X) > 0.5) == y))
    print(f"w = {w.data}, b = {float(b.data):.3f}, accuracy {100 * accuracy:.1f}%")
    return accuracy


if __name__ == "__main__":
    main()
