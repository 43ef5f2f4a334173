"""What a training run shows and writes besides checkpoints: progress, tables, plots, CSV."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

__all__ = ["Progress", "write_metrics", "read_metrics", "summary_table", "confusion_table",
           "plot_curves", "plot_decision_boundary", "METRIC_FIELDS"]

METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")


class Progress:
    """A tqdm bar per epoch on a terminal; otherwise one plain line per epoch.

    tqdm is imported lazily and optional: ``import chainrule`` must not need it.
    """

    def __init__(self, enabled: bool | None = None, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._tqdm = None
        if enabled:
            try:
                from tqdm import tqdm
                self._tqdm = tqdm
            except ImportError:
                pass

    def epoch(self, batches: Iterable[Any], total: int, initial: int,
              desc: str) -> tuple[Iterator[Any], Callable[[str], None], Callable[[], None]]:
        """Wrap an epoch's batches; return (iterator, set_postfix, close)."""
        if self._tqdm is None:
            return iter(batches), lambda text: None, lambda: None
        bar = self._tqdm(batches, total=total, initial=initial, desc=desc, leave=True,
                         file=self.stream, dynamic_ncols=True)
        return iter(bar), lambda text: bar.set_postfix_str(text, refresh=False), bar.close


def write_metrics(path: Path, rows: Sequence[dict[str, float]]) -> None:
    """Rewrite ``metrics.csv`` with one row per finished epoch."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fileobj:
        writer = csv.DictWriter(fileobj, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in METRIC_FIELDS})
    tmp.replace(path)


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Read ``metrics.csv`` back (epoch as int, the rest as float); [] if absent."""
    if not path.is_file():
        return []
    with open(path, newline="") as fileobj:
        return [
            {key: (int(row[key]) if key == "epoch" else float(row[key])) for key in METRIC_FIELDS}
            for row in csv.DictReader(fileobj)
        ]


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = "+".join("-" * (w + 2) for w in widths)
    def fmt(cells: Sequence[str]) -> str:
        return "|".join(f" {str(c):>{w}} " for c, w in zip(cells, widths))
    return "\n".join([fmt(header), line, *(fmt(r) for r in rows)])


def summary_table(rows: Sequence[dict[str, float]], last: int = 10) -> str:
    """The last ``last`` epochs as an aligned text table, plus the best test accuracy."""
    header = ("epoch", "train loss", "train acc", "test loss", "test acc", "seconds")
    shown = rows[-last:]
    body = [(str(r["epoch"]), f"{r['train_loss']:.4f}", f"{100 * r['train_acc']:.2f}%",
             f"{r['test_loss']:.4f}", f"{100 * r['test_acc']:.2f}%", f"{r['seconds']:.2f}")
            for r in shown]
    text = _format_table(header, body)
    if rows:
        best = max(rows, key=lambda r: r["test_acc"])
        total = sum(r["seconds"] for r in rows)
        text += (f"\nbest test accuracy {100 * best['test_acc']:.2f}% at epoch {best['epoch']}; "
                 f"{len(rows)} epochs in {total:.1f} s")
    return text


def confusion_table(matrix: np.ndarray) -> str:
    """A confusion matrix (rows: true class, columns: predicted) as a text table."""
    k = matrix.shape[0]
    header = ["true\\pred", *(str(j) for j in range(k))]
    body = [[str(i), *(str(int(v)) for v in matrix[i])] for i in range(k)]
    return _format_table(header, body)


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    return plt


def plot_curves(path: Path, rows: Sequence[dict[str, float]]) -> None:
    """Train/test loss and accuracy per epoch, side by side."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "test"):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in rows], marker=".", label=split)
        ax_acc.plot(epochs, [100 * r[f"{split}_acc"] for r in rows], marker=".", label=split)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_decision_boundary(path: Path, predict: Callable[[np.ndarray], np.ndarray],
                           X: np.ndarray, y: np.ndarray, resolution: int = 200) -> None:
    """Colour the plane by the predicted class and scatter the points on top."""
    plt = _pyplot()
    pad = 0.5
    (x0, y0), (x1, y1) = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(X.dtype)
    classes = predict(grid).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.contourf(gx, gy, classes, alpha=0.3, cmap="viridis",
                levels=np.arange(int(max(classes.max(), y.max())) + 2) - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="viridis", edgecolors="k", linewidths=0.3)
    ax.set(title="decision boundary", xlim=(x0, x1), ylim=(y0, y1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
