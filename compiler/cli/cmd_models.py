"""wisp models: list the zoo."""

from __future__ import annotations

import argparse

HELP = "list the model zoo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from compiler.models.zoo import DEFAULT_MODEL, ZOO

    width = max(len(n) for n in ZOO)
    for name, entry in ZOO.items():
        mark = " (default)" if name == DEFAULT_MODEL else ""
        extra = f" [eval: {entry.dataset}]" if entry.dataset else ""
        print(f"{name:<{width}}  {entry.description}{extra}{mark}")
    return 0
