"""The pipeline driver: parse an xdsl-opt pipeline spec, run it on a Model, verify after every pass,
time each pass, and keep, print or dump the IR after each one."""

from __future__ import annotations

import re
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import ArgSpecParseError

from compiler.errors import WispError
from compiler.ir import make_context, print_module, verify
from compiler.model import Model
from compiler.pass_options import check_option_names
from compiler.progress import note, output, track
from compiler.registry import PASSES
from passes.context import Calibration, PassError

# Passes that read calibration data (the driver builds it only when one of them runs).
CALIBRATED = {
    "structured-prune",
    "sparsify-2-4",
    "quantize",
    "mixed-precision",
    "token-prune",
    "progressive-quant",
    "eager-predict",
}


@dataclass
class PassRecord:
    """What one pass did: its name, its wall time and (when kept) the IR after it."""

    name: str
    seconds: float
    ir: str | None
    report: dict[str, Any] | None = None


# Option values that are not one xDSL token — `granularity=group:32`, `layers=blocks.0.mlp.fc1`,
# `skip=blocks.*.attn.q,head` — are quoted before xDSL parses the spec.
_BARE_VALUE = re.compile(
    r"(?<=[{\s])([A-Za-z_][\w-]*)=((?=[\w.:*?,\[\]-]*[A-Za-z_*?])(?=[\w.:*?,\[\]-]*[.:*?])"
    r"[A-Za-z_*?][\w.:*?,\[\]-]*)(?=[\s}])"
)


_PASS_OPTIONS = re.compile(r"([A-Za-z_][\w-]*)\{([^{}]*)\}")
_INT_OPTION = re.compile(r"(?<![\w.])([A-Za-z_]\w*)=(-?\d+(?:,-?\d+)*)(?=[\s}]|$)")


def _float_options(name: str) -> set[str]:
    """Options of pass `name` typed float or tuple[float, ...] (an integer given there is a float)."""
    cls = PASSES.get(name)
    if cls is None:
        return set()
    try:
        hints = typing.get_type_hints(cls())
    except Exception:  # noqa: BLE001 - unknown passes / odd annotations: leave the spec as it is
        return set()
    return {k for k, t in hints.items() if t is float or t == tuple[float, ...]}


def _ints_as_floats(spec: str) -> str:
    """`ratio=-1` → `ratio=-1.0` for float options, so the pass's own range check names the range
    (xDSL would reject the integer with "Incompatible types")."""

    def one_pass(m: re.Match[str]) -> str:
        floats = _float_options(m.group(1))
        if not floats:
            return m.group(0)

        def one_opt(o: re.Match[str]) -> str:
            if o.group(1) not in floats:
                return o.group(0)
            return f"{o.group(1)}=" + ",".join(f"{v}.0" for v in o.group(2).split(","))

        return f"{m.group(1)}{{{_INT_OPTION.sub(one_opt, m.group(2))}}}"

    return _PASS_OPTIONS.sub(one_pass, spec)


def parse_pipeline(spec: str) -> tuple[ModulePass, ...]:
    """Parse `a,b{opt=1}` into pass instances; unknown passes and bad options are WispErrors."""
    if not spec.strip():
        return ()
    spec = _ints_as_floats(_BARE_VALUE.sub(r'\1="\2"', spec))
    check_option_names(spec)
    try:
        return PassPipeline.parse_spec(PASSES, spec).passes
    except ArgSpecParseError as e:  # a BaseException in xDSL 0.74; its text points at the column
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        where = lines[1].strip() if len(lines) > 1 else "pass-pipeline"
        raise WispError(f"{where}: bad pipeline '{spec}': {lines[-1].strip()}") from None
    except ValueError as e:
        message = str(e)
        if m := re.match(r"Unrecognized passes: \[(.*)\]", message):
            names = m.group(1).replace("'", "")
            raise WispError(
                f"unknown pass {names}; known passes: {', '.join(sorted(PASSES))}"
            ) from None
        raise WispError(f"bad pipeline '{spec}': {message}") from None
    except Exception as e:  # option type errors surface as assorted exceptions in xDSL
        raise WispError(f"bad pipeline '{spec}': {e}") from None


def _dump_name(index: int, name: str) -> str:
    return f"{index:02d}-{name}.mlir"


def run_pipeline(
    model: Model,
    spec: str | tuple[ModulePass, ...],
    *,
    keep_ir: bool = False,
    print_ir_after_all: bool = False,
    dump_dir: str | Path | None = None,
    stream: TextIO | None = None,
    with_weights: bool = True,
    calibration: Calibration | None = None,
    quiet: bool = False,
) -> list[PassRecord]:
    """Run the passes on `model` in place (IR and weights); verify after each; return per-pass records.

    `with_weights=False` runs on IR alone (wisp-opt without a weights file): passes that need weights
    then fail with a clear error, and analyses such as shape-check check the IR only. Passes named in
    CALIBRATED get `calibration` (default: the model's calibration split, or seeded random inputs)."""
    passes = parse_pipeline(spec) if isinstance(spec, str) else spec
    ctx = make_context()
    ctx.weights = model.weights if with_weights else None
    if with_weights and calibration is None and any(p.name in CALIBRATED for p in passes):
        from compiler.calibration import calibration_for

        calibration = calibration_for(model)
    ctx.calibration = calibration
    out = stream or sys.stdout
    dump = Path(dump_dir) if dump_dir is not None else None
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        (dump / _dump_name(0, "input")).write_text(print_module(model.module))
    records: list[PassRecord] = []
    for index, p in enumerate(track(passes, "passes", unit="pass"), start=1):
        note(p.name)
        start = time.perf_counter()
        reports_before = len(ctx.reports)
        try:
            p.apply(ctx, model.module)
        except (PassError, WispError) as e:
            raise WispError(f"pass '{p.name}': {e}") from None
        seconds = time.perf_counter() - start
        verify(model.module, after=p.name)
        text = None
        if keep_ir or print_ir_after_all or dump is not None:
            text = print_module(model.module)
        if print_ir_after_all:
            with output():
                out.write(f"// -----// IR Dump After {p.name} //----- //\n{text}\n")
                out.flush()
        if dump is not None and text is not None:
            (dump / _dump_name(index, p.name)).write_text(text)
        report = ctx.reports[-1][1] if len(ctx.reports) > reports_before else None
        if report is not None and not quiet:
            with output():
                out.write(format_report(p.name, report) + "\n")
                out.flush()
        records.append(PassRecord(p.name, seconds, text if keep_ir else None, report))
    if with_weights:
        model.weights = ctx.weights  # type: ignore[assignment]
    return records


def format_report(pass_name: str, report: dict[str, Any]) -> str:
    """A pass report as text: a before → after table of its figures, then its notes."""
    lines = [f"[{pass_name}]"]
    before, after = report.get("before", {}), report.get("after", {})
    estimated = False
    for key in [*before, *(k for k in after if k not in before)]:
        b, a = before.get(key), after.get(key)
        change = ""
        if isinstance(b, int | float) and isinstance(a, int | float) and b:
            change = f"  ({100 * (a - b) / b:+.1f}%)"
        label = key
        if any(word in key for word in _COSTS):
            label, estimated = f"{key} (est.)", True
        lines.append(f"  {label:<16} {_fmt(b):>16} -> {_fmt(a):<16}{change}")
    lines += [f"  {note}" for note in report.get("notes", [])]
    if estimated:
        lines.append("  (est.: static cost model; wisp eval / wisp run measure on the interpreter)")
    return "\n".join(lines)


# Report figures that are modeled costs (the static cost model), labelled as estimates.
_COSTS = ("cycles", "energy")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def timing_table(records: list[PassRecord]) -> str:
    """A pass-timing table in the spirit of mlir-opt's --mlir-timing."""
    total = sum(r.seconds for r in records) or 1e-12
    lines = ["  wall time (s)  share  pass"]
    lines += [f"  {r.seconds:13.4f}  {100 * r.seconds / total:4.1f}%  {r.name}" for r in records]
    lines.append(f"  {sum(r.seconds for r in records):13.4f}  100.0%  total")
    return "\n".join(lines)
