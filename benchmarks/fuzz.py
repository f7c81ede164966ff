"""Fuzz campaign over wisp's untrusted-input entry points; prints counts per outcome.

    OPENBLAS_NUM_THREADS=1 python benchmarks/fuzz.py --entry all --n 10000 --seed 0

The single source of truth for the generators: tests/fuzz/ drives the same `CASES` from hypothesis.

Entry points: ``ir`` (a small model's IR text with a number, type, name or character mutated,
loaded like `wisp compile NAME.mlir`), ``pipeline`` (random pass pipelines with in- and
out-of-range options, parsed and applied to that model), ``weights`` (its weights file truncated,
byte-flipped, with keys dropped/renamed/added or arrays of another shape, dtype or with NaN),
``onnx`` (a small ONNX model with bytes flipped or truncated), ``asm`` (mutated `examples/*.s`: extreme numbers, attack paths in `.config` and
`.incbin`, dropped/duplicated lines, junk bytes), ``npubin`` (the examples' binaries with one
instruction field set to an extreme in-range value and the CRC recomputed, or raw byte flips),
``config`` (the spatten config with one value replaced) and ``npz`` (a valid input file truncated
or with bytes flipped). Each case goes through what `wisp run` does (read, assemble/decode, load
config, run), inside a 4 GiB address-space limit and a per-case alarm. Outcomes:

- ``accepted``: accepted without a word (silently accepted: a mutation that made no difference,
  or one that should have been refused);
- ``warned``: accepted with a warning (NaN/Inf weights, unused weight keys);
- ``clean``: refused with a `BackendError`/`WispError`/`PassError` (the CLI prints one line);
- ``crash``: any other exception (an uncaught exception: the CLI would print an unhelpful message);
- ``hang``: the per-case time limit passed.

Deterministic for a given ``--seed``; exit status 1 if any crash or hang.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import re
import resource
import signal
import sys
import tempfile
import time
import warnings
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
from passes.context import PassError  # noqa: E402

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
        with (
            warnings.catch_warnings(record=True) as seen,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("always")
            case()
        return "warned" if seen else "ok"
    except Hang:
        return "hang"
    except (BackendError, WispError, PassError):
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


IR_TEXT = """builtin.module {
  func.func @main(%x: tensor<6x8xf32>) -> tensor<6x4xf32> {
    %g = nn.weight @ln.weight : tensor<8xf32>
    %b = nn.weight @ln.bias : tensor<8xf32>
    %n = nn.layer_norm %x, %g, %b {eps = 1.0e-05} : (tensor<6x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<6x8xf32>
    %wa = nn.weight @fc1.weight : tensor<16x8xf32>
    %h = nn.linear %n, %wa : (tensor<6x8xf32>, tensor<16x8xf32>) -> tensor<6x16xf32>
    %r = nn.gelu %h {approximate = "none"} : (tensor<6x16xf32>) -> tensor<6x16xf32>
    %wb = nn.weight @fc2.weight : tensor<4x16xf32>
    %y = nn.linear %r, %wb : (tensor<6x16xf32>, tensor<4x16xf32>) -> tensor<6x4xf32>
    func.return %y : tensor<6x4xf32>
  }
}
"""
IR_WEIGHTS = {"ln.weight": (8,), "ln.bias": (8,), "fc1.weight": (16, 8), "fc2.weight": (4, 16)}
IR_TOKENS = ["tensor<6x8xf32>", "f32", "i32", "nn.linear", "nn.gelu", "%x", "%h", "@fc1.weight",
             "{", "}", "(", ")", ":", "->", ",", "=", "1.0e-05", "-1", "0", "65536", '"tanh"', "\\x00"]  # fmt: skip
PASS_OPTS: dict[str, list[str]] = {
    "structured-prune": ["ratio=0.25", "ratio=-1", "ratio=1", "ratio=2.5", "ratio=x",
                         "target=macs", "target=energy", "criterion=l1", "criterion=taylor",
                         "kinds=ffn", "kinds=tokens", "align=4", "align=-3", "hw=spatten",
                         "hw=/etc/passwd", "samples=0"],
    "sparsify-2-4": ["", "min_in=4", "min_in=-1", "refit=true", "hw=edge", "foo=1"],
    "quantize": ["weights=int8", "weights=int4", "weights=int3", "acts=int8", "granularity=group:4",
                 "granularity=group:0", "granularity=row", "calib=minmax", "percentile=150",
                 "attn=int8", "stream=int8", "method=gptq", "damp=-1"],
    "token-prune": ["keep=0.5", "keep=-1", "keep=2", "keep=0", "method=topk", "method=nope",
                    "schedule=ramp", "start=99", "protect=0"],
    "canonicalize": [""], "cse": [""], "dce": [""], "shape-check": [""],
    "nosuch-pass": [""],
}  # fmt: skip


def mutate_text(rng: random.Random, text: str) -> str:
    """One edit of IR text: a number, a token, a deleted span or junk characters."""
    r = rng.random()
    if r < 0.35:
        nums = list(re.finditer(r"\d+(\.\d+)?(e-?\d+)?", text))
        m = rng.choice(nums)
        v = str(rng.choice(EXTREMES + [0.5, 1e30, -7]))
        return text[: m.start()] + v + text[m.end() :]
    if r < 0.6:
        i = rng.randrange(len(text))
        return text[:i] + rng.choice(IR_TOKENS) + text[i + rng.randrange(0, 8) :]
    if r < 0.8:
        i = rng.randrange(len(text))
        return text[:i] + text[i + rng.randrange(1, 40) :]
    i = rng.randrange(len(text))
    junk = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 6)))
    return text[:i] + junk + text[i:]


def random_pipeline(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randrange(1, 4)):
        name = rng.choice(list(PASS_OPTS))
        opts = " ".join(
            o
            for o in rng.sample(PASS_OPTS[name], min(len(PASS_OPTS[name]), rng.randrange(0, 3)))
            if o
        )
        parts.append(f"{name}{{{opts}}}" if opts else name)
    sep = rng.choice([",", ",", ",", ", ", ",,", ";"])
    return sep.join(parts)


def mutate_weights(rng: random.Random) -> dict[str, np.ndarray]:
    w = {k: np.random.default_rng(rng.randrange(2**32)).standard_normal(s).astype(np.float32)
         for k, s in IR_WEIGHTS.items()}  # fmt: skip
    k = rng.choice(list(w))
    r = rng.random()
    if r < 0.2:
        del w[k]
    elif r < 0.35:
        w[k + ".extra"] = w[k]
    elif r < 0.55:
        w[k] = w[k].reshape(-1)[: max(1, w[k].size - rng.randrange(0, 3))]
    elif r < 0.75:
        dt = rng.choice([np.float64, np.float16, np.int8, np.int64, np.complex64, np.bool_, "U3"])
        w[k] = w[k].astype(dt)
    else:
        w[k].reshape(-1)[rng.randrange(w[k].size)] = rng.choice([np.nan, np.inf, -np.inf, 1e38])
    return w


def tiny_onnx(path: Path) -> bytes:
    """A 2-layer MLP in ONNX (needs the onnx package)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    r = np.random.default_rng(0)
    w1 = numpy_helper.from_array(r.standard_normal((8, 16)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(r.standard_normal((16, 4)).astype(np.float32), "w2")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 4])],
        [w1, w2],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, str(path))
    return path.read_bytes()


def flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    if rng.random() < 0.3:
        return bytes(data[: rng.randrange(len(data))])
    for _ in range(rng.randrange(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def _load_ir(p: Path, weights: Path | None) -> object:
    from compiler.loading import load_model

    return load_model(str(p), weights=str(weights) if weights else None)


def _apply_pipeline(spec: str, d: Path) -> None:
    from compiler.loading import load_model
    from compiler.pipeline import parse_pipeline, run_pipeline

    parse_pipeline(spec)  # the cheap part: option errors
    ir, wts = d / "m.mlir", d / "m.weights.npz"
    if not ir.exists():
        ir.write_text(IR_TEXT)
        np.savez(wts, **{k: np.ones(s, np.float32) for k, s in IR_WEIGHTS.items()})
    model = load_model(str(ir), weights=str(wts))
    run_pipeline(model, spec)


Case = Callable[[], object]
CaseMaker = Callable[[random.Random, Path, int], Case]


def case_asm(rng: random.Random, d: Path, n: int) -> Case:
    p = d / f"case{n}.s"
    p.write_text(mutate_asm(rng, rng.choice(EXAMPLES).read_text()))
    return lambda: run_file(p)


def case_npubin(rng: random.Random, d: Path, n: int) -> Case:
    p = d / f"case{n}.npubin"
    p.write_bytes(mutate_program_fields(rng, rng.choice(EXAMPLES)))
    return lambda: run_file(p)


def case_config(rng: random.Random, d: Path, n: int) -> Case:
    ex = rng.choice(EXAMPLES)
    cfg_dict = mutate_config(rng)
    prog = assemble(ex.read_text(), str(ex))
    return lambda: run(prog, None, config_from_dict(cfg_dict, "fuzz.toml"))


def case_npz(rng: random.Random, d: Path, n: int) -> Case:
    good = d / "in.npz"
    if not good.exists():
        np.savez(good, A=np.ones((8, 16), np.int8))
    p = d / f"case{n}.npz"
    p.write_bytes(flip_bytes(rng, good.read_bytes()))
    src = ROOT / "examples" / "int8_matmul_requant.s"
    return lambda: run_file(src, load_npz(p, "input"))


def case_ir(rng: random.Random, d: Path, n: int) -> Case:
    p = d / f"case{n}.mlir"
    p.write_bytes(mutate_text(rng, IR_TEXT).encode("utf-8", "surrogatepass"))
    good = d / "good.weights.npz"
    if not good.exists():
        np.savez(good, **{k: np.ones(s, np.float32) for k, s in IR_WEIGHTS.items()})
    return lambda: _load_ir(p, good)


def case_pipeline(rng: random.Random, d: Path, n: int) -> Case:
    spec = random_pipeline(rng)
    return lambda: _apply_pipeline(spec, d)


def case_weights(rng: random.Random, d: Path, n: int) -> Case:
    ir = d / "w.mlir"
    if not ir.exists():
        ir.write_text(IR_TEXT)
    p = d / f"case{n}.weights.npz"
    np.savez(p, **mutate_weights(rng))
    if rng.random() < 0.2:
        p.write_bytes(flip_bytes(rng, p.read_bytes()))
    return lambda: _load_ir(ir, p)


def case_onnx(rng: random.Random, d: Path, n: int) -> Case:
    good = d / "good.onnx"
    raw = good.read_bytes() if good.exists() else tiny_onnx(good)
    p = d / f"case{n}.onnx"
    p.write_bytes(flip_bytes(rng, raw))
    return lambda: _load_ir(p, None)


CASES: dict[str, CaseMaker] = {
    "ir": case_ir,
    "pipeline": case_pipeline,
    "asm": case_asm,
    "npubin": case_npubin,
    "config": case_config,
    "npz": case_npz,
    "weights": case_weights,
    "onnx": case_onnx,
}
LABELS = {
    "accepted": "silently accepted",
    "clean": "clean error",
    "crash": "uncaught",
    "hang": "hang",
}


def campaign(
    entry: str, n: int, seed: int, timeout: int, d: Path
) -> tuple[Counter[str], list[str]]:
    """Run `n` cases of one entry point; (counts per outcome, crash/hang descriptions)."""
    rng = random.Random(f"{seed}:{entry}")
    counts: Counter[str] = Counter()
    bad: list[str] = []
    for i in range(n):
        res = outcome(CASES[entry](rng, d, i), timeout)
        kind = res.split(":")[0]
        counts[kind] += 1
        if kind in ("crash", "hang"):
            bad.append(f"  case {i}: {res}")
    return counts, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="cases per entry point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--entry", default="all", help=f"{', '.join(CASES)}, a comma list, or all")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per case")
    args = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    entries = list(CASES) if args.entry == "all" else args.entry.split(",")
    for e in entries:
        if e not in CASES:
            ap.error(f"unknown entry point {e!r} (known: {', '.join(CASES)}, all)")
    failed = False
    for entry in entries:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.monotonic()
            counts, bad = campaign(entry, args.n, args.seed, args.timeout, Path(tmp))
            secs = time.monotonic() - start
        failed |= bool(bad)
        print(
            f"{entry:8s} tried {args.n:6d}  clean error {counts['clean']:6d}"
            f"  uncaught {counts['crash']:4d}  hang {counts['hang']:3d}  warned {counts['warned']:5d}"
            f"  silently accepted {counts['ok']:6d}  ({secs:.1f} s)",
            flush=True,
        )
        for line in bad[:10]:
            print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
