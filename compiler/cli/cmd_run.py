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
    p.add_argument(
        "--max-memory",
        type=_size,
        metavar="BYTES",
        help="refuse programs needing more host memory (DRAM + SRAM; default 2G; suffixes K, M, G)",
    )
    p.add_argument(
        "--max-cycles",
        type=_size,
        metavar="N",
        help="refuse programs whose modeled cycles exceed N (default 8G; suffixes K, M, G)",
    )


def _size(text: str) -> int:
    """A positive integer with an optional K/M/G suffix (powers of 1024)."""
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or int(digits) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (K/M/G suffix), got {text!r}"
        )
    return int(digits) * scale


def load_program(path: Path):
    """A Program from a .s file, a .npubin file or a directory holding program.npubin."""
    from backend import npubin
    from backend.asm import assemble
    from compiler.errors import WispError
    from compiler.io_util import is_staging_leftover

    if is_staging_leftover(path) or is_staging_leftover(path.parent):
        raise WispError(
            f"{path}: a leftover staging directory of an interrupted write, not an output"
        )
    if path.is_dir():
        for name in ("program.npubin", "program.s"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise WispError(f"{path}: no program.npubin (or program.s) in this directory")
    raw = read_regular_file(path, "program")
    if path.suffix == ".s":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WispError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
        return assemble(text, str(path))
    return npubin.read(raw, str(path))


MAX_PROGRAM_BYTES = 1 << 32  # the DRAM address space: no program file is larger


def read_regular_file(path: Path, what: str) -> bytes:
    """The bytes of a regular file (no devices, FIFOs); OS errors name ``path``."""
    import os
    import stat

    from compiler.errors import WispError

    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise WispError(f"{path}: {what} is not a regular file")
            if st.st_size > MAX_PROGRAM_BYTES:
                raise WispError(f"{path}: {what} file of {st.st_size} bytes is too large")
            return f.read()
    except OSError as e:
        raise WispError(f"{path}: cannot read {what}: {e.strerror or e}") from None


def _summary(name: str, x) -> str:
    import numpy as np

    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    stats = (
        f"min {flat.min():.6g}  max {flat.max():.6g}  mean {flat.mean():.6g}" if flat.size else ""
    )
    head = ", ".join(f"{v:.6g}" for v in flat[:6]) + (", ..." if flat.size > 6 else "")
    return f"{name}: {x.dtype}{list(x.shape)}  {stats}  [{head}]"


def run(args: argparse.Namespace) -> int:

    from backend.config import bundled_config, load_config
    from backend.interpreter import run as run_program
    from backend.interpreter.limits import limits_for
    from backend.wording import natural_key
    from compiler.io_util import load_npz, save_npz, write_text_atomic

    program = load_program(Path(args.program))
    # --config is the user's (a name or a file); a name from the program: bundled configs only
    cfg = (
        load_config(args.config)
        if args.config
        else bundled_config(program.config_name or "spatten")
    )
    if any(program.config_hash) and program.config_hash != cfg.hash:
        print(
            f"wisp run: warning: program was compiled for config '{program.config_name}' "
            f"(hash {program.config_hash.hex()}), running on '{cfg.name}' ({cfg.hash.hex()})",
            file=sys.stderr,
        )
    inputs = None
    if args.input:
        inputs = load_npz(args.input, "input")
        from compiler.weight_audit import audit_inputs

        audit_inputs(str(args.input), inputs)
    elif not args.timing_only and any(s.kind == "input" for s in program.symbols.values()):
        print(
            "wisp run: note: no --input given; inputs keep the program image contents",
            file=sys.stderr,
        )
    limits = limits_for(args.max_memory, args.max_cycles)
    result = run_program(
        program, inputs, cfg, timing_only=args.timing_only, trace=bool(args.trace), limits=limits
    )
    # files first (atomically), so a closed stdout (e.g. `| head`) cannot lose them
    if args.output:
        save_npz(args.output, dict(result.outputs))
    if args.report:
        write_text_atomic(args.report, result.report.to_json() + "\n")
    if args.trace:
        trace = {"traceEvents": result.trace_events, "displayTimeUnit": "ns"}
        write_text_atomic(args.trace, json.dumps(trace))
    for name, x in sorted(result.outputs.items(), key=lambda kv: natural_key(kv[0])):
        print(_summary(name, x))
    if result.outputs:
        print()
    print(result.report.table())
    return 0
