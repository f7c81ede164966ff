"""The cost model against its anchors: dataflows, the top-k engine, and the papers' headline figures.

    python benchmarks/bench_fidelity.py [--no-measure]

- dataflow table: MATMUL cycles of a few transformer GEMMs under each dataflow (SCALE-Sim's os, ws,
  is; ws and is with and without double-buffered stationary registers) on each bundled config, and
  the dataflow the lowering picks (static cost model, `backend.cost`);
- top-k table: cycles of one TOPK row by the current model (the exact expectation of SpAtten's
  randomized quick-select) against the previous ⌈log2(n/k)⌉ + 1 full passes, on the (n, k) pairs
  SpAtten's own latency model (`TopKLatencyModel.scala`) lists;
- throughput table (measured: one interpreter run of digits-vit per config): GOPS and GOPS/W with
  and without DRAM energy, against the config's peak.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from backend.config import Config, load_config  # noqa: E402
from backend.cost import best_dataflow, matmul_cycles, topk_cycles  # noqa: E402

CONFIGS = ("spatten", "fact", "edge")
# (name, M, N, K): DeiT-Tiny's attention and projections (197 tokens, dim 192, head dim 64) and
# digits-vit's (65 tokens, dim 64, head dim 16)
GEMMS = (
    ("DeiT-Tiny Q·Kᵀ (one head)", 197, 197, 64),
    ("DeiT-Tiny P·V (one head)", 197, 64, 197),
    ("DeiT-Tiny QKV projection", 197, 576, 192),
    ("digits-vit Q·Kᵀ (one head)", 65, 65, 16),
    ("digits-vit FFN fc1", 65, 128, 64),
)
# SpAtten's TopKLatencyModel.scala main(): (size, target) pairs, parallelism 16
TOPK_CASES = ((64, 32), (64, 16), (128, 64), (256, 32), (512, 64), (1024, 128), (1024, 16),
              (2048, 64), (4096, 16))  # fmt: skip


def _all_flows(cfg: Config, double_buffered: bool) -> Config:
    return replace(
        cfg,
        matrix=replace(cfg.matrix, dataflows=("os", "ws", "is"), double_buffered=double_buffered),
    )


def dataflow_table() -> list[str]:
    """Markdown rows: cycles per dataflow (db: double-buffered) and the lowering's pick."""
    lines = [
        "| GEMM (M×N×K, fp16) | config | os | ws | is | ws db | is db | picked (supported) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m, n, k in GEMMS:
        for cname in CONFIGS:
            cfg = load_config(cname)
            single, double = _all_flows(cfg, False), _all_flows(cfg, True)
            cells = [matmul_cycles(m, n, k, "fp16", single, flow=f) for f in ("os", "ws", "is")]
            cells += [matmul_cycles(m, n, k, "fp16", double, flow=f) for f in ("ws", "is")]
            pick = best_dataflow(m, n, k, "fp16", cfg)
            got = matmul_cycles(m, n, k, "fp16", cfg, flow=pick)
            lines.append(
                f"| {name} ({m}×{n}×{k}) | {cname} | "
                + " | ".join(f"{c:,}" for c in cells)
                + f" | {pick}: {got:,} ({', '.join(cfg.matrix.dataflows)}"
                + (", db" if cfg.matrix.double_buffered else "")
                + ") |"
            )
    return lines


def _old_topk(n: int, k: int, comparators: int) -> int:
    """The previous model: ⌈log2(n/k)⌉ + 1 passes, each over all n (⌈n/comparators⌉ + 3)."""
    passes = 1 if k >= n else math.ceil(math.log2(n / k)) + 1
    return passes * (-(-n // comparators) + 3)


def topk_table() -> list[str]:
    """Markdown rows: cycles of one TOPK row, previous model against the quick-select expectation."""
    cfg = load_config("spatten")
    lines = [
        "| n | k | previous model | quick-select expectation (now) | previous / now |",
        "|---|---|---|---|---|",
    ]
    for n, k in TOPK_CASES:
        old, new = _old_topk(n, k, cfg.select.comparators), topk_cycles(1, n, k, cfg)
        lines.append(f"| {n} | {k} | {old:,} | {new:,} | {old / new:.2f} |")
    return lines


def throughput_table() -> list[str]:
    """Markdown rows (measured): digits-vit dense, one interpreter run per config."""
    from backend.interpreter import run
    from compiler.api import compile_model

    lines = [
        "| config | peak GOPS (fp16) | cycles | achieved GOPS | GOPS/W | GOPS/W without DRAM |",
        "|---|---|---|---|---|---|",
    ]
    for cname in CONFIGS:
        prog = compile_model("digits-vit", pipeline="canonicalize,cse", target=cname)
        cfg = load_config(cname)
        assert prog.compiled is not None
        rep = run(prog.compiled.program, None, cfg, timing_only=True).report
        ops = 2 * sum(rep.macs_useful.values())
        seconds = rep.cycles / (cfg.clock_mhz * 1e6)
        energy = sum(rep.energy_pj.values()) * 1e-12
        core = energy - rep.energy_pj.get("dram", 0.0) * 1e-12
        peak = 2 * cfg.matrix.macs_per_cycle * cfg.matrix.fp16_rate * cfg.clock_mhz / 1e3
        lines.append(
            f"| {cname} | {peak:,.0f} | {rep.cycles:,} | {ops / seconds / 1e9:.1f} |"
            f" {ops / energy / 1e9:.0f} | {ops / core / 1e9:.0f} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--no-measure", action="store_true", help="skip the interpreter runs")
    args = ap.parse_args()
    print("\n".join(dataflow_table()))
    print()
    print("\n".join(topk_table()))
    if not args.no_measure:
        print()
        print("\n".join(throughput_table()))


if __name__ == "__main__":
    main()
