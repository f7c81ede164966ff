"""wisp run: execute a compiled program on the NPU interpreter; print outputs and the report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "run PROGRAM (.s, .npubin or an OUTDIR with program.npubin) on the NPU interpreter"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", metavar="PROGRAM", help=".s, .npubin, or a directory (wisp compile)")
    p.add_argument(
        "--input", metavar="X.npz", help="input arrays by symbol name (default: the program image)"
    )
    p.add_argument("--output", metavar="Y.npz", help="write the output arrays here")
    p.add_argument("--report", metavar="R.json", help="write the report as JSON")
    p.add_argument("--trace", metavar="T.json", help="write a Chrome/Perfetto trace")
    p.add_argument(
        "--config",
        metavar="NAME|FILE",
        help="hardware config (default: the one the program was compiled for, else spatten)",
    )
    p.add_argument(
        "--timing-only", action="store_true", help="skip numerics (fast estimate; no outputs)"
    )


def load_program(path: Path):
    """A Program from a .s file, a .npubin file or a directory holding program.npubin."""
    from backend import npubin
    from backend.asm import assemble

    if path.is_dir():
        for name in ("program.npubin", "program.s"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise FileNotFoundError(f"{path}: no program.npubin (or program.s) in this directory")
    if path.suffix == ".s":
        return assemble(path.read_text(), str(path))
    return npubin.read(path.read_bytes(), str(path))


def _summary(name: str, x) -> str:
    import numpy as np

    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    stats = (
        f"min {flat.min():.6g}  max {flat.max():.6g}  mean {flat.mean():.6g}" if flat.size else ""
    )
    head = ", ".join(f"{v:.6g}" for v in flat[:6]) + (", ..." if flat.size > 6 else "")
    return f"{name}: {x.dtype}{list(x.shape)}  {stats}  [{head}]"


def run(args: argparse.Namespace) -> int:

    from backend.config import load_config
    from backend.interpreter import run as run_program
    from compiler.io_util import load_npz, save_npz, write_text_atomic

    program = load_program(Path(args.program))
    cfg = load_config(args.config or program.config_name or "spatten")
    if any(program.config_hash) and program.config_hash != cfg.hash:
        print(
            f"wisp run: warning: program was compiled for config '{program.config_name}' "
            f"(hash {program.config_hash.hex()}), running on '{cfg.name}' ({cfg.hash.hex()})",
            file=sys.stderr,
        )
    inputs = None
    if args.input:
        inputs = load_npz(args.input, "input")
    elif not args.timing_only and any(s.kind == "input" for s in program.symbols.values()):
        print(
            "wisp run: note: no --input given; inputs keep the program image contents",
            file=sys.stderr,
        )
    result = run_program(program, inputs, cfg, timing_only=args.timing_only, trace=bool(args.trace))
    # files first (atomically), so a closed stdout (e.g. `| head`) cannot lose them
    if args.output:
        save_npz(args.output, dict(result.outputs))
    if args.report:
        write_text_atomic(args.report, result.report.to_json() + "\n")
    if args.trace:
        trace = {"traceEvents": result.trace_events, "displayTimeUnit": "ns"}
        write_text_atomic(args.trace, json.dumps(trace))
    for name, x in sorted(result.outputs.items()):
        print(_summary(name, x))
    if result.outputs:
        print()
    print(result.report.table())
    return 0
