"""wisp compile: run a pass pipeline on a model and write the results to OUTDIR."""

from __future__ import annotations

import argparse
import json

HELP = "compile MODEL through a pass pipeline into OUTDIR"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from compiler.cli.model_args import add_model_arguments

    add_model_arguments(p)
    p.add_argument("-p", "--passes", default="", metavar="PIPELINE", help="xdsl-opt pipeline, e.g. 'canonicalize,cse'")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output directory (replaced atomically)")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass")
    p.add_argument("--time-passes", action="store_true", help="print per-pass wall time")


def run(args: argparse.Namespace) -> int:
    from compiler.cli.model_args import model_from_args
    from compiler.io_util import staged_directory
    from compiler.loading import MANIFEST
    from compiler.pipeline import parse_pipeline, run_pipeline, timing_table

    passes = parse_pipeline(args.passes)  # reject a bad pipeline before any work
    model = model_from_args(args)
    with staged_directory(args.output) as stage:
        records = run_pipeline(
            model, passes, print_ir_after_all=args.print_ir_after_all, dump_dir=stage / "ir"
        )
        model.save(stage, "model")
        manifest = {
            "model": model.name,
            "pipeline": args.passes,
            "passes": [{"name": r.name, "seconds": round(r.seconds, 6)} for r in records],
            "params": model.weights.num_params,
            "meta": model.meta,
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if args.time_passes:
        print(timing_table(records))
    print(f"wrote {args.output}: model.mlir, model.weights.npz, ir/ ({len(records)} passes)")
    return 0
