"""The training run behind ``chainrule train``: model, loop, checkpoints, resume, artifacts.

A run is fully described by its config (a dict of plain values stored in every checkpoint),
so ``eval`` can rebuild the model and ``--resume`` can continue exactly: the checkpoint holds
the weights, the optimizer buffers, the loader's shuffle state and position, and the default
generator's state, and training from it reaches the same final weights bit for bit.
"""
from __future__ import annotations

import importlib.util
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import chainrule as cr

from .._random import default_generator, manual_seed
from ..data import DataLoader, Dataset, load_dataset
from . import report

__all__ = ["DEFAULT_CONFIG", "build_model", "make_optimizer", "make_loss", "load_run_dataset",
           "Trainer", "CHECKPOINT", "Interrupted"]

CHECKPOINT = "checkpoint.npz"
_FORMAT = "chainrule-train-1"

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "digits", "data_dir": None, "hidden": [128], "activation": "relu",
    "loss": "cross-entropy", "optimizer": "adam", "lr": 1e-3, "momentum": 0.0,
    "epochs": 30, "batch_size": 64, "seed": 0, "compiled": True,
}

_ACTIVATIONS = {"relu": cr.nn.ReLU, "tanh": cr.nn.Tanh, "sigmoid": cr.nn.Sigmoid}


class Interrupted(Exception):
    """Raised inside the loop when Ctrl-C asked to stop; a checkpoint has been written."""


def build_model(in_features: int, hidden: list[int], num_classes: int,
                activation: str) -> cr.nn.Sequential:
    """An MLP: Linear, activation, ..., Linear (logits)."""
    layers: list[cr.nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [cr.nn.Linear(width, size), _ACTIVATIONS[activation]()]
        width = size
    layers.append(cr.nn.Linear(width, num_classes))
    return cr.nn.Sequential(*layers)


def make_optimizer(name: str, params: list[Any], lr: float, momentum: float) -> Any:
    if name == "sgd":
        return cr.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return cr.optim.Adam(params, lr=lr)
    if name == "adamw":
        return cr.optim.AdamW(params, lr=lr)
    raise cr.ChainruleError(f"unknown optimizer {name!r}")


def make_loss(name: str) -> cr.nn.Module:
    if name == "cross-entropy":
        return cr.nn.CrossEntropyLoss()
    if name == "hinge":
        return cr.nn.HingeLoss()
    raise cr.ChainruleError(f"unknown loss {name!r}")


def load_run_dataset(config: dict[str, Any], log: Callable[[str], None]) -> Dataset:
    """The config's dataset; digits falls back to spiral when scikit-learn is missing."""
    if config["dataset"] == "digits" and importlib.util.find_spec("sklearn") is None:
        log("scikit-learn is not installed (pip install scikit-learn); "
            "training on the built-in spiral dataset instead of digits")
        config["dataset"] = "spiral"
    return load_dataset(config["dataset"], seed=int(config["seed"]), data_dir=config["data_dir"])


class _SigintFlag:
    """Turns the first Ctrl-C into a flag checked between steps, so a step is never cut in
    half; a second Ctrl-C raises ``KeyboardInterrupt`` as usual."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None

    def __enter__(self) -> "_SigintFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """One training run writing into ``out_dir``.

    Parameters
    ----------
    config : dict
        Keys of ``DEFAULT_CONFIG``.
    out_dir : Path
        Run directory (created).
    log : callable
        Where messages go (``print`` by default).
    on_step : callable, optional
        Called as ``on_step(epoch, batches_done)`` after every step (tests use it to
        simulate Ctrl-C at a chosen step).
    """

    def __init__(self, config: dict[str, Any], out_dir: Path, *,
                 log: Callable[[str], None] = print, progress: report.Progress | None = None,
                 on_step: Callable[[int, int], None] | None = None) -> None:
        self.config = dict(DEFAULT_CONFIG, **config)
        self.out_dir = Path(out_dir)
        self.log = log
        self.progress = progress if progress is not None else report.Progress()
        self.on_step = on_step
        self.dataset = load_run_dataset(self.config, log)
        seed = int(self.config["seed"])
        manual_seed(seed)
        ds = self.dataset
        self.model = build_model(ds.num_features, list(self.config["hidden"]), ds.num_classes,
                                 self.config["activation"])
        self.loss_fn = make_loss(self.config["loss"])
        self.optimizer = make_optimizer(self.config["optimizer"], self.model.parameters(),
                                        float(self.config["lr"]), float(self.config["momentum"]))
        self.loader = DataLoader(ds.X_train, ds.y_train, int(self.config["batch_size"]),
                                 shuffle=True, seed=seed)
        self.epoch = 0
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.rows: list[dict[str, float]] = []
        self.compiled = bool(self.config["compiled"])
        self._train_step, self._forward = self._build_steps()

    # -- steps ----------------------------------------------------------------------------
    def _build_steps(self) -> tuple[Callable, Callable]:
        if self.compiled:
            try:
                return self._compiled_steps()
            except (AttributeError, TypeError, NotImplementedError, cr.ChainruleError) as exc:
                self.log(f"compiled training is not available ({type(exc).__name__}: {exc}); "
                         "training eagerly instead")
                self.compiled = False
                self.config["compiled"] = False
        return self._eager_step, self._eager_forward

    def _compiled_steps(self) -> tuple[Callable, Callable]:
        X = self.dataset.X_train
        x = cr.placeholder((None, X.shape[1]), dtype=X.dtype, name="x")
        labels = cr.placeholder((None,), dtype=np.int64, name="labels")
        logits = self.model(x)
        loss = self.loss_fn(logits, labels)
        step = self.optimizer.minimize(loss, [x, labels], outputs=[loss, logits])
        forward = cr.function([x], logits)

        def train_step(xb: np.ndarray, yb: np.ndarray) -> tuple[float, np.ndarray]:
            loss_value, logits_value = step(xb, yb)
            return float(loss_value), np.asarray(logits_value)

        return train_step, lambda xb: np.asarray(forward(xb))

    def _eager_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, np.ndarray]:
        self.optimizer.zero_grad()
        logits = self.model(cr.tensor(xb))
        loss = self.loss_fn(logits, yb)
        loss.backward()
        self.optimizer.step()
        return float(loss.item()), logits.numpy()

    def _eager_forward(self, xb: np.ndarray) -> np.ndarray:
        with cr.no_grad():
            return self.model(cr.tensor(xb)).numpy()

    def predict_logits(self, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Logits for ``X`` in chunks (keeps MNIST-sized evaluation memory flat)."""
        return np.concatenate([self._forward(X[i:i + chunk]) for i in range(0, len(X), chunk)])

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy over ``(X, y)``."""
        logits = self.predict_logits(X)
        with cr.no_grad():
            loss = self.loss_fn(cr.tensor(logits), y)
        return float(loss.item()), float(np.mean(logits.argmax(axis=1) == y))

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "config": self.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": default_generator().bit_generator.state,
            "epoch": self.epoch,
            "partial": dict(self.partial),
        }

    def save_checkpoint(self) -> Path:
        path = self.out_dir / CHECKPOINT
        cr.save(self.checkpoint_state(), path)
        return path

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint written by ``save_checkpoint``."""
        state = cr.load(path)
        if state.get("format") != _FORMAT:
            raise cr.ChainruleError(f"{path} is not a chainrule training checkpoint")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.loader.load_state_dict(state["loader"])
        default_generator().bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self.partial = dict(state["partial"])
        self.rows = [r for r in report.read_metrics(self.out_dir / "metrics.csv")
                     if r["epoch"] <= self.epoch]

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> list[dict[str, float]]:
        """Train up to ``config["epochs"]``; raise ``Interrupted`` after saving on Ctrl-C."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        epochs = int(self.config["epochs"])
        ds = self.dataset
        with _SigintFlag() as sigint:
            try:
                while self.epoch < epochs:
                    self._train_epoch(sigint)
                    test_loss, test_acc = self.evaluate(ds.X_test, ds.y_test)
                    p = self.partial
                    row = {"epoch": self.epoch + 1, "train_loss": p["loss_sum"] / p["seen"],
                           "train_acc": p["correct"] / p["seen"], "test_loss": test_loss,
                           "test_acc": test_acc, "seconds": p["seconds"]}
                    self.rows.append(row)
                    self.epoch += 1
                    self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
                    report.write_metrics(self.out_dir / "metrics.csv", self.rows)
                    self.save_checkpoint()
                    self.log(f"epoch {row['epoch']:>3}/{epochs}  "
                             f"train loss {row['train_loss']:.4f} "
                             f"acc {100 * row['train_acc']:.2f}%  "
                             f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  "
                             f"({row['seconds']:.2f} s)")
            except KeyboardInterrupt:
                # A second Ctrl-C (or one outside the main thread): save what we have.
                path = self.save_checkpoint()
                raise Interrupted(f"interrupted; checkpoint saved to {path}") from None
        return self.rows

    def _train_epoch(self, sigint: _SigintFlag) -> None:
        total = len(self.loader)
        start_batch = self.loader.state_dict()["batch"]
        desc = f"epoch {self.epoch + 1}/{int(self.config['epochs'])}"
        batches, set_postfix, close = self.progress.epoch(self.loader, total, start_batch, desc)
        p = self.partial
        try:
            tick = time.perf_counter()
            for xb, yb in batches:
                loss, logits = self._train_step(xb, yb)
                if not math.isfinite(loss):    # no silent NaN: stop before it is saved
                    raise cr.ChainruleError(
                        f"the training loss became {loss} at epoch {self.epoch + 1}, batch "
                        f"{p['seen'] // max(len(yb), 1) + 1}: training diverged (try a lower "
                        f"--lr); the last checkpoint in {self.out_dir} is from before it")
                p["loss_sum"] += loss * len(yb)
                p["correct"] += int(np.sum(logits.argmax(axis=1) == yb))
                p["seen"] += len(yb)
                now = time.perf_counter()
                p["seconds"] += now - tick
                tick = now
                set_postfix(f"loss {p['loss_sum'] / p['seen']:.4f} "
                            f"acc {100 * p['correct'] / p['seen']:.1f}%")
                if self.on_step is not None:
                    self.on_step(self.epoch, self.loader.state_dict()["batch"])
                if sigint.raised:
                    path = self.save_checkpoint()
                    raise Interrupted(f"interrupted at epoch {self.epoch + 1}; checkpoint saved "
                                      f"to {path}; continue with --resume --out {self.out_dir}")
        finally:
            close()

    # -- artifacts ------------------------------------------------------------------------
    def write_artifacts(self) -> None:
        """curves.png, decision_boundary.png (2-D data) and graph.dot/.svg, each optional."""
        out = self.out_dir
        try:
            report.plot_curves(out / "curves.png", self.rows)
        except ImportError:
            self.log("matplotlib is not installed (pip install matplotlib): skipping plots")
            return
        ds = self.dataset
        if ds.num_features == 2:
            X = np.concatenate([ds.X_train, ds.X_test])
            y = np.concatenate([ds.y_train, ds.y_test])
            report.plot_decision_boundary(out / "decision_boundary.png",
                                          lambda grid: self.predict_logits(grid).argmax(axis=1),
                                          X, y)
        self.draw_graph(out)

    def draw_graph(self, out: Path, batch: int = 4) -> list[Path]:
        """Draw the loss graph of a few training samples as graph.dot and graph.svg."""
        ds = self.dataset
        written = []
        try:
            logits = self.model(cr.tensor(ds.X_train[:batch]))
            loss = self.loss_fn(logits, ds.y_train[:batch])
            loss.backward()
            for name in ("graph.dot", "graph.svg"):
                try:
                    cr.draw(loss, str(out / name))
                    written.append(out / name)
                except (cr.ChainruleError, ImportError, OSError, RuntimeError) as exc:
                    self.log(f"could not draw {name} ({type(exc).__name__}: {exc}); skipping")
        except (AttributeError, cr.ChainruleError, ImportError) as exc:
            self.log(f"graph drawing is not available ({type(exc).__name__}: {exc}); skipping")
        finally:
            self.optimizer.zero_grad()
        return written
