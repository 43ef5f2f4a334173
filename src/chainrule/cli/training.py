"""The training run behind ``chainrule train``: model, loop, checkpoints, resume, artifacts.

A run is fully described by its config (a dict of plain values stored in every checkpoint),
so ``eval`` can rebuild the model and ``--resume`` can continue exactly: the checkpoint holds
the weights, the optimizer buffers, the loader's shuffle state and position, and the default
generator's state, and training from it reaches the same final weights bit for bit.
"""
from __future__ import annotations

import linecache
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import chainrule as cr

from .._random import default_generator, manual_seed
from ..data import DataLoader, Dataset, load_dataset
from . import report

__all__ = [
    "CHECKPOINT",
    "DEFAULT_CONFIG",
    "DEFAULT_LR",
    "MODELS",
    "MODEL_FILE",
    "Interrupted",
    "Trainer",
    "build_model",
    "default_lr",
    "load_run_dataset",
    "make_loss",
    "make_optimizer",
    "model_source",
    "read_checkpoint",
    "run_model_source",
]

CHECKPOINT = "checkpoint.npz"
MODEL_FILE = "model.py"
_FORMAT = "chainrule-train-1"

MODELS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("cross-entropy", "hinge")

# A learning rate that trains the built-in datasets with each optimizer. SGD's was measured
# on the README's spiral run (64-64 tanh, hinge, momentum 0.9, 30 epochs): final test accuracy
# 95.8-100% on seeds 0-7 at 0.07, where 0.05 and 0.1 each dip to 90.8% on a seed and 1e-3 left
# it at 50%; plain SGD at 0.07 takes the digits MLP to 96.4%. The CNN recipe uses Adam at 3e-3.
DEFAULT_LR = {"sgd": 0.07, "adam": 1e-3, "adamw": 1e-3}
_DEFAULT_LR_CNN = {"adam": 3e-3, "adamw": 3e-3}

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "digits", "data_dir": None, "model": "mlp", "hidden": [128], "channels": [16, 32],
    "activation": "relu", "loss": "cross-entropy", "optimizer": "adam", "lr": None,
    "momentum": 0.0, "epochs": 30, "batch_size": 64, "seed": 0, "compiled": True,
}

_ACTIVATION_CLASS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}
_LOSS_CLASS = {"cross-entropy": "CrossEntropyLoss", "hinge": "HingeLoss"}


class Interrupted(Exception):
    """Raised inside the loop when a signal asked to stop; a checkpoint has been written.

    ``signum`` is the signal (``SIGINT`` for Ctrl-C, ``SIGTERM`` from ``kill``), so the
    command can exit with the conventional ``128 + signum``.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)


def default_lr(optimizer: str, model: str = "mlp") -> float:
    """The learning rate ``chainrule train`` uses when ``--lr`` is not given."""
    if model == "cnn" and optimizer in _DEFAULT_LR_CNN:
        return _DEFAULT_LR_CNN[optimizer]
    return DEFAULT_LR[optimizer]


def model_source(config: dict[str, Any], sample_shape: tuple[int, ...],
                 num_classes: int) -> str:
    """The run's model as the Python a user would write for it.

    ``chainrule train`` builds its model by running this text (and saves it as ``model.py``
    in the run directory), so every node of a drawing or an error names a line of the
    model, ``nn.Linear(64, 128),``, rather than the console script that started Python.
    """
    act = f"nn.{_ACTIVATION_CLASS[config['activation']]}()"
    layers: list[str] = []
    if config.get("model", "mlp") == "cnn":
        if len(sample_shape) != 3:
            raise cr.ChainruleError(
                f"--model cnn needs images (N, channels, height, width); this dataset's "
                f"samples have shape {sample_shape}: use --dataset digits, mnist or "
                f"fashion-mnist")
        channels, height, width = sample_shape
        for size in config["channels"]:
            layers += [f"nn.Conv2d({channels}, {size}, 3, padding=1)", act, "nn.MaxPool2d(2)"]
            channels, height, width = size, height // 2, width // 2
            if height == 0 or width == 0:
                raise cr.ChainruleError(
                    f"--channels {' '.join(map(str, config['channels']))}: "
                    f"{len(config['channels'])} conv blocks, each halving the image, do not "
                    f"fit {sample_shape[1]}x{sample_shape[2]} images")
        layers.append("nn.Flatten()")
        width = channels * height * width
    else:
        width = int(np.prod(sample_shape, dtype=np.int64))
    for size in config["hidden"]:
        layers += [f"nn.Linear({width}, {size})", act]
        width = size
    layers.append(f"nn.Linear({width}, {num_classes})")
    body = "".join(f"    {layer},\n" for layer in layers)
    return (f'"""The model of a chainrule train run, as code (written by chainrule '
            f'{cr.__version__})."""\n'
            f"from chainrule import nn\n\n"
            f"model = nn.Sequential(\n{body})\n"
            f"loss_fn = nn.{_LOSS_CLASS[config['loss']]}()\n\n\n"
            f"def loss_of(x, labels):\n"
            f"    return loss_fn(model(x), labels)\n")


def run_model_source(source: str, filename: str) -> dict[str, Any]:
    # Registered with linecache (mtime None: never evicted) so sites read their line even
    # before, or without, model.py being written to disk.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "chainrule_model"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 (our own generated text)
    return namespace


def build_model(in_features: int, hidden: list[int], num_classes: int,
                activation: str) -> cr.nn.Sequential:
    """An MLP: Linear, activation, ..., Linear (logits)."""
    config = {"model": "mlp", "hidden": list(hidden), "activation": activation,
              "loss": "cross-entropy"}
    return run_model_source(model_source(config, (in_features,), num_classes), MODEL_FILE)["model"]


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


def load_run_dataset(config: dict[str, Any], log: Callable[[str], None] = print) -> Dataset:
    """The config's dataset, as images for a CNN; never silently another one."""
    return load_dataset(config["dataset"], seed=int(config["seed"]), data_dir=config["data_dir"],
                        images=config.get("model", "mlp") == "cnn")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint's state, or ``cr.ChainruleError`` saying what ``path`` is not."""
    path = Path(path)
    if not path.exists():
        raise cr.ChainruleError(f"{path}: no such file")
    if path.is_dir():
        hint = " (did you mean its checkpoint.npz?)" if (path / CHECKPOINT).is_file() else ""
        raise cr.ChainruleError(f"{path} is a folder, not a checkpoint{hint}")
    try:
        state = cr.load(path)
    except OSError as exc:
        raise cr.ChainruleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT or "config" not in state:
        raise cr.ChainruleError(f"{path} is not a checkpoint of chainrule train")
    return state


class _StopSignals:
    """Turns the first SIGINT (Ctrl-C), SIGTERM (``kill``, a job scheduler) or SIGHUP (the
    terminal closed) into a flag checked between steps, so a step is never cut in half and
    the run is saved; a second one raises ``KeyboardInterrupt``, which saves too."""

    # SIGUSR1: how `chainrule train --workers N` asks its MPI ranks to stop (mpiexec
    # forwards it to every rank)
    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP",
                                                       "SIGUSR1") if hasattr(signal, name))

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def raised(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


class Trainer:
    """One training run writing into ``out_dir``.

    Parameters
    ----------
    config : dict
        Keys of ``DEFAULT_CONFIG`` (missing ones take its values; ``lr=None`` takes the
        optimizer's ``default_lr``).
    out_dir : Path
        Run directory (created when training starts).
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
        if self.config["lr"] is None:
            self.config["lr"] = default_lr(self.config["optimizer"], self.config["model"])
        self.out_dir = Path(out_dir)
        self.log = log
        self.progress = progress if progress is not None else report.Progress()
        self.on_step = on_step
        self.dataset = load_run_dataset(self.config, log)
        seed = int(self.config["seed"])
        manual_seed(seed)
        ds = self.dataset
        self.model_source = model_source(self.config, ds.sample_shape, ds.num_classes)
        code = run_model_source(self.model_source, str(self.out_dir / MODEL_FILE))
        self.model, self.loss_fn, self._loss_of = code["model"], code["loss_fn"], code["loss_of"]
        self.optimizer = make_optimizer(self.config["optimizer"], self.model.parameters(),
                                        float(self.config["lr"]), float(self.config["momentum"]))
        # data parallel (chainrule train --workers N): every rank draws the same shuffle and
        # takes its shard of each global batch; rank 0 alone writes files
        self.rank, self.world = cr.distributed.rank(), cr.distributed.world_size()
        self.loader = DataLoader(ds.X_train, ds.y_train, int(self.config["batch_size"]),
                                 shuffle=True, seed=seed, rank=self.rank,
                                 world_size=self.world)
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

    def _set_training(self, mode: bool) -> None:
        # Batch norm and dropout behave differently in training and evaluation.
        self.model.train(mode)

    def _compiled_steps(self) -> tuple[Callable, Callable]:
        X = self.dataset.X_train
        x = cr.placeholder((None, *X.shape[1:]), dtype=X.dtype, name="x")
        labels = cr.placeholder((None,), dtype=np.int64, name="labels")
        self._set_training(True)
        logits = self.model(x)
        loss = self.loss_fn(logits, labels)
        if self.world > 1:
            # this rank's share of the global batch's mean loss: its gradients are summed
            weight = cr.placeholder((), dtype=X.dtype, name="share")
            ranks_step = cr.distributed.compiled_step(self.optimizer, loss, [x, labels],
                                                      outputs=[loss, logits], weight=weight)

            def step(xb: np.ndarray, yb: np.ndarray) -> Any:
                return ranks_step(xb, yb, np.asarray(self._share(yb), X.dtype))
        else:
            step = self.optimizer.minimize(loss, [x, labels], outputs=[loss, logits])
        self._set_training(False)
        try:
            forward = cr.function([x], self.model(x))
        finally:
            self._set_training(True)

        def train_step(xb: np.ndarray, yb: np.ndarray) -> tuple[float, np.ndarray]:
            loss_value, logits_value = step(xb, yb)
            return float(loss_value), np.asarray(logits_value)

        return train_step, lambda xb: np.asarray(forward(xb))

    def _eager_step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, np.ndarray]:
        self.optimizer.zero_grad()
        logits = self.model(cr.tensor(xb))
        loss = self.loss_fn(logits, yb)
        loss.backward()
        if self.world > 1:
            cr.distributed.allreduce_gradients(self.model.parameters(),
                                               weight=self._share(yb))
        self.optimizer.step()
        return float(loss.item()), logits.numpy()

    def _share(self, yb: np.ndarray) -> float:
        """This rank's share of the global batch (shards differ by at most one sample)."""
        return len(yb) / self.loader.global_batch

    def _eager_forward(self, xb: np.ndarray) -> np.ndarray:
        self._set_training(False)
        try:
            with cr.no_grad():
                return self.model(cr.tensor(xb)).numpy()
        finally:
            self._set_training(True)

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
            "partial": self._global_partial(),
            "world_size": self.world,
        }

    def _global_partial(self) -> dict[str, float]:
        """The epoch's running totals over every rank's shard (collective with N ranks)."""
        if self.world == 1:
            return dict(self.partial)
        keys = ("loss_sum", "correct", "seen")
        sums = np.array([float(self.partial[k]) for k in keys])
        cr.distributed.allreduce_(sums, average=False)
        total = dict(zip(keys, sums.tolist()))
        total["correct"], total["seen"] = int(total["correct"]), int(total["seen"])
        total["seconds"] = self.partial["seconds"]
        return total

    def save_checkpoint(self) -> Path:
        path = self.out_dir / CHECKPOINT
        state = self.checkpoint_state()       # every rank: its totals are a collective
        if self.rank == 0:
            cr.save(state, path)
        cr.distributed.barrier()   # no rank exits (ending the job) before the file is whole
        return path

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint written by ``save_checkpoint``."""
        state = read_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.loader.load_state_dict(state["loader"])
        default_generator().bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self.partial = dict(state["partial"])
        if self.rank != 0:     # the saved totals are the whole job's: rank 0 carries them
            self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0,
                            "seconds": self.partial.get("seconds", 0.0)}
        self.rows = [r for r in report.read_metrics(self.out_dir / "metrics.csv")
                     if r["epoch"] <= self.epoch]

    # -- the loop -------------------------------------------------------------------------
    def fit(self) -> list[dict[str, float]]:
        """Train up to ``config["epochs"]``; on SIGINT/SIGTERM save, then raise ``Interrupted``."""
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / MODEL_FILE).write_text(self.model_source)
        epochs = int(self.config["epochs"])
        ds = self.dataset
        with _StopSignals() as stop:
            try:
                while self.epoch < epochs:
                    self._train_epoch(stop)
                    self._average_buffers()
                    test_loss, test_acc = self.evaluate(ds.X_test, ds.y_test)
                    p = self._global_partial()
                    row = {"epoch": self.epoch + 1, "train_loss": p["loss_sum"] / p["seen"],
                           "train_acc": p["correct"] / p["seen"], "test_loss": test_loss,
                           "test_acc": test_acc, "seconds": p["seconds"]}
                    self.rows.append(row)
                    self.epoch += 1
                    self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
                    if self.rank == 0:
                        report.write_metrics(self.out_dir / "metrics.csv", self.rows)
                    self.save_checkpoint()
                    self.log(f"epoch {row['epoch']:>3}/{epochs}  "
                             f"train loss {row['train_loss']:.4f} "
                             f"acc {100 * row['train_acc']:.2f}%  "
                             f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  "
                             f"({row['seconds']:.2f} s)")
                    if self._stop_asked(stop):  # came while the epoch was evaluated
                        raise self._interrupted(stop.signum)
            except KeyboardInterrupt:
                # A second signal (or Ctrl-C outside the main thread): save what we have.
                path = self.save_checkpoint()
                raise Interrupted(f"interrupted; checkpoint saved to {path}; continue with "
                                  f"chainrule train --resume --out {self.out_dir}") from None
        return self.rows

    def _interrupted(self, signum: int | None) -> Interrupted:
        name = signal.Signals(signum).name if signum is not None else "a signal"
        return Interrupted(f"stopped by {name} at epoch {self.epoch + 1}; checkpoint saved to "
                           f"{self.out_dir / CHECKPOINT}; continue with chainrule train "
                           f"--resume --out {self.out_dir}",
                           signum if signum is not None else signal.SIGINT)

    def _train_epoch(self, stop: _StopSignals) -> None:
        total = len(self.loader)
        start_batch = self.loader.state_dict()["batch"]
        desc = f"epoch {self.epoch + 1}/{int(self.config['epochs'])}"
        batches, set_postfix, close = self.progress.epoch(self.loader, total, start_batch, desc)
        p = self.partial
        try:
            tick = time.perf_counter()
            for xb, yb in batches:
                loss, logits = self._train_step(xb, yb)
                if self.world > 1:
                    loss = self._job_loss_check(loss)
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
                if self._stop_asked(stop) and self.loader.state_dict()["batch"] < total:
                    self.save_checkpoint()
                    raise self._interrupted(stop.signum)
        finally:
            close()

    # -- data parallel: what every rank must decide together ------------------------------
    def _stop_asked(self, stop: _StopSignals) -> bool:
        """Whether any rank got a stop signal: all ranks stop after the same step."""
        if self.world == 1:
            return stop.raised
        flag = np.array([stop.signum or 0], np.int64)
        cr.distributed.allreduce_(flag, average=False)
        if flag[0] and stop.signum is None:
            stop.signum = int(signal.SIGTERM)
        return bool(flag[0])

    def _job_loss_check(self, loss: float) -> float:
        """NaN on any rank is NaN for the job; only rank 0 reports it (the others wait for
        its abort), so the error is printed once."""
        flag = np.array([0.0 if math.isfinite(loss) else 1.0])
        cr.distributed.allreduce_(flag, average=False)
        if flag[0] and self.rank != 0:
            cr.distributed.barrier()          # ended by rank 0's error
        return loss if not flag[0] or not math.isfinite(loss) else math.nan

    def _average_buffers(self) -> None:
        """Batch norm's running statistics, averaged over the ranks' shards each epoch."""
        if self.world == 1 or not hasattr(self.model, "buffers"):
            return
        for buf in self.model.buffers():
            data = buf.data if hasattr(buf, "data") else buf
            if isinstance(data, np.ndarray) and data.dtype.kind == "f" and \
                    data.flags.c_contiguous:
                cr.distributed.allreduce_(data)

    # -- artifacts ------------------------------------------------------------------------
    def write_artifacts(self) -> list[Path]:
        """curves.png, decision_boundary.png (2-D data) and graph.dot/.svg, each optional;
        returns the files written."""
        out = self.out_dir
        written = []
        try:
            report.plot_curves(out / "curves.png", self.rows)
            written.append(out / "curves.png")
        except ImportError:
            self.log("matplotlib is not installed (pip install 'chainrule[train]'): "
                     "skipping plots")
        else:
            ds = self.dataset
            if ds.sample_shape == (2,):
                X = np.concatenate([ds.X_train, ds.X_test])
                y = np.concatenate([ds.y_train, ds.y_test])
                report.plot_decision_boundary(
                    out / "decision_boundary.png",
                    lambda grid: self.predict_logits(grid).argmax(axis=1), X, y)
                written.append(out / "decision_boundary.png")
        written += self.draw_graph(out)
        return written

    def draw_graph(self, out: Path, batch: int = 4, names: tuple[str, ...] = ("graph.dot",
                   "graph.svg")) -> list[Path]:
        """Draw the loss graph of a few training samples (graph.dot and graph.svg)."""
        ds = self.dataset
        written = []
        try:
            loss = self._loss_of(cr.tensor(ds.X_train[:batch]), ds.y_train[:batch])
            loss.backward()
            for name in names:
                try:
                    # one box per layer, so a model's graph fits a screen
                    cr.draw(loss, str(out / name), group="module")
                    written.append(out / name)
                except (cr.ChainruleError, ImportError, OSError, RuntimeError) as exc:
                    self.log(f"could not draw {name} ({type(exc).__name__}: {exc}); skipping")
        except (AttributeError, cr.ChainruleError, ImportError) as exc:
            self.log(f"graph drawing is not available ({type(exc).__name__}: {exc}); skipping")
        finally:
            self.optimizer.zero_grad()
        return written
