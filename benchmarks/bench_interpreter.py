"""Interpreter speed: small-instruction dispatch rate and MATMUL throughput vs plain numpy.

Run: ``python benchmarks/bench_interpreter.py`` (``--quick`` for fewer repeats). Prints
instructions/s (functional and timing-only, cold and with the cached plan) for a stream of
small instructions, and GMAC/s of a MATMUL program (two LOADs and 8 MATMULs of 128×768×768)
vs numpy doing the same work the fastest plain way: float32 BLAS (exact for int8 with K ≤ 1024)
on operands converted once, each product cast to int32/fp32. Both sides are timed interleaved,
minimum over repeats. BLAS runs single-threaded by default (``--blas-threads``) so that ratios
stay stable on a shared machine.
"""

from __future__ import annotations

import os
import sys


def _blas_threads_from_argv(default: str = "1") -> str:
    """``--blas-threads N`` must act before numpy loads OpenBLAS, so it is read from argv here."""
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--blas-threads="):
            return a.split("=", 1)[1]
    return default


if __name__ == "__main__":
    _threads = _blas_threads_from_argv()
    if _threads != "0":
        for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_var] = _threads

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from backend.config import Config, config_from_dict, load_config  # noqa: E402
from backend.interpreter import run  # noqa: E402
from backend.isa import DType, Instr, Queue, make, queue_mask  # noqa: E402
from backend.program import Program, Symbol  # noqa: E402

M, K, N = 128, 768, 768
MATMULS = 8


def big_sram(cfg: Config) -> Config:
    """The config with 4 MiB SRAM buffers (a 768×768 weight tile does not fit 196 KB)."""
    data = json.loads(cfg.canonical)
    data["name"] = f"{cfg.name}-4MiB"
    data["sram"] = dict.fromkeys(data["sram"], 4 << 20)
    return config_from_dict(data, f"{cfg.source} (4 MiB SRAM)")


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def small_stream(iters: int) -> Program:
    """LOAD → MATMUL 16×16×16 → VEC add 16×16 fp16, serialized with tokens, ``iters`` times."""
    instrs: list[Instr] = []
    L, Mx, V = Queue.LOAD, Queue.MATRIX, Queue.VECTOR
    for i in range(iters):
        first = i == 0
        instrs.append(
            make(
                "LOAD", dtype="int8", dst_buf="act", dst_off=0, dst_stride=16, src_addr=0,
                src_stride=16, rows=16, cols=16, wait=0 if first else queue_mask(V),
                signal=queue_mask(Mx),
            )
        )  # fmt: skip
        instrs.append(
            make(
                "MATMUL", mode="int8", a_buf="act", a_off=0, a_stride=16, b_buf="wgt", b_off=0,
                b_stride=16, c_buf="acc", c_off=0, c_stride=16, m=16, n=16, k=16,
                wait=queue_mask(L), signal=queue_mask(V),
            )
        )  # fmt: skip
        last = i == iters - 1
        instrs.append(
            make(
                "VEC", op="add", dtype="fp16", dst_buf="vec", dst_off=0, dst_stride=16,
                a_buf="vec", a_off=0, a_stride=16, b_buf="vec", b_off=512, b_stride=16,
                rows=16, cols=16, wait=queue_mask(Mx), signal=0 if last else queue_mask(L),
            )
        )  # fmt: skip
    instrs.append(make("FINISH"))
    return Program(instrs=instrs, data=bytes(range(256)), dram_size=4096)


def matmul_program(mode: str, reps: int) -> tuple[Program, dict[str, np.ndarray]]:
    """LOAD A and B, then ``reps`` MATMULs (M×K · K×N) into acc."""
    a_dt, b_dt = (DType.FP16, DType.FP16) if mode == "fp16" else (DType.INT8, DType.INT8)
    rng = np.random.default_rng(0)
    if mode == "fp16":
        a = rng.standard_normal((M, K)).astype(np.float16)
        b = rng.standard_normal((K, N)).astype(np.float16)
    else:
        a = rng.integers(-128, 128, (M, K)).astype(np.int8)
        b = rng.integers(-128, 128, (K, N)).astype(np.int8)
    sa = Symbol("a", 0, (M, K), a_dt, "input")
    sb = Symbol("b", sa.nbytes, (K, N), b_dt, "input")
    instrs = [
        make("LOAD", dtype=a_dt, dst_buf="act", dst_off=0, dst_stride=K, src_addr=sa.addr,
             src_stride=a_dt.nbytes(K), rows=M, cols=K),
        make("LOAD", dtype=b_dt, dst_buf="wgt", dst_off=0, dst_stride=N, src_addr=sb.addr,
             src_stride=b_dt.nbytes(N), rows=K, cols=N, signal=queue_mask(Queue.MATRIX)),
    ]  # fmt: skip
    for r in range(reps):
        instrs.append(
            make(
                "MATMUL", mode=mode, a_buf="act", a_off=0, a_stride=K, b_buf="wgt", b_off=0,
                b_stride=N, c_buf="acc", c_off=0, c_stride=N, m=M, n=N, k=K,
                wait=queue_mask(Queue.LOAD) if r == 0 else 0,
            )
        )  # fmt: skip
    instrs.append(make("FINISH"))
    prog = Program(instrs=instrs, dram_size=sa.nbytes + sb.nbytes, symbols={"a": sa, "b": sb})
    return prog, {"a": a, "b": b}


def bench_matmul(mode: str, cfg: Config, repeats: int) -> dict[str, float]:
    """The MATMUL program vs numpy doing the same work (see the module docstring)."""
    prog, inputs = matmul_program(mode, MATMULS)
    a, b = inputs["a"], inputs["b"]
    c_type = np.float32 if mode == "fp16" else np.int32
    af, bf = a.astype(np.float32), b.astype(np.float32)

    def numpy_same() -> None:
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        for _ in range(MATMULS):
            (a32 @ b32).astype(c_type)

    t = dict.fromkeys(("interp", "numpy", "blas"), float("inf"))
    for _ in range(repeats):  # interleaved, so machine load affects every side alike
        t["interp"] = min(t["interp"], best_of(lambda: run(prog, inputs, cfg), 1))
        t["numpy"] = min(t["numpy"], best_of(numpy_same, 1))
        t["blas"] = min(t["blas"], best_of(lambda: [af @ bf for _ in range(MATMULS)], 1))
    macs = M * N * K * MATMULS
    return {
        "interp_gmacs": macs / t["interp"] / 1e9,
        "numpy_gmacs": macs / t["numpy"] / 1e9,
        "blas_gmacs": macs / t["blas"] / 1e9,
        "ratio": t["numpy"] / t["interp"],
    }


def main() -> None:
    """Run and print the benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument(
        "--blas-threads",
        default="1",
        metavar="N",
        help="BLAS threads for both sides (default 1; 0 leaves the environment alone)",
    )
    args = ap.parse_args()
    repeats = 3 if args.quick else 10
    cfg = big_sram(load_config("spatten"))
    out: dict[str, object] = {}

    prog = small_stream(2000 if args.quick else 5000)
    n = len(prog.instrs)
    for name, kw in (("functional", {}), ("timing_only", {"timing_only": True})):
        # cold: a fresh Program object each run (decode + cost lookups included);
        # warm: the same object again (its cached per-instruction plan is reused)
        cold = best_of(lambda kw=kw: run(replace(prog), None, cfg, **kw), repeats)
        warm = best_of(lambda kw=kw: run(prog, None, cfg, **kw), repeats)
        out[f"small_{name}_cold_instr_per_s"] = n / cold
        out[f"small_{name}_warm_instr_per_s"] = n / warm
    for mode in ("int8", "fp16"):
        out[f"matmul_{mode}"] = bench_matmul(mode, cfg, repeats)
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return
    print(f"small instructions ({n} instrs: load / matmul 16x16x16 / vec add, token-serialized)")
    for name in ("functional", "timing_only"):
        print(
            f"  {name:<12} {out[f'small_{name}_cold_instr_per_s']:>10,.0f} instr/s cold   "
            f"{out[f'small_{name}_warm_instr_per_s']:>10,.0f} instr/s warm (cached plan)"
        )
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"MATMUL program: 2 LOADs + {MATMULS} x {M}x{K}x{N} (numpy: same work; best of "
        f"{repeats}; BLAS threads: {threads})"
    )
    for mode in ("int8", "fp16"):
        r = out[f"matmul_{mode}"]
        assert isinstance(r, dict)
        print(
            f"  {mode:<5} interpreter {r['interp_gmacs']:7.2f} GMAC/s   numpy "
            f"{r['numpy_gmacs']:7.2f} GMAC/s   ratio {r['ratio']:.2f}   (BLAS alone on "
            f"pre-converted operands {r['blas_gmacs']:.2f} GMAC/s)"
        )


if __name__ == "__main__":
    main()
