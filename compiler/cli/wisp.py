"""wisp: compile, run and evaluate transformer models for the modeled NPU."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from types import ModuleType

from compiler.cli.errors import guarded

# Subcommand name → module in compiler/cli exposing HELP, add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, str] = {
    "models": "compiler.cli.cmd_models",
    "passes": "compiler.cli.cmd_passes",
    "compile": "compiler.cli.cmd_compile",
    "eval": "compiler.cli.cmd_eval",
    "run": "compiler.cli.cmd_run",
    "depgraph": "compiler.cli.cmd_depgraph",
    "import": "compiler.cli.cmd_import",
    "generate": "compiler.cli.cmd_generate",
    "search": "compiler.cli.cmd_search",
    "report": "compiler.cli.cmd_report",
}


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(COMMANDS[name])
    except ModuleNotFoundError as e:
        if e.name == COMMANDS[name]:
            return None  # a subcommand not built yet
        raise


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wisp", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress display (it is shown only on a terminal)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="NaN/Inf or unused weights are errors, not warnings"
    )
    parser.add_argument(
        "--allow-lossy",
        action="store_true",
        help="convert inputs even when that wraps, truncates or overflows (saturating)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("--allow-lossy", action="store_true", help=argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = make_parser().parse_args(args_list)
        from backend.convert import ALLOW_LOSSY
        from compiler.progress import QUIET
        from compiler.weight_audit import STRICT

        # given before or after the subcommand (a subparser's default would hide the first)
        STRICT.set(bool(args.strict) or "--strict" in args_list)
        ALLOW_LOSSY.set(bool(args.allow_lossy) or "--allow-lossy" in args_list)
        quiet = QUIET.set(bool(args.quiet) or "--quiet" in args_list)
        try:
            return int(args._run(args))
        finally:  # main() may run in-process (scripts, tests): no effect after it returns
            QUIET.reset(quiet)

    return guarded("wisp", body, args_list)


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
