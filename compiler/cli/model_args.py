"""The MODEL argument and zoo shape options shared by subcommands."""

from __future__ import annotations

import argparse

from compiler.model import Model
from compiler.models.zoo import FLAG_OPTIONS, OPTIONS, STR_OPTIONS


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL",
        help="zoo name (see `wisp models`), NAME.mlir, MODEL.onnx, or a compile OUTDIR",
    )
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=1xDxD",
        help="fix a dynamic input dim of an .onnx model, e.g. input_ids=1x128 (repeatable)",
    )
    p.add_argument("--weights", help="weights .npz for a .mlir model (default: NAME.weights.npz)")
    p.add_argument("--seed", type=int, default=0, help="init seed for zoo models (default 0)")
    group = p.add_argument_group("zoo shape options")
    for key, doc in OPTIONS.items():
        group.add_argument(
            f"--{key.replace('_', '-')}", dest=key, type=int, default=None, metavar="N", help=doc
        )
    for key, doc in FLAG_OPTIONS.items():
        group.add_argument(
            f"--{key.replace('_', '-')}", dest=key, action="store_true", default=None, help=doc
        )
    for key, doc in STR_OPTIONS.items():
        group.add_argument(f"--{key}", dest=key, default=None, metavar="A,B", help=doc)


def model_from_args(args: argparse.Namespace) -> Model:
    from compiler.loading import load_model

    options = {k: getattr(args, k, None) for k in (*OPTIONS, *FLAG_OPTIONS, *STR_OPTIONS)}
    shapes = None
    if getattr(args, "input_shape", None):
        from compiler.frontends.onnx.load import parse_shape_overrides

        shapes = parse_shape_overrides(args.input_shape)
    return load_model(
        args.model, weights=args.weights, seed=args.seed, input_shapes=shapes, **options
    )
