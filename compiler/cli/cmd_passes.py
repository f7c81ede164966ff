"""wisp passes: list the registered passes with their options, or print one pass's doc."""

from __future__ import annotations

import argparse

HELP = "list the registered passes and their options (wisp passes NAME: that pass's doc)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="print this pass's doc and options")


def run(args: argparse.Namespace) -> int:
    from compiler.errors import WispError
    from compiler.pass_options import pass_help, passes_listing
    from compiler.registry import PASSES

    if args.name is not None:
        if args.name not in PASSES:
            raise WispError(f"unknown pass {args.name}; known passes: {', '.join(sorted(PASSES))}")
        print(pass_help(args.name), end="")
        return 0
    print(passes_listing(), end="")
    return 0
