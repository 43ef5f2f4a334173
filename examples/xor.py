"""XOR with a 2-layer MLP: the classic problem a linear model cannot solve.

Run: python examples/xor.py
"""
import numpy as np

import chainrule as cr


def main(seed: int = 0, steps: int = 300) -> float:
    cr.manual_seed(seed)
    X, y = cr.data.xor(n=64, noise=0.1, seed=seed)
    model = cr.nn.Sequential(cr.nn.Linear(2, 8), cr.nn.Tanh(), cr.nn.Linear(8, 2))
    optimizer = cr.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = cr.nn.CrossEntropyLoss()
    for step in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(cr.tensor(X)), y)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    with cr.no_grad():
        accuracy = float(np.mean(model(cr.tensor(X)).numpy().argmax(axis=1) == y))
    print(f"accuracy {100 * accuracy:.1f}%")
    return accuracy


if __name__ == "__main__":
    main()
