"""wisp eval: accuracy on the model's bundled evaluation set, next to the modeled cost."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "evaluate MODEL (or a compiled OUTDIR, on the interpreter) on its bundled evaluation set, "
    "or run it once on --input x.npz (outputs and modeled cost)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from compiler.cli.model_args import add_model_arguments

    add_model_arguments(p)
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="evaluate only the first N samples"
    )
    p.add_argument(
        "--input",
        metavar="X.npz",
        help="named inputs (batch dim optional) for a model without a bundled dataset, e.g. an "
        "imported ONNX model: run once, print the outputs and the modeled cost",
    )
    p.add_argument(
        "--target",
        default="spatten",
        metavar="CONFIG",
        help="NPU config for the modeled cost with --input when MODEL is not compiled (default spatten)",
    )


def run(args: argparse.Namespace) -> int:
    from compiler.cli.model_args import model_from_args
    from compiler.errors import WispError
    from compiler.evaluate import evaluate

    if args.limit is not None and args.limit <= 0:
        raise WispError(f"--limit must be positive, got {args.limit}")
    if args.input is not None:
        from compiler.cli.eval_inputs import run_on_inputs

        return run_on_inputs(args)
    if Path(args.model).is_dir() and (Path(args.model) / "program.npubin").exists():
        return _eval_compiled(args)
    model = model_from_args(args)
    if model.meta.get("dataset") == "char-python":  # a language model (compiler/generation)
        from compiler.generation.lm_eval import print_lm_eval

        print_lm_eval(model, args.limit)
        return 0
    result = evaluate(model, limit=args.limit)
    print(
        f"{model.name}: accuracy {100 * result.accuracy:.2f}% "
        f"({result.correct}/{result.total} on {result.dataset}, reference executor)"
    )
    return 0


def _eval_compiled(args: argparse.Namespace) -> int:
    from compiler.api import load_compiled
    from compiler.cli.eval_tokens import pruning_lines
    from compiler.evaluate import compare
    from compiler.precision import precision_summary

    compiled = load_compiled(args.model)
    model = compiled.model
    if model.meta.get("dataset") == "char-python":  # a language model (compiler/generation)
        from compiler.generation.lm_eval import print_lm_eval

        print_lm_eval(model, args.limit, compiled)
        return 0

    npu, ref, agree = compare(model, compiled.run, limit=args.limit)
    print(f"{model.name} on {compiled.target} ({npu.total} {npu.dataset} samples)")
    print(f"  accuracy, NPU interpreter : {100 * npu.accuracy:6.2f}%  ({npu.correct}/{npu.total})")
    print(f"  accuracy, reference (nn)  : {100 * ref.accuracy:6.2f}%  ({ref.correct}/{ref.total})")
    print(f"  predictions agreeing      : {agree}/{npu.total}")
    print(
        f"  per inference: {npu.cycles:,.0f} cycles ({npu.time_us:,.2f} us), "
        f"DRAM {npu.dram_bytes:,.0f} B, energy {npu.energy_uj:,.2f} uJ (measured: interpreter)"
    )
    for line in precision_summary(model.module):
        print(f"  {line}")
    for line in pruning_lines(args.model):
        print(line)
    return 0
