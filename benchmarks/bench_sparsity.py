"""sparsify-2-4 on digits-vit: test accuracy dense vs 2:4 vs 2:4 + refit, and the modeled matrix
cycles of the sparsified layers dense (MATMUL fp16) vs 2:4 (MATMUL sp24h), in one run.

    python benchmarks/bench_sparsity.py [--configs spatten,edge] [--shapes deit-small]

Accuracy: compiler.evaluate.evaluate on the bundled test split (360 images), reference executor;
the 2:4 + refit model is also run compiled on the interpreter (spatten) to show the 2:4 program
is exact. Cycles: each compiled program's MATMULs that belong to nn.linear / nn.patch_embed ops,
priced by the cost model (what the interpreter charges), plus one image's total cycles on the
interpreter. `--shapes MODEL` adds the same cycle comparison for a zoo model's layer shapes
(random weights: cycles only).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from backend.compile import compile_module  # noqa: E402
from backend.config import load_config  # noqa: E402
from backend.cost.model import cost  # noqa: E402
from backend.interpreter import run  # noqa: E402
from compiler.evaluate import evaluate  # noqa: E402
from compiler.loading import load_model  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from compiler.progress import QUIET  # noqa: E402

LAYER_OPS = ("nn.linear", "nn.patch_embed")


def layer_cycles(model: Model, config_name: str) -> tuple[int, int]:
    """(MATMUL cycles of linear/patch_embed ops, total cycles of one run) on a config."""
    config = load_config(config_name)
    c = compile_module(model.module, model.weights, config)
    mm = sum(
        cost(i, config).cycles
        for i in c.program.instrs
        if i.cls.name == "MATMUL" and any(op in (i.comment or "") for op in LAYER_OPS)
    )
    ((name, (shape, dtype)),) = model.input_specs().items()
    inputs = {name: np.zeros(shape, dtype)}
    report = run(c.program, inputs, config, timing_only=True).report
    return mm, report.cycles


def interpreter_accuracy(model: Model) -> float:
    config = load_config("spatten")
    program = compile_module(model.module, model.weights, config).program
    return evaluate(model, runner=lambda x: (run(program, dict(x), config).outputs, None)).accuracy


def cycles_table(models: dict[str, tuple[Model, Model]], configs: list[str]) -> list[str]:
    lines = [
        "| model | config | layer MATMUL cycles dense | 2:4 | ratio | run cycles dense | 2:4 | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, (dense, sparse) in models.items():
        for cfg in configs:
            (ld, rd), (ls, rs) = layer_cycles(dense, cfg), layer_cycles(sparse, cfg)
            lines.append(
                f"| {label} | {cfg} | {ld:,} | {ls:,} | {ls / ld:.2f} | {rd:,} | {rs:,} |"
                f" {rs / rd:.2f} |"
            )
    return lines


# Table columns that vary with the machine (scripts/refresh_docs.py masks them when checking docs).
VOLATILE = ("pass time s", "interpreter s")
SPECS = ("", "sparsify-2-4", "sparsify-2-4{refit=true}")


def digits_variants() -> dict[str, tuple[Model, float]]:
    """digits-vit dense, 2:4 and 2:4 + refit, with the pass wall time."""
    out: dict[str, tuple[Model, float]] = {}
    for spec in SPECS:
        model = load_model("digits-vit")
        start = time.perf_counter()
        if spec:
            run_pipeline(model, spec, quiet=True)
        out[spec] = (model, time.perf_counter() - start)
    return out


def accuracy_table(variants: dict[str, tuple[Model, float]]) -> list[str]:
    """Reference accuracy of each variant; the refit one also on the interpreter (spatten)."""
    lines = ["| model | test accuracy % | pass time s |", "|---|---|---|"]
    for spec, (model, secs) in variants.items():
        lines.append(f"| `{spec or 'dense'}` | {100 * evaluate(model).accuracy:.2f} | {secs:.1f} |")
    start = time.perf_counter()
    acc = interpreter_accuracy(variants["sparsify-2-4{refit=true}"][0])
    lines += [
        "",
        "| compiled (spatten, sp24h MATMULs) | interpreter accuracy % | interpreter s |",
        "|---|---|---|",
        f"| `sparsify-2-4{{refit=true}}` | {100 * acc:.2f} | {time.perf_counter() - start:.0f} |",
    ]
    return lines


def digits_pairs() -> dict[str, tuple[Model, Model]]:
    dense, sparse = load_model("digits-vit"), load_model("digits-vit")
    run_pipeline(sparse, "sparsify-2-4", quiet=True)
    return {"digits-vit": (dense, sparse)}


def shape_pairs(names: list[str]) -> dict[str, tuple[Model, Model]]:
    pairs: dict[str, tuple[Model, Model]] = {}
    for name in names:
        dense, sparse = load_model(name), load_model(name)
        run_pipeline(sparse, "sparsify-2-4", quiet=True)
        pairs[name] = (dense, sparse)
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--configs", default="spatten,edge")
    ap.add_argument("--shapes", default="", help="zoo models for a cycles-only comparison")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    args = ap.parse_args()
    QUIET.set(args.quiet)
    configs = [c for c in args.configs.split(",") if c]
    variants = digits_variants()
    print("\n".join(accuracy_table(variants)) + "\n")
    pairs = {"digits-vit": (variants[""][0], variants["sparsify-2-4"][0])}
    pairs |= shape_pairs([s for s in args.shapes.split(",") if s])
    print("\n".join(cycles_table(pairs, configs)))


if __name__ == "__main__":
    main()
