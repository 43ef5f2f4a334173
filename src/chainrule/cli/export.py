"""``chainrule export CHECKPOINT --onnx PATH``: the model a training checkpoint describes, as
ONNX.

The checkpoint's config rebuilds the model exactly as ``chainrule train`` built it (its
dataset gives the input's shape and dtype, as for ``chainrule eval``), the saved weights are
loaded, and ``cr.onnx.export`` writes it with a free batch dimension: input ``input``, output
``logits``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import chainrule as cr

__all__ = ["add_export_arguments", "cmd_export", "export_checkpoint"]


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a checkpoint.npz of chainrule train")
    parser.add_argument("--onnx", type=Path, required=True, metavar="PATH",
                        help="write the model here as ONNX (needs pip install "
                             "'chainrule[onnx]')")
    parser.add_argument("--data-dir", default=None,
                        help="folder of MNIST IDX files, if the run trained on MNIST")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset (default 18)")


def export_checkpoint(checkpoint: Path, path: Path, *, data_dir: str | None = None,
                      opset: int | None = None) -> str:
    """Write the checkpoint's model to ``path`` as ONNX; returns a one-line description."""
    from .training import Trainer, read_checkpoint

    state = read_checkpoint(checkpoint)
    config = dict(state["config"], compiled=False)
    if data_dir is not None:
        config["data_dir"] = data_dir
    trainer = Trainer(config, Path(checkpoint).parent,
                      log=lambda text: print(text, file=sys.stderr))
    trainer.model.load_state_dict(state["model"])
    example = np.asarray(trainer.dataset.X_train[:1])
    proto = cr.onnx.export(trainer.model, example, path, input_names=["input"],
                           output_names=["logits"], opset=opset)
    shape = ", ".join(["batch"] + [str(n) for n in example.shape[1:]])
    opset_used = proto.opset_import[0].version
    return (f"wrote {path}: ONNX opset {opset_used}, input 'input' ({shape}) {example.dtype}, "
            f"output 'logits' (batch, {trainer.dataset.num_classes})")


def cmd_export(args: argparse.Namespace) -> int:
    print(export_checkpoint(args.checkpoint, args.onnx, data_dir=args.data_dir,
                            opset=args.opset))
    return 0
