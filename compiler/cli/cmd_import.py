"""wisp import: an ONNX file → NAME.mlir + NAME.weights.npz (nn IR with decomposed subgraphs raised)."""

from __future__ import annotations

import argparse

HELP = "import an ONNX model (torch TorchScript or dynamo export) as NAME.mlir + NAME.weights.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX file (external data beside it)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="NAME.mlir",
        help="the nn IR to write; the weights go to NAME.weights.npz beside it (both or neither)",
    )
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=1xDxD",
        help="fix a dynamic input dim, e.g. input_ids=1x128 (repeatable)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace NAME.mlir / NAME.weights.npz even if they do not look like wisp outputs",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compiler.errors import WispError
    from compiler.frontends.onnx import import_onnx, parse_input_shapes
    from compiler.import_output import check_pair, weights_path_for, write_pair

    out = Path(args.output)
    if out.suffix != ".mlir":
        raise WispError(f"{out}: the output must be a NAME.mlir path")
    if Path(args.model).suffix != ".onnx":
        raise WispError(f"{args.model}: not an .onnx file")
    weights = weights_path_for(out)
    check_pair(out, weights, args.force)  # before any work
    model = import_onnx(args.model, parse_input_shapes(args.input_shape))
    write_pair(model, out, weights)
    ops = sum(1 for op in model.main.body.block.ops if op.name.startswith("nn."))
    print(
        f"wrote {out} ({ops} nn ops from {model.meta['onnx_nodes']} ONNX nodes, "
        f"opset {model.meta['opset']}, {model.meta['import_seconds']:.2f} s) and {weights} "
        f"({len(list(model.weights))} arrays, {model.weights.num_params:,} parameters)"
    )
    return 0
