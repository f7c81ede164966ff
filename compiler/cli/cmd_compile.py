"""wisp compile: run a pass pipeline on a model, compile it for a target, write OUTDIR."""

from __future__ import annotations

import argparse

HELP = "compile MODEL through a pass pipeline (and for a target NPU config) into OUTDIR"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from compiler.cli.model_args import add_model_arguments

    add_model_arguments(p)
    p.add_argument(
        "-p",
        "--passes",
        default="",
        metavar="PIPELINE",
        help="xdsl-opt pipeline, e.g. 'canonicalize,cse'",
    )
    p.add_argument(
        "--target",
        default="spatten",
        metavar="CONFIG",
        help="NPU config: spatten (default), fact, edge or a .toml file; 'none' writes the nn IR only",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTDIR",
        help="output directory (written atomically; an existing one is replaced only if it is "
        "empty or an earlier wisp output)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace OUTDIR even if it is a file or a directory wisp did not write",
    )
    p.add_argument(
        "--emit",
        default=None,
        metavar="LIST",
        help="artifacts to write, comma-separated: model (model.mlir + float32 weights), binary "
        "(program.npubin, holding the DRAM image), asm (program.s, reading the image from the "
        "binary), data (program.data, the image alone), report (report.json), ir (ir/ dumps), "
        "default (model,binary,asm,report,ir), all",
    )
    p.add_argument(
        "--save-weights",
        choices=("fp32", "program"),
        default="fp32",
        help="precision of model.weights.npz: fp32 (as the passes left them; default) or program "
        "(each weight the program holds only in fp16 saved as float16: half the bytes, and the "
        "reference then runs on the values the NPU uses)",
    )
    p.add_argument(
        "--print-ir-after-all", action="store_true", help="print the IR after every pass"
    )
    p.add_argument("--time-passes", action="store_true", help="print per-pass wall time")


def run(args: argparse.Namespace) -> int:
    from backend.wording import plural
    from compiler.api import compile_model, parse_emit
    from compiler.cli.model_args import model_from_args
    from compiler.errors import WispError
    from compiler.output_guard import check_replaceable
    from compiler.pipeline import parse_pipeline, timing_table

    parse_pipeline(args.passes)  # reject a bad pipeline before any work
    kinds = parse_emit(args.emit)
    target = None if args.target == "none" else args.target
    model = model_from_args(args)
    check_replaceable(args.output, args.force)  # refuse an output that would destroy user data
    compiled = compile_model(model, args.passes, target, print_ir_after_all=args.print_ir_after_all)
    if args.save_weights == "program" and target is None:
        raise WispError("--save-weights program: no program is compiled with --target none")
    compiled.save(args.output, force=args.force, emit=kinds, weights=args.save_weights)
    for line in compiled.measured_lines:  # mixed-precision: predicted vs measured cost
        print(line)
    if args.time_passes:
        print(timing_table(compiled.passes))
    files = {
        "asm": "program.s",
        "binary": "program.npubin",
        "data": "program.data",
        "report": "report.json",
    }
    what = [f for k, f in files.items() if k in kinds] if compiled.compiled is not None else []
    if "asm" in kinds and "binary" not in kinds and "data" not in kinds:
        what.append("program.data")
    if "model" in kinds:
        what += ["model.mlir", "model.weights.npz"]
    if "ir" in kinds:
        what.append(f"ir/ ({plural(len(compiled.passes), 'pass')})")
    print(f"wrote {args.output}: {', '.join(what + ['compile.json'])}")
    return 0
