"""wisp depgraph: the pruning groups of a model (DepGraph analysis) as text, JSON or DOT."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp

    from compiler.model import Model

HELP = "show MODEL's pruning groups (heads, QK/V dims, FFN units, embed dim) and what blocks them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from compiler.cli.model_args import add_model_arguments

    add_model_arguments(p)
    p.add_argument(
        "--format",
        choices=("text", "json", "dot"),
        default="text",
        help="output format (default text; dot: Graphviz, render with `dot -Tsvg`, from the graphviz package)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here instead of stdout (atomically)"
    )


def run(args: argparse.Namespace) -> int:
    from compiler.cli.model_args import model_from_args
    from compiler.io_util import write_text_atomic
    from passes.depgraph import analyze

    module, name = _module(args, model_from_args)
    dg = analyze(module)
    if args.format == "json":
        text = dg.to_json(name)
    elif args.format == "dot":
        text = dg.to_dot()
    else:
        text = dg.to_text(name)
    if args.output:
        write_text_atomic(args.output, text)
        print(f"wrote {args.output}: {len(dg.groups)} groups ({len(dg.prunable())} prunable)")
    else:
        print(text, end="")
    return 0


def _module(
    args: argparse.Namespace, load: Callable[[argparse.Namespace], Model]
) -> tuple[ModuleOp, str]:
    """The analysis needs no weights: a NAME.mlir without NAME.weights.npz is parsed on its own."""
    path = Path(args.model)
    beside = path.with_name(path.name.removesuffix(".mlir") + ".weights.npz")
    if path.suffix == ".mlir" and path.is_file() and args.weights is None and not beside.exists():
        from compiler.ir import parse_module

        return parse_module(path.read_text(), str(path)), path.stem
    model = load(args)
    return model.module, model.name
