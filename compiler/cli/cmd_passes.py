"""wisp passes: list the registered passes."""

from __future__ import annotations

import argparse

HELP = "list the registered passes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from compiler.registry import PASSES, pass_doc

    width = max(len(n) for n in PASSES)
    for name in sorted(PASSES):
        print(f"{name:<{width}}  {pass_doc(name)}")
    return 0
