"""wisp depgraph: the pruning groups of a model (DepGraph analysis) as text, JSON or DOT."""

from __future__ import annotations

import argparse
import json

HELP = "show MODEL's pruning groups (heads, QK/V dims, FFN units, embed dim) and what blocks them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from compiler.cli.model_args import add_model_arguments

    add_model_arguments(p)
    p.add_argument(
        "--format",
        choices=("text", "json", "dot"),
        default="text",
        help="output format (default text)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here instead of stdout (atomically)"
    )


def run(args: argparse.Namespace) -> int:
    from compiler.cli.model_args import model_from_args
    from compiler.io_util import write_text_atomic
    from passes.depgraph import analyze

    model = model_from_args(args)
    dg = analyze(model.module)
    if args.format == "json":
        text = json.dumps({"model": model.name, **dg.to_json()}, indent=1) + "\n"
    elif args.format == "dot":
        text = dg.to_dot()
    else:
        text = dg.to_text(model.name)
    if args.output:
        write_text_atomic(args.output, text)
        print(f"wrote {args.output}: {len(dg.groups)} groups ({len(dg.prunable())} prunable)")
    else:
        print(text, end="")
    return 0
