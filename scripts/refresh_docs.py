"""Regenerate the measured figures in README.md and docs/*.md from the benchmarks' functions.

    python scripts/refresh_docs.py                 # every region (the slow ones take minutes each)
    python scripts/refresh_docs.py --fast          # only the fast regions
    python scripts/refresh_docs.py NAME ...        # these regions
    python scripts/refresh_docs.py --check [NAME]  # compare, write nothing; exit 1 if stale
    python scripts/refresh_docs.py --list

Each figure table sits in a marked region of a markdown file::

    <!-- BEGIN generated:NAME -->
    ...
    <!-- END generated:NAME -->

and is replaced by what the region's producer prints now. Figures that depend on the machine
(wall times) are in the columns a producer declares volatile, and the region says on which machine and
date they were taken; `--check` (and tests/test_docs_figures.py) compares everything else: cycles,
bytes, energy and accuracies are deterministic.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@dataclass(frozen=True)
class Generated:
    """A region's new body, and the table columns whose cells vary by machine."""

    text: str
    volatile: tuple[str, ...] = ()


@dataclass(frozen=True)
class Region:
    file: str
    produce: Callable[[], Generated]
    fast: bool


def machine() -> str:
    """CPU model, cores and date, for labelling timings."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    today = datetime.date.today().isoformat()
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, {today}"


def timings_line(columns: Iterable[str]) -> str:
    cols = ", ".join(f"`{c}`" for c in columns)
    return f"Timings ({cols}): measured on {machine()}; they vary with the machine and its load."


def _cli(*args: str) -> str:
    """stdout of one `wisp` command run in this process (exit status checked)."""
    from compiler.cli.wisp import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--quiet", *args])
    if code != 0:
        raise SystemExit(f"wisp {' '.join(args)}: exit {code}")
    return out.getvalue()


# ---- producers -----------------------------------------------------------------------------------


def readme_eval() -> Generated:
    """The Quick start's main job: compile digits-vit for spatten, evaluate on the interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "digits-vit")
        _cli("compile", "digits-vit", "-p", "canonicalize,cse", "--target", "spatten", "-o", out)
        text = _cli("eval", out)
    return Generated("```\n" + text.rstrip("\n") + "\n```")


# The README tour's compression commands: (pipeline, target).
TOUR = (
    ("", "spatten"),
    ("structured-prune{target=macs ratio=0.3 criterion=fisher refit=true hw=spatten}", "spatten"),
    ("sparsify-2-4{refit=true}", "spatten"),
    ("quantize{weights=int8 acts=int8}", "spatten"),
    ("quantize{weights=int8 attn=int8 stream=int8}", "spatten"),
    ("quantize{weights=int4 granularity=group:32 method=gptq}", "spatten"),
    ("mixed-precision{budget=0.7 metric=cycles hw=edge}", "edge"),
    ("progressive-quant{threshold=0.1}", "spatten"),
    ("token-prune{method=topk keep=0.4 schedule=step start=1}", "spatten"),
    ("token-prune{method=tps keep=0.7}", "spatten"),
    ("token-prune{method=spatten keep=0.5}", "spatten"),
    ("head-prune{keep=3}", "spatten"),
    ("eager-predict{topk=32}", "spatten"),
    ("eager-predict{topk=32},quantize{weights=int8},mixed-ffn{int8=0.25}", "fact"),
)


def readme_tour() -> Generated:
    """`wisp compile digits-vit -p PIPELINE --target T` then `wisp eval`, for each tour command."""
    from compiler.api import compile_model
    from compiler.evaluate import compare

    lines = [
        "| `-p` | target | accuracy % (interpreter) | accuracy % (reference) | agree"
        " | cycles | DRAM B | energy uJ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec, target in TOUR:
        prog = compile_model("digits-vit", pipeline=spec, target=target)
        npu, ref, agree = compare(prog.model, prog.run)
        lines.append(
            f"| `{spec or '(none)'}` | {target} | {100 * npu.accuracy:.2f} |"
            f" {100 * ref.accuracy:.2f} | {agree}/{npu.total} | {npu.cycles:,.0f} |"
            f" {npu.dram_bytes:,.0f} | {npu.energy_uj:.2f} |"
        )
    return Generated("\n".join(lines))


# The status table: each compression pass (with the options shown) on small zoo models, for each target.
STATUS_PASSES = (
    "structured-prune{ratio=0.3}",
    "sparsify-2-4",
    "quantize",
    "quantize{attn=int8 stream=int8}",
    "quantize{weights=int4 granularity=group:32 method=gptq}",
    "mixed-precision{budget=0.7 hw=edge}",
    "progressive-quant",
    "token-prune{method=topk keep=0.5}",
    "token-prune{method=spatten keep=0.5}",
    "head-prune{keep=1}",
    "eager-predict{topk=8}",
    "eager-predict{topk=8},quantize,mixed-ffn{int8=0.25}",
    "kv-prune{keep=16}",
)
STATUS_MODELS = {
    "digits-vit": {},
    "deit-tiny": {"layers": 2, "dim": 128, "image": 64, "patch": 16},
    "bert-tiny": {"layers": 2, "seq": 32},
    "gpt2": {"layers": 2, "dim": 128, "seq": 32, "vocab": 256},
}
STATUS_TARGETS = ("spatten", "fact", "edge")


def readme_status() -> Generated:
    """For each pass and model: the targets it compiles for and runs on the interpreter (one inference
    with seeded random inputs), or the error that stops it."""
    import numpy as np

    from compiler.api import compile_model
    from compiler.errors import WispError

    def one(spec: str, name: str, target: str) -> str:
        try:
            prog = compile_model(name, pipeline=spec, target=target, **STATUS_MODELS[name])
            rng = np.random.default_rng(0)
            x = {}
            for k, (shape, dtype) in prog.model.input_specs().items():
                if np.dtype(dtype).kind in "iu":
                    x[k] = rng.integers(0, 2, shape).astype(dtype)
                else:
                    x[k] = rng.standard_normal(shape).astype(dtype)
            prog.run(x)
            return ""
        except (WispError, Exception) as e:  # noqa: BLE001 - the table reports the reason
            return str(e).splitlines()[0]

    head = "| pass | " + " | ".join(STATUS_MODELS) + " |"
    lines = [head, "|---|" + "---|" * len(STATUS_MODELS)]
    notes: dict[str, int] = {}
    for spec in STATUS_PASSES:
        cells = []
        for name in STATUS_MODELS:
            errors = {t: one(spec, name, t) for t in STATUS_TARGETS}
            ok = [t for t, e in errors.items() if not e]
            bad = sorted({e for e in errors.values() if e})
            cell = " ".join(ok) if ok else ""
            for e in bad:
                n = notes.setdefault(e, len(notes) + 1)
                cell += f" ✗[{n}]"
            cells.append(cell.strip())
        lines.append(f"| `{spec}` | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines += [f"[{n}] {e}" + "  " for e, n in notes.items()]
    return Generated("\n".join(lines))


def pruning_table() -> Generated:
    import bench_pruning

    lines = list(bench_pruning.table([0.1, 0.2, 0.3, 0.4, 0.5], unaligned=True))
    return Generated(
        "\n".join([timings_line(bench_pruning.VOLATILE), "", *lines]), bench_pruning.VOLATILE
    )


def sparsity_accuracy() -> Generated:
    import bench_sparsity

    lines = bench_sparsity.accuracy_table(bench_sparsity.digits_variants())
    return Generated(
        "\n".join([timings_line(bench_sparsity.VOLATILE), "", *lines]), bench_sparsity.VOLATILE
    )


def sparsity_cycles_digits() -> Generated:
    import bench_sparsity

    return Generated(
        "\n".join(bench_sparsity.cycles_table(bench_sparsity.digits_pairs(), ["spatten", "edge"]))
    )


def sparsity_cycles_shapes() -> Generated:
    import bench_sparsity

    pairs = bench_sparsity.shape_pairs(["deit-small"])
    return Generated("\n".join(bench_sparsity.cycles_table(pairs, ["spatten", "edge"])))


def quant_table() -> Generated:
    import bench_quant

    lines = list(bench_quant.table(["spatten", "edge"]))
    return Generated(
        "\n".join([timings_line(bench_quant.VOLATILE), "", *lines]), bench_quant.VOLATILE
    )


def quant_shapes() -> Generated:
    import bench_quant

    volatile = ("calibrate+quantize s",)
    return Generated("\n".join([timings_line(volatile), "", *bench_quant.traffic_rows()]), volatile)


def quant_progressive() -> Generated:
    import bench_quant

    return Generated("\n".join(bench_quant.progressive_rows()))


def tokens_table() -> Generated:
    import bench_tokens

    return Generated("\n".join(bench_tokens.table([0.9, 0.7, 0.5, 0.3])))


def hardware_dataflows() -> Generated:
    import bench_fidelity

    return Generated("\n".join(bench_fidelity.dataflow_table()))


def hardware_topk() -> Generated:
    import bench_fidelity

    return Generated("\n".join(bench_fidelity.topk_table()))


def hardware_throughput() -> Generated:
    import bench_fidelity

    return Generated("\n".join(bench_fidelity.throughput_table()))


def generation_table() -> Generated:
    import bench_generate

    lines = bench_generate.table(prompts=4)
    return Generated(
        "\n".join([timings_line(bench_generate.VOLATILE), "", *lines]), bench_generate.VOLATILE
    )


def perf_speed() -> Generated:
    """Executors side by side (ONNX Runtime, reference, interpreter) and the issue-12 targets."""
    import bench_speed

    lines = bench_speed.speed_table(["deit-tiny", "bert-base", "gpt2-2"], 5, eval_rounds=3)
    return Generated(
        "\n".join([timings_line(bench_speed.VOLATILE), "", *lines]), bench_speed.VOLATILE
    )


def perf_profile() -> Generated:
    """Where a functional run's time goes, full DeiT-Tiny on spatten and on fact."""
    import profile_interpreter

    lines = [timings_line(profile_interpreter.VOLATILE)]
    for target in ("spatten", "fact"):
        lines += ["", *profile_interpreter.profile_table("deit-tiny", target, 5)]
    return Generated("\n".join(lines), profile_interpreter.VOLATILE)


def perf_footprint() -> Generated:
    """`wisp compile` output bytes per artifact and peak RSS, gpt2 --layers 2 and bert-base."""
    import bench_compile

    vol = bench_compile.FOOTPRINT_VOLATILE
    return Generated("\n".join([timings_line(vol), "", *bench_compile.footprint_table()]), vol)


def search_table() -> Generated:
    import bench_search

    with tempfile.TemporaryDirectory() as out:  # fresh studies: wall times of whole searches
        lines = bench_search.report(Path(out), trials=200, single=40, workers=2)
    volatile = bench_search.VOLATILE
    return Generated("\n".join([timings_line(volatile), "", *lines]), volatile)


REGIONS: dict[str, Region] = {
    "readme-status": Region("README.md", readme_status, fast=False),
    "readme-eval": Region("README.md", readme_eval, fast=True),
    "readme-tour": Region("README.md", readme_tour, fast=False),
    "pruning-table": Region("docs/pruning.md", pruning_table, fast=False),
    "sparsity-accuracy": Region("docs/sparsity.md", sparsity_accuracy, fast=False),
    "sparsity-cycles-digits": Region("docs/sparsity.md", sparsity_cycles_digits, fast=True),
    "sparsity-cycles-shapes": Region("docs/sparsity.md", sparsity_cycles_shapes, fast=False),
    "quant-table": Region("docs/quantization.md", quant_table, fast=False),
    "quant-shapes": Region("docs/quantization.md", quant_shapes, fast=False),
    "quant-progressive": Region("docs/quantization.md", quant_progressive, fast=False),
    "tokens-table": Region("docs/tokens.md", tokens_table, fast=False),
    "hardware-dataflows": Region("docs/hardware.md", hardware_dataflows, fast=True),
    "hardware-topk": Region("docs/hardware.md", hardware_topk, fast=True),
    "hardware-throughput": Region("docs/hardware.md", hardware_throughput, fast=False),
    "generation-table": Region("docs/generation.md", generation_table, fast=False),
    "perf-speed": Region("docs/performance.md", perf_speed, fast=False),
    "perf-profile": Region("docs/performance.md", perf_profile, fast=False),
    "perf-footprint": Region("docs/performance.md", perf_footprint, fast=False),
    "search-table": Region("docs/search.md", search_table, fast=False),
}


# ---- regions in files ----------------------------------------------------------------------------


def _pattern(name: str) -> re.Pattern[str]:
    n = re.escape(name)
    return re.compile(rf"(<!-- BEGIN generated:{n} -->\n)(.*?)(<!-- END generated:{n} -->)", re.S)


def current(name: str) -> str:
    """The region's body as the file holds it now."""
    region = REGIONS[name]
    text = (ROOT / region.file).read_text()
    m = _pattern(name).search(text)
    if m is None:
        raise SystemExit(f"{region.file}: no region 'generated:{name}'")
    return m.group(2).rstrip("\n")


def write(name: str, body: str) -> bool:
    """Replace the region's body; True if the file changed."""
    path = ROOT / REGIONS[name].file
    text = path.read_text()
    new = _pattern(name).sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text)
    if new != text:
        path.write_text(new)
    return new != text


def deterministic(body: str, volatile: Iterable[str]) -> str:
    """The body with the machine-dependent parts masked: the Timings line, and the cells of volatile
    columns in every markdown table."""
    volatile = set(volatile)
    out: list[str] = []
    masked: set[int] = set()
    for line in body.splitlines():
        if line.startswith("Timings ("):
            out.append("Timings (...)")
            continue
        if not line.startswith("|"):
            masked = set()
            out.append(line)
            continue
        cells = line.strip().strip("|").split("|")
        names = [c.strip() for c in cells]
        if any(n in volatile for n in names):  # a header row
            masked = {i for i, n in enumerate(names) if n in volatile}
        elif masked and not set(line) <= set("|-: "):
            cells = ["*" if i in masked else c for i, c in enumerate(cells)]
            line = "|" + "|".join(cells) + "|"
        out.append(line)
    return "\n".join(out)


def check(name: str) -> tuple[str, str]:
    """(the file's region, a fresh one), both with the volatile parts masked."""
    gen = REGIONS[name].produce()
    return deterministic(current(name), gen.volatile), deterministic(gen.text, gen.volatile)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help="regions (default: all)")
    ap.add_argument("--fast", action="store_true", help="only the fast regions")
    ap.add_argument(
        "--check", action="store_true", help="compare only; exit 1 if a region is stale"
    )
    ap.add_argument("--list", action="store_true", help="list the regions")
    args = ap.parse_args(argv)
    if args.list:
        for name, r in REGIONS.items():
            print(f"{name:<24} {r.file:<22} {'fast' if r.fast else 'slow (minutes)'}")
        return 0
    unknown = [n for n in args.names if n not in REGIONS]
    if unknown:
        print(f"refresh_docs: unknown region(s) {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    names = args.names or [n for n, r in REGIONS.items() if r.fast or not args.fast]
    stale = 0
    for name in names:
        print(f"{name}: {REGIONS[name].file} ...", file=sys.stderr, flush=True)
        if args.check:
            doc, fresh = check(name)
            if doc != fresh:
                stale += 1
                import difflib

                diff = difflib.unified_diff(
                    doc.splitlines(), fresh.splitlines(), "in the file", "now", lineterm=""
                )
                print(f"{name}: stale\n" + "\n".join(diff))
            continue
        current(name)  # the region must exist before minutes of work
        changed = write(name, REGIONS[name].produce().text)
        print(f"{name}: {'updated' if changed else 'unchanged'}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
