"""Read and check what `wisp report` reads from a compile OUTDIR: compile.json, report.json,
config.json and the program. Every value the report uses is type- and range-checked here, so a
hostile or damaged file gives one error line naming the file and the key, never a traceback."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from compiler.errors import WispError

MAX_JSON_BYTES = 64 << 20  # compile.json of the largest zoo model is well under 1 MiB
MAX_COUNT = 1 << 53  # integers beyond this lose precision as floats (and no program is that big)
MAX_NAME = 256  # characters of a layer or pass name shown in the report


@dataclass(frozen=True)
class PassInfo:
    """One pass of the pipeline and its report (any JSON object; rendered generically)."""

    name: str
    report: dict[str, Any]


@dataclass(frozen=True)
class StaticLayer:
    """report.json's per_layer entry: static estimate of one layer tag."""

    instrs: int
    busy_cycles: int
    macs: int
    dram_bytes: int


@dataclass(frozen=True)
class StaticReport:
    """The figures of report.json the report shows (static estimate of the cost model)."""

    cycles: int
    instructions: int
    dram_read: int
    dram_write: int
    busy: dict[str, int]
    macs: dict[str, int]
    bound: dict[str, float]
    bound_by: str
    efficiency: float
    per_layer: dict[str, StaticLayer]


@dataclass
class Outdir:
    """A compile OUTDIR, checked."""

    path: Path
    model: str
    pipeline: str
    target: str
    dataset: str | None
    passes: list[PassInfo]
    layer_of: list[str] | None
    static: StaticReport
    program: Any  # backend.program.Program
    config: Any  # backend.config.Config


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; errors name the file (and line:col for a syntax error)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as e:
        raise WispError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise WispError(f"{path}: larger than {MAX_JSON_BYTES >> 20} MiB; not a wisp output")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WispError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise WispError(f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    except ValueError as e:
        raise WispError(f"{path}: malformed JSON: {e}") from None
    except RecursionError:
        raise WispError(f"{path}: malformed JSON: nested too deeply") from None


class _Checker:
    """Typed access to a parsed JSON file; errors read `FILE: key.path: expected ..., got ...`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> WispError:
        return WispError(f"{self.path}: {where}: {what}")

    def _got(self, v: Any) -> str:
        text = json.dumps(v)[:40] if not isinstance(v, dict | list) else type(v).__name__
        return f"got {text}"

    def obj(self, v: Any, where: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(where, f"expected an object, {self._got(v)}")
        return v

    def key(self, d: dict[str, Any], k: str, where: str) -> Any:
        if k not in d:
            raise self.fail(f"{where}{k}" if where else k, "missing")
        return d[k]

    def count(self, v: Any, where: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(where, f"expected a non-negative integer, {self._got(v)}")
        if not 0 <= v <= MAX_COUNT:
            raise self.fail(where, f"integer out of range (0 .. 2^53), {self._got(v)}")
        return v

    def number(self, v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(where, f"expected a number, {self._got(v)}")
        f = float(v) if abs(v) <= 1e300 else math.inf
        if not math.isfinite(f) or abs(f) > MAX_COUNT:
            raise self.fail(where, f"number out of range (|x| <= 2^53), {self._got(v)}")
        return f

    def name(self, v: Any, where: str) -> str:
        if not isinstance(v, str):
            raise self.fail(where, f"expected a string, {self._got(v)}")
        if len(v) > MAX_NAME:
            raise self.fail(where, f"string longer than {MAX_NAME} characters")
        return v

    def text(self, v: Any, where: str) -> str:
        if not isinstance(v, str):
            raise self.fail(where, f"expected a string, {self._got(v)}")
        return v

    def counts(self, v: Any, where: str) -> dict[str, int]:
        d = self.obj(v, where)
        return {self.name(k, where): self.count(x, f"{where}.{k}") for k, x in d.items()}


def _static_report(path: Path) -> StaticReport:
    c = _Checker(path)
    d = c.obj(read_json(path), "top level")
    layers: dict[str, StaticLayer] = {}
    for tag, v in c.obj(c.key(d, "per_layer", ""), "per_layer").items():
        where = f"per_layer.{c.name(tag, 'per_layer')}"
        e = c.obj(v, where)
        layers[tag] = StaticLayer(
            *(
                c.count(c.key(e, f, f"{where}."), f"{where}.{f}")
                for f in (x.name for x in fields(StaticLayer))
            )
        )
    bound = c.obj(c.key(d, "bound", ""), "bound")
    return StaticReport(
        cycles=c.count(c.key(d, "cycles", ""), "cycles"),
        instructions=c.count(c.key(d, "instructions", ""), "instructions"),
        dram_read=c.count(c.key(d, "dram_read", ""), "dram_read"),
        dram_write=c.count(c.key(d, "dram_write", ""), "dram_write"),
        busy=c.counts(c.key(d, "busy", ""), "busy"),
        macs=c.counts(c.key(d, "macs", ""), "macs"),
        bound={c.name(k, "bound"): c.number(v, f"bound.{k}") for k, v in bound.items()},
        bound_by=c.name(c.key(d, "bound_by", ""), "bound_by"),
        efficiency=c.number(c.key(d, "efficiency", ""), "efficiency"),
        per_layer=layers,
    )


def _passes(c: _Checker, v: Any) -> list[PassInfo]:
    if not isinstance(v, list):
        raise c.fail("passes", f"expected a list, {c._got(v)}")
    out = []
    for i, p in enumerate(v):
        e = c.obj(p, f"passes[{i}]")
        name = c.name(c.key(e, "name", f"passes[{i}]."), f"passes[{i}].name")
        report = e.get("report") or {}
        out.append(PassInfo(name, c.obj(report, f"passes[{i}].report")))
    return out


def load_outdir(outdir: str | Path) -> Outdir:
    """The checked contents of a `wisp compile` OUTDIR (with a program and report.json)."""
    from backend.config import bundled_config, load_config
    from compiler.cli.cmd_run import load_program
    from compiler.loading import MANIFEST

    path = Path(outdir)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        raise WispError(f"{path}: {what} (give an OUTDIR written by wisp compile -o)")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise WispError(f"{path}: not a wisp compile output (no {MANIFEST})")
    c = _Checker(manifest_path)
    m = c.obj(read_json(manifest_path), "top level")
    if not (path / "program.npubin").is_file() and not (path / "program.s").is_file():
        raise WispError(
            f"{path}: no program.npubin or program.s (compiled with --target none or an --emit "
            "list without binary/asm): nothing to report"
        )
    report_path = path / "report.json"
    if not report_path.is_file():
        raise WispError(
            f"{path}: no report.json (compiled with an --emit list without 'report'); "
            "recompile with --emit default"
        )
    static = _static_report(report_path)
    program = load_program(path)
    config_path = path / "config.json"
    config_name = c.name(m.get("config") or m.get("target") or "spatten", "config")
    if config_path.is_file():
        config = load_config(config_path)  # its errors name the file
    else:
        config = bundled_config(config_name)
    layer_of = None
    if "layer_of" in m:
        raw = m["layer_of"]
        if not isinstance(raw, list):
            raise c.fail("layer_of", f"expected a list, {c._got(raw)}")
        layer_of = [c.name(t, f"layer_of[{i}]") for i, t in enumerate(raw)]
        if len(layer_of) != len(program.instrs):
            raise c.fail(
                "layer_of",
                f"{len(layer_of)} tags for the {len(program.instrs)} instructions of the program "
                "(compile.json and the program are from different compiles)",
            )
    meta = m.get("meta")
    dataset = meta.get("dataset") if isinstance(meta, dict) else None
    return Outdir(
        path=path,
        model=c.name(m.get("model", "?"), "model"),
        pipeline=c.text(m.get("pipeline", ""), "pipeline"),
        target=config.name,
        dataset=dataset if isinstance(dataset, str) else None,
        passes=_passes(c, m.get("passes", [])),
        layer_of=layer_of,
        static=static,
        program=program,
        config=config,
    )
