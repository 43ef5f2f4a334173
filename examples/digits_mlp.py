"""An MLP (64-128-10) on scikit-learn's 8x8 digits, trained with a compiled Adam step.

Run: python examples/digits_mlp.py   (needs scikit-learn)
"""
import numpy as np

import chainrule as cr


def main(epochs: int = 30, seed: int = 0) -> float:
    cr.manual_seed(seed)
    X_train, y_train, X_test, y_test = cr.data.digits(seed=seed)
    model = cr.nn.Sequential(cr.nn.Linear(64, 128), cr.nn.ReLU(), cr.nn.Linear(128, 10))
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)

    x = cr.placeholder((None, 64), dtype=X_train.dtype, name="x")
    labels = cr.placeholder((None,), dtype=np.int64, name="labels")
    logits = model(x)
    step = optimizer.minimize(cr.cross_entropy(logits, labels), [x, labels])
    predict = cr.function([x], logits)

    loader = cr.data.DataLoader(X_train, y_train, batch_size=64, seed=seed)
    for epoch in range(epochs):
        losses = [float(step(xb, yb)) for xb, yb in loader]
        if epoch % 5 == 4:
            accuracy = float(np.mean(predict(X_test).argmax(axis=1) == y_test))
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}  "
                  f"test accuracy {100 * accuracy:.2f}%")
    accuracy = float(np.mean(predict(X_test).argmax(axis=1) == y_test))
    print(f"final test accuracy {100 * accuracy:.2f}%")
    return accuracy


if __name__ == "__main__":
    main()
