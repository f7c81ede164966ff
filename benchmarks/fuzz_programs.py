"""Fuzz campaign over the untrusted-input entry points of `wisp run`; prints counts per outcome.

    OPENBLAS_NUM_THREADS=1 python benchmarks/fuzz_programs.py --n 500 --seed 0

Entry points: ``asm`` (mutated `examples/*.s`: extreme numbers, attack paths in `.config` and
`.incbin`, dropped/duplicated lines, junk bytes), ``npubin`` (the examples' binaries with one
instruction field set to an extreme in-range value and the CRC recomputed, or raw byte flips),
``config`` (the spatten config with one value replaced) and ``npz`` (a valid input file truncated
or with bytes flipped). Each case goes through what `wisp run` does (read, assemble/decode, load
config, run), inside a 4 GiB address-space limit and a per-case alarm. Outcomes:

- ``ok``: accepted and ran;
- ``clean``: refused with a `BackendError`/`WispError` (the CLI prints it as one line);
- ``crash``: any other exception (a bug: the CLI would print an unhelpful message);
- ``hang``: the per-case time limit passed.

Deterministic for a given ``--seed``; exit status 1 if any crash or hang.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backend.asm import assemble  # noqa: E402
from backend.config import bundled_config, config_from_dict  # noqa: E402
from backend.errors import BackendError  # noqa: E402
from backend.interpreter import run  # noqa: E402
from backend.isa import Instr  # noqa: E402
from backend.npubin import write  # noqa: E402
from compiler.cli.cmd_run import load_program  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.io_util import load_npz  # noqa: E402

EXAMPLES = sorted((ROOT / "examples").glob("*.s"))
EXTREMES = [0, 1, 2, 3, 7, 255, 4095, 65535, 65536, 2**22 - 1, 2**31 - 1, 2**32 - 1, 2**32, -1]
ATTACK_NAMES = ["/dev/zero", "../../etc/passwd", "/etc/passwd", "/proc/self/mem", "x" * 300]


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def outcome(case: Callable[[], object], seconds: int) -> str:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        case()
        return "ok"
    except Hang:
        return "hang"
    except (BackendError, WispError):
        return "clean"
    except Exception as e:  # noqa: BLE001 - the campaign counts them
        return f"crash:{type(e).__name__}: {str(e)[:120]}"
    finally:
        signal.alarm(0)


def run_file(path: Path, inputs: dict[str, np.ndarray] | None = None) -> None:
    prog = load_program(path)
    cfg = bundled_config(prog.config_name or "spatten")
    run(prog, inputs, cfg)


def mutate_asm(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    r = rng.random()
    if r < 0.45:  # one number → an extreme
        i = rng.randrange(len(lines))
        nums = list(re.finditer(r"(?<![\w.])(0x[0-9a-fA-F]+|\d+)(?![\w.])", lines[i]))
        if nums:
            m = rng.choice(nums)
            v = str(rng.choice(EXTREMES))
            lines[i] = lines[i][: m.start()] + v + lines[i][m.end() :]
    elif r < 0.55:
        lines = [
            f'.config "{rng.choice(ATTACK_NAMES)}" 0000000000000000'
            if ln.startswith(".config")
            else ln
            for ln in lines
        ]
    elif r < 0.65:
        lines.insert(rng.randrange(len(lines) + 1), f'.incbin "{rng.choice(ATTACK_NAMES)}"')
    elif r < 0.8:
        i = rng.randrange(len(lines))
        if rng.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[i])
    else:
        i = rng.randrange(len(lines))
        junk = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 6)))
        lines[i] = lines[i][: len(lines[i]) // 2] + junk
    return "\n".join(lines) + "\n"


def mutate_program_fields(rng: random.Random, path: Path) -> bytes:
    prog = assemble(path.read_text(), str(path))
    if rng.random() < 0.8 and prog.instrs:
        i = rng.randrange(len(prog.instrs))
        ins = prog.instrs[i]
        fields = [f for f in ins.cls.fields if f.kind in ("uint", "int")]
        if fields:
            f = rng.choice(fields)
            v = min(max(rng.choice(EXTREMES), f.lo), f.hi)
            args = dict(ins.args)
            args[f.name] = v
            prog.instrs[i] = Instr(ins.cls, args, ins.pred, ins.pneg, ins.wait, ins.signal)
        return write(prog)
    data = bytearray(write(prog))
    for _ in range(rng.randrange(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def mutate_config(rng: random.Random) -> dict:
    d = json.loads(bundled_config("spatten").canonical)
    section = rng.choice([k for k, v in d.items() if isinstance(v, dict)])
    key = rng.choice(list(d[section]))
    d[section][key] = rng.choice(
        [0, -1, 2**63, 2**22, 2**22 + 1, 1e300, float("inf"), float("nan"), "x", None, [], True]
    )
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="cases per entry point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--entry", default="all", help="asm, npubin, config, npz or all")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per case")
    args = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    entries = ["asm", "npubin", "config", "npz"] if args.entry == "all" else [args.entry]
    rng = random.Random(args.seed)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        good = d / "in.npz"
        src = ROOT / "examples" / "int8_matmul_requant.s"
        np.savez(good, A=np.ones((8, 16), np.int8))
        for entry in entries:
            counts: Counter[str] = Counter()
            crashes: list[str] = []
            start = time.monotonic()
            for n in range(args.n):
                ex = rng.choice(EXAMPLES)
                if entry == "asm":
                    p = d / f"case{n}.s"
                    p.write_text(mutate_asm(rng, ex.read_text()))
                    res = outcome(lambda p=p: run_file(p), args.timeout)
                elif entry == "npubin":
                    p = d / f"case{n}.npubin"
                    p.write_bytes(mutate_program_fields(rng, ex))
                    res = outcome(lambda p=p: run_file(p), args.timeout)
                elif entry == "config":
                    cfg_dict = mutate_config(rng)
                    prog = assemble(ex.read_text(), str(ex))
                    res = outcome(
                        lambda prog=prog, cfg_dict=cfg_dict: run(
                            prog, None, config_from_dict(cfg_dict, "fuzz.toml")
                        ),
                        args.timeout,
                    )
                else:
                    raw = bytearray(good.read_bytes())
                    if rng.random() < 0.5:
                        raw = raw[: rng.randrange(len(raw))]
                    else:
                        for _ in range(rng.randrange(1, 4)):
                            raw[rng.randrange(len(raw))] = rng.randrange(256)
                    p = d / f"case{n}.npz"
                    p.write_bytes(bytes(raw))
                    res = outcome(
                        lambda p=p: run_file(src, load_npz(p, "input")),
                        args.timeout,
                    )
                kind = res.split(":")[0]
                counts[kind] += 1
                if kind in ("crash", "hang"):
                    crashes.append(f"  case {n}: {res}")
                    failed = True
            secs = time.monotonic() - start
            print(
                f"{entry:7s} tried {args.n:5d}  ok {counts['ok']:5d}  clean error {counts['clean']:5d}"
                f"  crash {counts['crash']:3d}  hang {counts['hang']:3d}  ({secs:.1f} s)"
            )
            for line in crashes[:10]:
                print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
