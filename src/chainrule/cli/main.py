"""``chainrule`` command line: ``train``, ``eval`` and ``graph``.

Examples
--------
    chainrule train                                   # MLP 64-128-10 on digits, compiled
    chainrule train --dataset spiral --hidden 64 64 --epochs 50 --out runs/spiral
    chainrule train --out runs/spiral --resume --epochs 80
    chainrule eval runs/spiral/checkpoint.npz
    chainrule graph --hidden 8 --out graph.svg
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

import chainrule as cr

from ..data import DATASETS
from . import report
from .training import CHECKPOINT, DEFAULT_CONFIG, Interrupted, Trainer, build_model, make_loss

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule",
                                     description="Train and inspect small chainrule models.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an MLP and write a run directory")
    d = DEFAULT_CONFIG
    train.add_argument("--dataset", choices=DATASETS, default=d["dataset"])
    train.add_argument("--data-dir", default=None, help="folder of MNIST IDX files")
    train.add_argument("--hidden", type=int, nargs="*", default=d["hidden"],
                       help="hidden layer sizes (default: 128)")
    train.add_argument("--activation", choices=("relu", "tanh", "sigmoid"), default="relu")
    train.add_argument("--loss", choices=("cross-entropy", "hinge"), default=d["loss"])
    train.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default=d["optimizer"])
    train.add_argument("--lr", type=float, default=d["lr"])
    train.add_argument("--momentum", type=float, default=d["momentum"])
    train.add_argument("--epochs", type=int, default=d["epochs"])
    train.add_argument("--batch-size", type=int, default=d["batch_size"])
    train.add_argument("--seed", type=int, default=d["seed"])
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--compiled", dest="compiled", action="store_true", default=True,
                      help="compile the training step once with placeholders (default)")
    mode.add_argument("--eager", dest="compiled", action="store_false",
                      help="run define-by-run: forward, backward, step per batch")
    train.add_argument("--out", type=Path, default=None,
                       help="run directory (default runs/<dataset>-<timestamp>)")
    train.add_argument("--resume", action="store_true",
                       help="continue from OUT/checkpoint.npz (its config wins, except --epochs)")
    train.add_argument("--no-progress", action="store_true", help="plain lines, no progress bar")

    evaluate = commands.add_parser("eval", help="accuracy and confusion matrix of a checkpoint")
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--data-dir", default=None)
    evaluate.add_argument("--split", choices=("test", "train"), default="test")

    graph = commands.add_parser("graph", help="draw a model's loss graph (.dot, .svg, .png)")
    graph.add_argument("checkpoint", type=Path, nargs="?", default=None,
                       help="draw this run's model (otherwise build one from the options)")
    graph.add_argument("--in-features", type=int, default=2)
    graph.add_argument("--hidden", type=int, nargs="*", default=[4])
    graph.add_argument("--classes", type=int, default=3)
    graph.add_argument("--activation", choices=("relu", "tanh", "sigmoid"), default="relu")
    graph.add_argument("--loss", choices=("cross-entropy", "hinge"), default="cross-entropy")
    graph.add_argument("--batch", type=int, default=4, help="samples in the drawn batch")
    graph.add_argument("--seed", type=int, default=0)
    graph.add_argument("--out", type=Path, default=Path("graph.svg"))
    return parser


def _latest_run(dataset: str) -> Path | None:
    runs = sorted(Path("runs").glob(f"{dataset}-*"), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def cmd_train(args: argparse.Namespace) -> int:
    config = {key: getattr(args, key) for key in DEFAULT_CONFIG}
    out = args.out
    if args.resume:
        out = out or _latest_run(args.dataset)
        if out is None or not (out / CHECKPOINT).is_file():
            print(f"chainrule train: nothing to resume (no {CHECKPOINT} in {out})",
                  file=sys.stderr)
            return 2
        saved = cr.load(out / CHECKPOINT)["config"]
        config = dict(saved, epochs=args.epochs)
        print(f"resuming {out} from its checkpoint")
    elif out is None:
        out = Path("runs") / f"{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    progress = report.Progress(enabled=False if args.no_progress else None)
    trainer = Trainer(config, out, progress=progress)
    if args.resume:
        trainer.restore(out / CHECKPOINT)
    print(f"{trainer.model}\n{trainer.optimizer}, {len(trainer.dataset.X_train)} training "
          f"samples, {'compiled' if trainer.compiled else 'eager'} steps, writing to {out}")
    try:
        rows = trainer.fit()
    except Interrupted as stop:
        print(f"\n{stop}")
        return 130
    trainer.write_artifacts()
    print(report.summary_table(rows))
    print(f"artifacts in {out}: " + ", ".join(sorted(p.name for p in out.iterdir()
                                                     if not p.name.startswith("."))))
    return 0


def _trainer_from_checkpoint(path: Path, data_dir: str | None) -> Trainer:
    state = cr.load(path)
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


def cmd_graph(args: argparse.Namespace) -> int:
    if args.checkpoint is not None:
        trainer = _trainer_from_checkpoint(args.checkpoint, None)
        model, loss_fn = trainer.model, trainer.loss_fn
        X, y = trainer.dataset.X_train[:args.batch], trainer.dataset.y_train[:args.batch]
    else:
        cr.manual_seed(args.seed)
        model = build_model(args.in_features, args.hidden, args.classes, args.activation)
        loss_fn = make_loss(args.loss)
        rng = np.random.default_rng(args.seed)
        X = rng.standard_normal((args.batch, args.in_features)).astype(cr.default_dtype())
        y = rng.integers(0, args.classes, size=args.batch)
    loss = loss_fn(model(cr.tensor(X)), y)
    loss.backward()
    try:
        cr.draw(loss, str(args.out))
    except (cr.ChainruleError, ImportError, OSError) as exc:
        print(f"chainrule graph: cannot draw {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "eval": cmd_eval, "graph": cmd_graph}[args.command]
    try:
        return handler(args)
    except cr.ChainruleError as exc:
        print(f"chainrule {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
