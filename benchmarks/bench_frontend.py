"""Front-end speed: build, verify, print and parse times for deit-small, bert-base and gpt2 at 6, 12 and
24 layers, plus WeightStore save/load. Prints figures and ratios measured in this one run.

Targets (issue 2, 2-core machine): deit-small build+verify+print+parse <= 2 s; 24 layers <= 2.2x the time
of 12; saving and loading a 22M-parameter WeightStore <= 0.5 s.

    python benchmarks/bench_frontend.py [--repeat N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from compiler.ir import parse_module, print_module, verify
from compiler.models import build
from compiler.weights import WeightStore

T = TypeVar("T")


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Minimum wall time over `repeat` runs (the least noisy estimate on a shared machine)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    print(
        f"{'model':<11}{'layers':>7}{'ops':>7}{'build':>9}{'verify':>9}{'print':>9}{'parse':>9}{'total':>9}"
    )
    totals: dict[tuple[str, int], float] = {}
    for name in ("deit-small", "bert-base", "gpt2"):
        for layers in (6, 12, 24):
            t_build, model = best_of(args.repeat, lambda n=name, k=layers: build(n, layers=k))
            module = model.module
            n_ops = sum(1 for _ in module.walk())
            t_verify, _ = best_of(args.repeat, lambda m=module: verify(m))
            t_print, text = best_of(args.repeat, lambda m=module: print_module(m))
            t_parse, _ = best_of(args.repeat, lambda t=text: parse_module(t, "bench.mlir"))
            total = t_build + t_verify + t_print + t_parse
            totals[(name, layers)] = total
            print(
                f"{name:<11}{layers:>7}{n_ops:>7}{t_build:>9.3f}{t_verify:>9.3f}{t_print:>9.3f}"
                f"{t_parse:>9.3f}{total:>9.3f}"
            )
    print()
    print("scaling (time of 24 layers / time of 12; target <= 2.2):")
    for name in ("deit-small", "bert-base", "gpt2"):
        print(f"  {name:<11} {totals[(name, 24)] / totals[(name, 12)]:.2f}")
    print(
        f"deit-small (12 layers) build+verify+print+parse: {totals[('deit-small', 12)]:.3f} s (target <= 2 s)"
    )

    weights = build("deit-small").weights
    print()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.npz"
        t_save, _ = best_of(args.repeat, lambda: weights.save(path))
        t_load, loaded = best_of(args.repeat, lambda: WeightStore.load(path))
        assert loaded.num_params == weights.num_params
        print(
            f"WeightStore of {weights.num_params / 1e6:.1f}M params ({weights.nbytes / 2**20:.0f} MiB): "
            f"save {t_save:.3f} s, load {t_load:.3f} s, save+load {t_save + t_load:.3f} s (target <= 0.5 s)"
        )


if __name__ == "__main__":
    main()
