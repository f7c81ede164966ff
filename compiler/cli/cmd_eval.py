"""wisp eval: accuracy on the model's bundled evaluation set."""

from __future__ import annotations

import argparse

HELP = "evaluate MODEL on its bundled evaluation set (reference executor)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from compiler.cli.model_args import add_model_arguments

    add_model_arguments(p)
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="evaluate only the first N samples"
    )


def run(args: argparse.Namespace) -> int:
    from compiler.cli.model_args import model_from_args
    from compiler.evaluate import evaluate

    if args.limit is not None and args.limit <= 0:
        raise ValueError(f"--limit must be positive, got {args.limit}")
    model = model_from_args(args)
    result = evaluate(model, limit=args.limit)
    print(
        f"{model.name}: accuracy {100 * result.accuracy:.2f}% "
        f"({result.correct}/{result.total} on {result.dataset}, reference executor)"
    )
    return 0
