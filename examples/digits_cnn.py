"""A small CNN with batch norm and dropout on scikit-learn's 8x8 digits, eager or compiled.

Two conv3x3 blocks (batch norm, ReLU, 2x2 max pooling) take the (N, 1, 8, 8) images to 32
maps of 2x2; dropout and one linear layer give the 10 logits. ``model.train()`` and
``model.eval()`` switch batch norm (batch or running statistics) and dropout (on or off) in
both modes: the compiled step is built in training mode, so its batch-norm running
statistics are updates of the step and its dropout masks are drawn inside it from the seeded
generator; the compiled prediction is built in evaluation mode.

With batch norm the net trains in half the epochs of the plain recipe (`chainrule train
--model cnn`, 30 epochs, 98.05%): 15 epochs reach 99.16% compiled and 98.89% eager here.

Run: python examples/digits_cnn.py [--eager]   (needs scikit-learn)
"""
import sys

import numpy as np

import chainrule as cr
from chainrule import nn


def build_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(32 * 2 * 2, 10),
    )


def main(epochs: int = 15, seed: int = 0, compiled: bool = True) -> float:
    cr.manual_seed(seed)
    X_train, y_train, X_test, y_test = cr.data.digits(seed=seed, dtype=np.float32, images=True)
    model = build_model()
    optimizer = cr.optim.Adam(model.parameters(), lr=3e-3)
    loader = cr.data.DataLoader(X_train, y_train, batch_size=64, seed=seed)

    if compiled:
        x = cr.placeholder((None, 1, 8, 8), dtype=np.float32, name="x")
        labels = cr.placeholder((None,), dtype=np.int64, name="labels")
        model.train()
        train_step = optimizer.minimize(cr.cross_entropy(model(x), labels), [x, labels])
        model.eval()
        predict = cr.function([x], model(x))
        model.train()
    else:
        def train_step(xb: np.ndarray, yb: np.ndarray) -> float:
            optimizer.zero_grad()
            loss = cr.cross_entropy(model(cr.tensor(xb)), yb)
            loss.backward()
            optimizer.step()
            return loss.item()

        def predict(xb: np.ndarray) -> np.ndarray:
            model.eval()
            with cr.no_grad():
                logits = model(cr.tensor(xb)).numpy()
            model.train()
            return logits

    def accuracy() -> float:
        return float(np.mean(np.asarray(predict(X_test)).argmax(axis=1) == y_test))

    for epoch in range(epochs):
        losses = [float(train_step(xb, yb)) for xb, yb in loader]
        if epoch % 5 == 4:
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}  "
                  f"test accuracy {100 * accuracy():.2f}%")
    final = accuracy()
    print(f"final test accuracy {100 * final:.2f}% ({'compiled' if compiled else 'eager'})")
    return final


if __name__ == "__main__":
    main(compiled="--eager" not in sys.argv[1:])
