"""structured-prune on digits-vit: test accuracy vs MACs vs modeled cycles (spatten), no fine-tuning.

    python benchmarks/bench_pruning.py [--ratios 0.1,0.2,0.3,0.4,0.5] [--criteria l1,l2,activation,fisher]

Rows: target=macs for each ratio × criterion, without and with refit; then target=latency (with refit);
with --unaligned, fisher + refit at align=1 for both targets.
Accuracy: compiler.evaluate.evaluate (reference executor, 360 test images). Cycles: `est` is
passes/latency.py's estimate; `npu` is the compiled program on the interpreter (timing_only, one
image), or "-" when the backend cannot compile the pruned model.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from backend.config import load_config  # noqa: E402
from compiler.api import compile_model  # noqa: E402
from compiler.evaluate import evaluate  # noqa: E402
from compiler.loading import load_model  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from compiler.progress import QUIET  # noqa: E402
from passes.latency import module_cycles  # noqa: E402
from passes.metrics import measure  # noqa: E402


def npu_cycles(model) -> str:  # noqa: ANN001
    try:
        prog = compile_model(model, target="spatten")
        (name,) = model.input_specs()
        shape, dtype = model.input_specs()[name]
        return f"{prog.run({name: np.zeros(shape, dtype)}, timing_only=True).report.cycles:,.0f}"
    except Exception as e:  # report, don't hide: the table shows '-' and the reason goes to stderr
        import sys

        print(f"  (npu compile failed: {type(e).__name__}: {e})", file=sys.stderr)
        return "-"


def row(spec: str, base_macs: int, base_cycles: int, config) -> str:  # noqa: ANN001
    model = load_model("digits-vit")
    start = time.perf_counter()
    if spec:
        run_pipeline(model, spec, quiet=True)
    secs = time.perf_counter() - start
    acc = evaluate(model).accuracy
    macs = measure(model.module).macs
    cycles = module_cycles(model.module, config)
    return (
        f"| `{spec or 'dense'}` | {100 * acc:.2f} | {100 * (1 - macs / base_macs):.1f} |"
        f" {cycles:,} ({100 * (1 - cycles / base_cycles):.1f}) | {npu_cycles(model)} | {secs:.1f} |"
    )


# Table columns that vary with the machine (scripts/refresh_docs.py masks them when checking docs).
VOLATILE = ("pass s",)


def table(
    ratios: list[float],
    criteria: str = "l1,l2,activation,fisher",
    latency_criteria: str = "activation,fisher",
    unaligned: bool = False,
) -> Iterator[str]:
    """The markdown table, line by line (rows as they are measured)."""
    config = load_config("spatten")
    dense = load_model("digits-vit")
    base_macs, base_cycles = measure(dense.module).macs, module_cycles(dense.module, config)
    yield "| pipeline | acc % | MACs −% | est. cycles (−%) | npu cycles | pass s |"
    yield "|---|---|---|---|---|---|"
    yield row("", base_macs, base_cycles, config)
    for refit in ("false", "true"):
        for crit in criteria.split(","):
            for r in ratios:
                spec = f"structured-prune{{target=macs ratio={r} criterion={crit} refit={refit} hw=spatten}}"
                yield row(spec, base_macs, base_cycles, config)
    for crit in latency_criteria.split(","):
        for r in ratios:
            spec = f"structured-prune{{target=latency ratio={r} criterion={crit} refit=true hw=spatten}}"
            yield row(spec, base_macs, base_cycles, config)
    if unaligned:  # without alignment, MAC-driven pruning leaves widths the array pads
        for target in ("macs", "latency"):
            for r in ratios:
                spec = (
                    f"structured-prune{{target={target} ratio={r} criterion=fisher refit=true"
                    " hw=spatten align=1}"
                )
                yield row(spec, base_macs, base_cycles, config)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.4,0.5")
    ap.add_argument("--criteria", default="l1,l2,activation,fisher")
    ap.add_argument("--latency-criteria", default="activation,fisher")
    ap.add_argument("--unaligned", action="store_true", help="also macs vs latency at align=1")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    args = ap.parse_args()
    QUIET.set(args.quiet)
    ratios = [float(r) for r in args.ratios.split(",")]
    for line in table(ratios, args.criteria, args.latency_criteria, args.unaligned):
        print(line, flush=True)


if __name__ == "__main__":
    main()
