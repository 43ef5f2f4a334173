"""Softmax (cross-entropy) versus multiclass SVM (hinge) loss on the spiral dataset, with the
same MLP, optimizer and seed: both fit; the printout compares their accuracy and loss.

Run: python examples/softmax_vs_svm.py
"""
import numpy as np

import chainrule as cr


def train(loss_fn: cr.nn.Module, epochs: int = 60, seed: int = 0) -> float:
    cr.manual_seed(seed)
    X, y = cr.data.spiral(n=300, classes=3, seed=seed)
    model = cr.nn.Sequential(cr.nn.Linear(2, 64), cr.nn.ReLU(), cr.nn.Linear(64, 3))
    optimizer = cr.optim.Adam(model.parameters(), lr=0.02)
    loader = cr.data.DataLoader(X, y, batch_size=64, seed=seed)
    for epoch in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(cr.tensor(xb)), yb)
            loss.backward()
            optimizer.step()
    with cr.no_grad():
        scores = model(cr.tensor(X))
        final = float(loss_fn(scores, y).item())
    accuracy = float(np.mean(scores.numpy().argmax(axis=1) == y))
    print(f"{type(loss_fn).__name__:>16}: final loss {final:.4f}, accuracy {100 * accuracy:.1f}%")
    return accuracy


def main() -> tuple[float, float]:
    return train(cr.nn.CrossEntropyLoss()), train(cr.nn.HingeLoss())


if __name__ == "__main__":
    main()
