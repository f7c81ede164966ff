"""wisp report: one self-contained HTML page (and PNGs) about a compiled program."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "write an HTML report of a compiled OUTDIR: per-layer cycles/DRAM/energy by precision, queue "
    "utilisation over time, the roofline, the pass reports (static estimate and one interpreter run)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("outdir", metavar="OUTDIR", help="a directory written by wisp compile -o")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the HTML file (default OUTDIR/report.html); its PNGs go beside it as STEM-*.png",
    )
    p.add_argument(
        "--input",
        metavar="X.npz",
        help="input arrays by symbol name for the interpreter run (default: the model's first "
        "evaluation sample, else the program image's input contents)",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="which evaluation sample to run on (default 0)",
    )
    p.add_argument(
        "--static",
        action="store_true",
        help="no interpreter run: static estimates (cost model) only",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace output files that wisp report did not write",
    )


def run(args: argparse.Namespace) -> int:
    from compiler.errors import WispError
    from compiler.report.plots import matplotlib_available

    if not matplotlib_available():
        raise WispError("wisp report needs matplotlib: pip install 'wisp[search]'")
    if args.static and (args.input or args.sample):
        raise WispError("--static runs nothing: --input/--sample do not apply")
    from compiler.report.build import build
    from compiler.report.load import load_outdir
    from compiler.report.measure import measure
    from compiler.report.write import KINDS, STATIC_KINDS, check_writable, png_path, write_report

    out = load_outdir(args.outdir)
    html_path = Path(args.output) if args.output else out.path / "report.html"
    kinds = STATIC_KINDS if args.static else KINDS
    check_writable([png_path(html_path, k) for k in kinds] + [html_path], args.force)  # before work
    measured = None if args.static else measure(out, args.input, args.sample)
    report = build(out, measured)
    import sys

    for w in report.warnings:
        print(f"wisp report: warning: {out.path}/{w}", file=sys.stderr)
    written = write_report(html_path, report.html, report.pngs, args.force)
    what = "static estimate only" if measured is None else f"measured on {measured.input_label}"
    print(f"wrote {written[-1]} ({what}) and {len(written) - 1} PNGs beside it")
    return 0
