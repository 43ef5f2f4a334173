"""``chainrule`` command line: ``train``, ``eval``, ``graph`` and ``export``.

Examples
--------
    chainrule train                                   # MLP 64-128-10 on digits, compiled
    chainrule train --model cnn                       # a small CNN on the 8x8 digit images
    chainrule train --dataset spiral --hidden 64 64 --epochs 50 --out runs/spiral
    chainrule train --out runs/spiral --resume --epochs 80
    chainrule eval runs/spiral/checkpoint.npz
    chainrule graph --hidden 8 --out graph.svg
    chainrule export runs/spiral/checkpoint.npz --onnx model.onnx

A mistake on the command line gets one line on stderr and exit status 2, a failure while
running one line and status 1, never a traceback. A run is never overwritten or lost: an
``--out`` that holds a checkpoint is refused without ``--resume`` or ``--force``, and
SIGINT, SIGTERM and SIGHUP save a checkpoint before exiting (128 + the signal's number).

Each subcommand is one entry of ``COMMANDS``: a function adding its arguments to its parser
and a handler taking the parsed namespace, so a new one is a small, separate addition.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import chainrule as cr

from ..data import DATASETS
from . import report
from .export import add_export_arguments, cmd_export
from .workers import in_mpi_job, launch, share_from_rank0
from .training import (
    ACTIVATIONS,
    CHECKPOINT,
    DEFAULT_CONFIG,
    LOSSES,
    MODEL_FILE,
    MODELS,
    OPTIMIZERS,
    Interrupted,
    Trainer,
    run_model_source,
    default_lr,
    model_source,
    read_checkpoint,
)

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

# The files a run writes (and nothing else is listed, or moved aside by --force, as its own).
RUN_FILES = (CHECKPOINT, "metrics.csv", MODEL_FILE, "curves.png", "decision_boundary.png",
             "graph.dot", "graph.svg")
_NEEDS_DATA_DIR = ("mnist", "fashion-mnist")


class UsageError(cr.ChainruleError):
    """The command line asks for something impossible: one line on stderr, exit status 2."""


# -- argument types: reject bad values while parsing, with argparse's one-line error --------
def _count(text: str) -> int:
    """A positive whole number (sizes, epochs, batch size)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, got {value}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _momentum(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` where there is a plain default; options whose default
    depends on others (``None`` here) say so in their own help text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _words(values: Any) -> str:
    return " ".join(map(str, values)) if isinstance(values, (list, tuple)) else str(values)


# -- train --------------------------------------------------------------------------------
def add_train_arguments(train: argparse.ArgumentParser) -> None:
    # Options that set the run's config default to None, so cmd_train knows which ones the
    # user gave (a resumed run says which it ignores); their defaults are in the help.
    d = DEFAULT_CONFIG
    model = train.add_argument_group("model and data")
    model.add_argument("--model", choices=MODELS, default=None,
                       help="an MLP, or a CNN of conv3x3-ReLU-maxpool blocks on image data "
                            f"(default: {d['model']})")
    model.add_argument("--dataset", choices=DATASETS, default=None,
                       help=f"(default: {d['dataset']})")
    model.add_argument("--data-dir", default=None, metavar="DIR",
                       help="folder of the MNIST / Fashion-MNIST IDX files")
    model.add_argument("--hidden", type=_count, nargs="*", default=None, metavar="SIZE",
                       help="sizes of the hidden fully connected layers (default: "
                            f"{_words(d['hidden'])} for mlp, none for cnn)")
    model.add_argument("--channels", type=_count, nargs="+", default=None, metavar="C",
                       help="output channels of each CNN block (default: "
                            f"{_words(d['channels'])})")
    model.add_argument("--activation", choices=ACTIVATIONS, default=None,
                       help=f"(default: {d['activation']})")
    model.add_argument("--loss", choices=LOSSES, default=None, help=f"(default: {d['loss']})")

    opt = train.add_argument_group("optimisation")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                     help=f"(default: {d['optimizer']})")
    lrs = ", ".join(f"{name} {default_lr(name)}" for name in OPTIMIZERS)
    opt.add_argument("--lr", type=_positive, default=None,
                     help=f"learning rate (default: {lrs}; adam/adamw "
                          f"{default_lr('adam', 'cnn')} for cnn)")
    opt.add_argument("--momentum", type=_momentum, default=None,
                     help=f"SGD momentum (default: {d['momentum']})")
    opt.add_argument("--epochs", type=_count, default=None,
                     help=f"train until this many epochs are done (default: {d['epochs']}; "
                          "with --resume, the run's own)")
    opt.add_argument("--batch-size", type=_count, default=None,
                     help=f"(default: {d['batch_size']})")
    opt.add_argument("--seed", type=_seed, default=None, help=f"(default: {d['seed']})")
    mode = opt.add_mutually_exclusive_group()
    mode.add_argument("--compiled", dest="compiled", action="store_const", const=True,
                      default=None,
                      help="compile the training step once with placeholders (the default)")
    mode.add_argument("--eager", dest="compiled", action="store_const", const=False,
                      help="run define-by-run: forward, backward, step per batch")

    run = train.add_argument_group("run directory")
    run.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="run directory (default: a new runs/<dataset>-<timestamp>)")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out (or the latest in runs/) from its "
                            "checkpoint, with its settings; --epochs may raise its target")
    again.add_argument("--force", action="store_true",
                       help="start over in an --out that holds a run (its files are moved "
                            "to a replaced-<timestamp> folder inside it, not deleted)")
    run.add_argument("--no-progress", action="store_true", help="plain lines, no progress bar")
    run.add_argument("--workers", type=_count, default=1, metavar="N",
                     help="train data-parallel on N MPI ranks of this machine, each on its "
                          "shard of every batch (needs chainrule[mpi]; default: 1)")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The config values the user typed (every train option's default is None)."""
    return {key: getattr(args, key) for key in DEFAULT_CONFIG
            if getattr(args, key, None) is not None}


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _new_config(given: dict[str, Any]) -> dict[str, Any]:
    config = dict(DEFAULT_CONFIG, **given)
    if "hidden" not in given and config["model"] == "cnn":
        config["hidden"] = []            # the CNN recipe goes straight from the convs to logits
    if config["lr"] is None:
        config["lr"] = default_lr(config["optimizer"], config["model"])
    if config["dataset"] in _NEEDS_DATA_DIR and config["data_dir"] is None:
        raise UsageError(f"--dataset {config['dataset']} is read from its IDX files: give "
                         f"--data-dir DIR, the folder holding train-images-idx3-ubyte[.gz], "
                         f"train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
                         f"t10k-labels-idx1-ubyte[.gz]")
    if config["model"] == "cnn" and config["dataset"] not in ("digits", *_NEEDS_DATA_DIR):
        raise UsageError(f"--model cnn needs an image dataset (digits, mnist, fashion-mnist); "
                         f"{config['dataset']} is a set of 2-D points: use --model mlp")
    unused = []
    if "momentum" in given and config["optimizer"] != "sgd":
        unused.append(f"--momentum (only sgd has it; this run uses {config['optimizer']})")
    if "channels" in given and config["model"] != "cnn":
        unused.append("--channels (only --model cnn has conv blocks)")
    if "data_dir" in given and config["dataset"] not in _NEEDS_DATA_DIR:
        unused.append("--data-dir (only mnist and fashion-mnist are read from files)")
    if unused:
        _note("ignoring " + "; ".join(unused))
    return config


def _note(text: str) -> None:
    print(f"chainrule train: {text}", file=sys.stderr)


def _latest_run(dataset: str | None) -> Path | None:
    pattern = f"{dataset}-*" if dataset else "*"
    runs = [p for p in Path("runs").glob(pattern) if (p / CHECKPOINT).is_file()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _fresh_run_dir(dataset: str) -> Path:
    """``runs/<dataset>-<timestamp>``, with a suffix if a run started in the same second."""
    base = Path("runs") / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _resume_config(args: argparse.Namespace,
                   given: dict[str, Any]) -> tuple[Path, dict[str, Any], int]:
    out = args.out if args.out is not None else _latest_run(given.get("dataset"))
    if out is None:
        raise UsageError("nothing to resume: no run with a checkpoint in runs/; "
                         "give the run's folder with --out DIR")
    if not (out / CHECKPOINT).is_file():
        raise UsageError(f"nothing to resume: no {CHECKPOINT} in {out}")
    state = read_checkpoint(out / CHECKPOINT)
    saved = dict(DEFAULT_CONFIG, **state["config"])
    done = int(state["epoch"])
    config = dict(saved)
    # What may change when a run continues: how long it trains, where its data lives, and
    # eager vs compiled steps (they compute the same updates).
    for key in ("epochs", "data_dir", "compiled"):
        if key in given:
            config[key] = given[key]
    ignored = [f"{_option(key)} {_words(value)} (the run's: {_words(saved[key])})"
               for key, value in given.items()
               if key not in ("epochs", "data_dir", "compiled") and value != saved[key]
               and not (key == "dataset" and args.out is None)]
    if ignored:
        _note("--resume continues the run with its own settings; ignoring "
              + ", ".join(ignored))
    if config["epochs"] < done:
        raise UsageError(f"{out} has already trained {done} epochs: --epochs "
                         f"{config['epochs']} would not continue it; give --epochs above {done}")
    return out, config, done


def _move_aside(out: Path) -> Path:
    """Move a previous run's files into ``out/replaced-<timestamp>``: never delete a run."""
    aside = out / f"replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while aside.exists():
        n += 1
        aside = out / f"replaced-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    aside.mkdir()
    for name in RUN_FILES:
        if (out / name).exists():
            shutil.move(str(out / name), str(aside / name))
    return aside


def _prepare_out(out: Path) -> None:
    """Create ``out`` and check that files can be written in it, before any work is done."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except FileExistsError:
        raise UsageError(f"--out {out}: a part of this path is a file, not a folder") from None
    except NotADirectoryError:
        raise UsageError(f"--out {out}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise UsageError(f"--out {out} cannot be written to ({exc.strerror or exc})") from None


def _plan_train(args: argparse.Namespace) -> dict[str, Any] | None:
    """Check the command against the run directory and settle the run: its folder, config and
    whether it resumes (None: nothing left to train). Only this step touches the folder."""
    given = _given(args)
    if args.resume:
        out, config, done = _resume_config(args, given)
        if done >= config["epochs"]:
            print(f"{out} has already trained all {done} epochs; nothing to do "
                  f"(give --epochs above {done} to train it further)")
            return None
    else:
        config = _new_config(given)
        out = args.out if args.out is not None else _fresh_run_dir(config["dataset"])
        if out.is_dir() and (out / CHECKPOINT).exists():
            if not args.force:
                raise UsageError(
                    f"{out} already holds a run ({CHECKPOINT}): add --resume to continue it, "
                    f"--force to start over (its files are kept in a replaced-* folder), or "
                    f"choose another --out")
            print(f"--force: the previous run in {out} was moved to {_move_aside(out)}")
    _prepare_out(out)
    return {"out": str(out), "config": config, "resume": bool(args.resume)}


def cmd_train(args: argparse.Namespace) -> int:
    if args.workers > 1 and not in_mpi_job():
        return launch(args.workers, list(args.argv))
    if in_mpi_job():
        cr.distributed.init()
    rank, world = cr.distributed.rank(), cr.distributed.world_size()
    if rank != 0:                        # rank 0 speaks for the job
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    plan, error = None, None
    if rank == 0:
        try:
            plan = _plan_train(args)
        except UsageError as exc:
            error = str(exc)
    if world > 1:
        error, plan = share_from_rank0([error, plan])
    if error is not None:
        if rank != 0:
            return 2                     # rank 0 says why
        raise UsageError(error)
    if plan is None:
        return 0
    out, config = Path(plan["out"]), plan["config"]
    progress = report.Progress(enabled=False if args.no_progress or rank != 0 else None)
    trainer = Trainer(config, out, progress=progress,
                      log=print if rank == 0 else (lambda text: None))
    if plan["resume"]:
        trainer.restore(out / CHECKPOINT)
        print(f"resuming {out} at epoch {trainer.epoch} of {config['epochs']}")
    ranks = f" on {world} MPI ranks" if world > 1 else ""
    print(f"{trainer.model}\n{trainer.optimizer}, {len(trainer.dataset.X_train)} training "
          f"samples, {'compiled' if trainer.compiled else 'eager'} steps{ranks}, "
          f"writing to {out}")
    try:
        rows = trainer.fit()
    except Interrupted as stop:
        print(f"\n{stop}")
        if world > 1 and stop.signum == getattr(signal, "SIGUSR1", None):
            return 0     # the launcher asked (Ctrl-C): a clean stop, it reports the signal
        return 128 + stop.signum
    if rank != 0:
        return 0
    written = trainer.write_artifacts()
    print(report.summary_table(rows))
    names = [CHECKPOINT, "metrics.csv", MODEL_FILE, *(p.name for p in written)]
    print(f"artifacts in {out}: " + ", ".join(dict.fromkeys(names)))
    return 0


# -- eval ---------------------------------------------------------------------------------
def add_eval_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("checkpoint", type=Path, help="a run's checkpoint.npz")
    evaluate.add_argument("--data-dir", default=None, metavar="DIR",
                          help="where the MNIST files are now (default: the run's)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test")


def _trainer_from_checkpoint(path: Path, data_dir: str | None) -> Trainer:
    state = read_checkpoint(path)
    config = dict(state["config"], compiled=False)
    if data_dir is not None:
        config["data_dir"] = data_dir
    trainer = Trainer(config, path.parent, log=lambda text: print(text, file=sys.stderr))
    trainer.model.load_state_dict(state["model"])
    return trainer


def cmd_eval(args: argparse.Namespace) -> int:
    trainer = _trainer_from_checkpoint(args.checkpoint, args.data_dir)
    ds = trainer.dataset
    X, y = (ds.X_test, ds.y_test) if args.split == "test" else (ds.X_train, ds.y_train)
    predicted = trainer.predict_logits(X).argmax(axis=1)
    k = ds.num_classes
    matrix = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    accuracy = float(np.mean(predicted == y))
    print(f"{ds.name} {args.split}: accuracy {100 * accuracy:.2f}% "
          f"({int(np.sum(predicted == y))}/{len(y)})")
    print(report.confusion_table(matrix))
    return 0


# -- graph --------------------------------------------------------------------------------
_GRAPH_MODEL = {"in_features": 2, "hidden": [4], "classes": 3, "activation": "relu",
                "loss": "cross-entropy"}


def add_graph_arguments(graph: argparse.ArgumentParser) -> None:
    graph.add_argument("checkpoint", type=Path, nargs="?", default=None,
                       help="draw this run's model (otherwise an MLP built from the options)")
    g = _GRAPH_MODEL
    built = graph.add_argument_group("the MLP drawn without a checkpoint")
    built.add_argument("--in-features", type=_count, default=None,
                       help=f"(default: {g['in_features']})")
    built.add_argument("--hidden", type=_count, nargs="*", default=None, metavar="SIZE",
                       help=f"(default: {_words(g['hidden'])})")
    built.add_argument("--classes", type=_count, default=None, help=f"(default: {g['classes']})")
    built.add_argument("--activation", choices=ACTIVATIONS, default=None,
                       help=f"(default: {g['activation']})")
    built.add_argument("--loss", choices=LOSSES, default=None, help=f"(default: {g['loss']})")
    graph.add_argument("--batch", type=_count, default=4, help="samples in the drawn batch")
    graph.add_argument("--seed", type=_seed, default=0)
    graph.add_argument("--out", type=Path, default=Path("graph.svg"),
                       help="the drawing; its suffix picks the format (.dot, .svg, .png)")


def cmd_graph(args: argparse.Namespace) -> int:
    given = {key: getattr(args, key) for key in _GRAPH_MODEL if getattr(args, key) is not None}
    if not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: no folder {args.out.parent}")
    if args.checkpoint is not None:
        if given:
            print("chainrule graph: drawing the checkpoint's own model; ignoring "
                  + ", ".join(f"{_option(k)} {_words(v)}" for k, v in given.items()),
                  file=sys.stderr)
        trainer = _trainer_from_checkpoint(args.checkpoint, None)
        X, y = trainer.dataset.X_train[:args.batch], trainer.dataset.y_train[:args.batch]
        loss_of = trainer._loss_of
    else:
        g = dict(_GRAPH_MODEL, **given)
        cr.manual_seed(args.seed)
        config = {"model": "mlp", "hidden": g["hidden"], "activation": g["activation"],
                  "loss": g["loss"]}
        code = run_model_source(model_source(config, (g["in_features"],), g["classes"]), MODEL_FILE)
        loss_of = code["loss_of"]
        rng = np.random.default_rng(args.seed)
        X = rng.standard_normal((args.batch, g["in_features"])).astype(cr.default_dtype())
        y = rng.integers(0, g["classes"], size=args.batch)
    loss = loss_of(cr.tensor(X), y)
    loss.backward()
    try:
        cr.draw(loss, str(args.out), group="module")   # one box per layer: fits a screen
    except (cr.ChainruleError, ImportError, OSError, RuntimeError) as exc:
        print(f"chainrule graph: cannot draw {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


# -- the command table and the entry point -------------------------------------------------
class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "train": Command("train a model and write a run directory", add_train_arguments, cmd_train),
    "eval": Command("accuracy and confusion matrix of a checkpoint", add_eval_arguments,
                    cmd_eval),
    "graph": Command("draw a model's loss graph (.dot, .svg, .png)", add_graph_arguments,
                     cmd_graph),
    "export": Command("write a checkpoint's model as ONNX", add_export_arguments, cmd_export),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule", formatter_class=_Help,
                                     description="Train and inspect small chainrule models.")
    parser.add_argument("--version", action="version", version=f"chainrule {cr.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help,
                                  formatter_class=_Help)
        command.add_arguments(sub)
    return parser


class _ReaderGone:
    """A text stream that goes quiet when its reader has gone (``chainrule train | head -n
    1``) or the terminal has closed, so a full pipe never stops training."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.gone = False

    def _call(self, method: str, *args: Any) -> Any:
        if not self.gone:
            try:
                return getattr(self._stream, method)(*args)
            except OSError:            # EPIPE, EIO on a closed terminal, a full disk
                self.gone = True
                try:
                    # Whatever stays in the stream's buffer now drains into /dev/null, so
                    # Python's own flush at exit does not complain either.
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, self._stream.fileno())
                    os.close(devnull)
                except (OSError, ValueError, AttributeError):
                    pass
        return None

    def write(self, text: str) -> int:
        self._call("write", text)
        return len(text)

    def flush(self) -> None:
        self._call("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _guarded_streams() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    try:
        # Line by line, so `| head` and `| tee` see each epoch as it ends.
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        pass
    sys.stdout, sys.stderr = _ReaderGone(sys.stdout), _ReaderGone(sys.stderr)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    with _guarded_streams():
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        name = args.command
        try:
            return COMMANDS[name].run(args)
        except UsageError as exc:
            print(f"chainrule {name}: {exc}", file=sys.stderr)
            return 2
        except cr.ChainruleError as exc:
            print(f"chainrule {name}: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"chainrule {name}: {exc.strerror or exc}{where}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            # Training saves on signals itself; this is Ctrl-C while loading or drawing.
            print(f"chainrule {name}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
