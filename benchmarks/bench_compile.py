"""Compiler benchmarks, measured in one run (figures are printed even when they miss a target).

    python benchmarks/bench_compile.py            # everything (~2 min)
    python benchmarks/bench_compile.py --quick    # skip the 24-layer scaling point

1. compile time zoo → .npubin for deit-small and bert-base (seq 128); target ≤ 10 s each;
2. scaling with depth (deit-small with 6/12/24 layers): time per layer should stay flat;
3. schedule quality on spatten and fact, from the interpreter in timing-only mode:
   efficiency = lower bound / modeled cycles (target ≥ 0.85), DRAM traffic / compulsory traffic
   (target ≤ 1.15; compulsory = every distinct data-section byte the program reads once, plus
   inputs and outputs) and overlap = Σ queue busy / cycles;
4. interpreter vs reference executor wall time on full deit-tiny (target ≤ 1.5×);
5. footprint of ``wisp compile`` (default --emit) for gpt2 --layers 2 and bert-base --seq 128:
   bytes per artifact, against the target fp32 weights + 1.1 × fp16 weight bytes, and the peak
   RSS of the compiling process against 3 × the fp32 weight bytes (``--footprint``: this only).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Small per-instruction matmuls thrash a multi-threaded BLAS on a loaded machine (30x slower
# here); both executors are measured with the same setting. Override: WISP_BLAS_THREADS=N.
os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ.get("WISP_BLAS_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("WISP_BLAS_THREADS", "1"))

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.compile import Compiled, compile_module  # noqa: E402
from backend.interpreter import run  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.models.zoo import build  # noqa: E402


def _inputs(m, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for k, (shape, dt) in m.input_specs().items():
        out[k] = (
            rng.integers(0, 1000, shape).astype(np.int32)
            if dt.kind == "i"
            else rng.standard_normal(shape).astype(np.float32)
        )
    return out


def compulsory_bytes(c: Compiled) -> int:
    """Distinct data-section bytes read (gathers: rows fetched) + inputs + outputs."""
    p = c.program
    end = p.symbols["scratch"].addr if "scratch" in p.symbols else len(p.data)
    spans: list[tuple[int, int]] = []
    gathered = 0
    for i in p.instrs:
        a = i.args
        if i.cls.name == "LOAD" and int(a["src_addr"]) < end:
            width = int(a["cols"]) * (
                2 if int(a["dtype"]) == 0 else 4 if int(a["dtype"]) in (1, 4) else 1
            )
            base, stride = int(a["src_addr"]), int(a["src_stride"])
            if stride == width:
                spans.append((base, base + width * int(a["rows"])))
            else:
                spans.extend(
                    (base + r * stride, base + r * stride + width) for r in range(int(a["rows"]))
                )
        elif i.cls.name == "GATHER":
            gathered += int(a["rows"]) * int(a["cols"]) * 2
    spans.sort()
    total, cur_lo, cur_hi = 0, -1, -1
    for lo, hi in spans:
        if lo > cur_hi:
            total += max(0, cur_hi - cur_lo)
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    total += max(0, cur_hi - cur_lo)
    io = sum(s.nbytes for s in p.symbols.values() if s.kind in ("input", "output"))
    return total + gathered + io


def bench_compile_time() -> None:
    print("== compile time: zoo model → .npubin (target ≤ 10 s each)")
    for name in ("deit-small", "bert-base"):
        t0 = time.perf_counter()
        m = build(name)
        t1 = time.perf_counter()
        c = compile_module(m.module, m.weights, "spatten")
        blob = c.npubin()
        t2 = time.perf_counter()
        print(
            f"  {name:<11} build {t1 - t0:5.2f} s   compile+emit {t2 - t1:5.2f} s "
            f"(lower {c.timings['lower']:.2f}, schedule {c.timings['schedule']:.2f})   "
            f"{len(c.program.instrs):,} instrs, {len(blob) / 1e6:.1f} MB .npubin"
        )


def bench_scaling(quick: bool) -> None:
    print("== scaling with depth (deit-small, spatten): compile time per layer should be flat")
    for layers in (6, 12) if quick else (6, 12, 24):
        m = build("deit-small", layers=layers)
        t0 = time.perf_counter()
        c = compile_module(m.module, m.weights, "spatten")
        c.npubin()
        dt = time.perf_counter() - t0
        print(
            f"  {layers:>2} layers: {dt:5.2f} s  ({dt / layers * 1000:6.1f} ms/layer, "
            f"{len(c.program.instrs):,} instrs)"
        )


def bench_quality() -> None:
    print(
        "== schedule quality (interpreter, timing only): efficiency target ≥ 0.85, traffic ≤ 1.15"
    )
    for name in ("deit-small", "bert-base"):
        m = build(name)
        for cfg in ("spatten", "fact"):
            c = compile_module(m.module, m.weights, cfg)
            r = run(c.program, None, cfg, timing_only=True).report
            busy = sum(q.busy for q in r.queues.values())
            mx_busy = r.queues["matrix"].busy
            traffic = r.dram_read + r.dram_write
            comp = compulsory_bytes(c)
            bound_by = max(("matrix", "dram", "vector"), key=lambda k: r.bound[k])
            print(
                f"  {name:<11}{cfg:<8} cycles {r.cycles:>11,}  bound {r.bound['lower_bound']:>12,.0f} "
                f"({bound_by})  efficiency {r.efficiency:.3f}  DRAM {traffic / 1e6:7.1f} MB / "
                f"compulsory {comp / 1e6:6.1f} MB = {traffic / comp:.2f}  overlap {busy / r.cycles:.2f}  "
                f"matrix busy {mx_busy / r.cycles:.2f}, MATMUL fold efficiency {r.bound['matrix'] / max(mx_busy, 1):.2f}  "
                f"(static estimate {c.static_report['cycles']:,})"
            )


def bench_interp_vs_reference() -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    print(
        f"== interpreter vs reference executor wall time, full deit-tiny (target ≤ 1.5×; BLAS threads {threads})"
    )
    m = build("deit-tiny")
    x = _inputs(m)
    c = compile_module(m.module, m.weights, "spatten")
    reference.run(m, x)
    run(c.program, x, "spatten")
    t0 = time.perf_counter()
    ref = reference.run(m, x)
    t1 = time.perf_counter()
    res = run(c.program, x, "spatten")
    t2 = time.perf_counter()
    err = float(np.abs(res.outputs["out0"].astype(np.float32) - ref["out0"]).max())
    print(
        f"  reference {t1 - t0:.3f} s   interpreter {t2 - t1:.3f} s   ratio {(t2 - t1) / (t1 - t0):.2f}×"
        f"   ({len(c.program.instrs):,} instrs; max abs err vs reference {err:.2e})"
    )


_FOOTPRINT_CHILD = """
import resource, sys, json
from compiler.api import compile_model
name, out = sys.argv[1], sys.argv[2]
opts = json.loads(sys.argv[3])
cm = compile_model(name, "", "spatten", **opts)
cm.save(out)
print(json.dumps({"params": cm.model.weights.num_params,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


FOOTPRINT_VOLATILE = ("peak RSS MB", "RSS x fp32 weights")


def footprint_table() -> list[str]:
    """Markdown tables of `wisp compile`'s output bytes per artifact (default --emit) for gpt2
    --layers 2 and bert-base --seq 128, against the size target, and the compiling process's peak
    RSS (volatile: it depends on the allocator and the machine)."""
    import json
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    per: dict[str, dict[str, int]] = {}
    rows: list[str] = []
    models = (("gpt2", {"layers": 2}), ("bert-base", {"seq": 128}))
    for name, opts in models:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "out"
            env = dict(os.environ, PYTHONPATH=str(root))
            proc = subprocess.run(
                [sys.executable, "-c", _FOOTPRINT_CHILD, name, str(out), json.dumps(opts)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            sizes: dict[str, int] = {}
            for f in sorted(out.rglob("*")):
                if f.is_file():
                    key = "ir/" if f.parent.name == "ir" else f.name
                    sizes[key] = sizes.get(key, 0) + f.stat().st_size
        label = f"{name} " + " ".join(f"--{k} {v}" for k, v in opts.items())
        per[label] = sizes
        total = sum(sizes.values())
        fp32, fp16 = 4 * info["params"], 2 * info["params"]
        target = fp32 + 1.1 * fp16
        rss = info["rss_kb"] * 1024
        rows.append(
            f"| {label} | {info['params']:,} | {total / 1e6:.1f} | {target / 1e6:.1f} |"
            f" {total / target:.2f} | {rss / 1e6:.0f} | {rss / fp32:.2f} |"
        )
    labels = list(per)
    keys = sorted(
        {k for v in per.values() for k in v}, key=lambda k: -max(v.get(k, 0) for v in per.values())
    )
    lines = [
        "| artifact | " + " | ".join(f"{lb} MB" for lb in labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for k in keys:
        cells = [f"{per[lb][k] / 1e6:.1f}" if k in per[lb] else "-" for lb in labels]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| model | parameters | output MB | target MB (fp32 + 1.1 x fp16 weights) | output / target"
        " | peak RSS MB | RSS x fp32 weights |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    return lines


def bench_footprint() -> None:
    print("== footprint of `wisp compile` (default --emit; measured in a fresh process)")
    for line in footprint_table():
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description="wisp compiler benchmarks")
    ap.add_argument("--quick", action="store_true", help="skip the 24-layer scaling point")
    ap.add_argument("--footprint", action="store_true", help="only the footprint section")
    args = ap.parse_args()
    if args.footprint:
        bench_footprint()
        return
    bench_compile_time()
    bench_scaling(args.quick)
    bench_quality()
    bench_interp_vs_reference()
    bench_footprint()


if __name__ == "__main__":
    main()
