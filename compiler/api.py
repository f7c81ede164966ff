"""The public Python API: compile a model for a target, run it on the interpreter, compare with the oracle.

from compiler.api import compile_model
prog = compile_model("digits-vit", pipeline="canonicalize,cse", target="spatten")
result = prog.run({"image": x})          # outputs + report (cycles, DRAM bytes, energy)
prog.ir["canonicalize"]                   # the nn IR after that pass
prog.ir["npu-scheduled"]                  # the npu IR after scheduling
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler import reference as ref
from compiler.errors import WispError
from compiler.ir import print_module
from compiler.loading import MANIFEST, load_model
from compiler.model import Model
from compiler.pipeline import PassRecord, parse_pipeline, run_pipeline
from compiler.progress import stages


class IRDumps(Mapping[str, str]):
    """IR text by stage name, in pipeline order ("input", each pass, "npu-lowered", "npu-scheduled");
    large npu dumps are rendered on first access."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._items: dict[str, str | Callable[[], str]] = dict(texts)

    def __setitem__(self, name: str, text: str) -> None:
        self._items[name] = text

    def lazy(self, name: str, render: Callable[[], str]) -> None:
        self._items[name] = render

    def __getitem__(self, name: str) -> str:
        item = self._items[name]
        if callable(item):
            item = self._items[name] = item()
        return item

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class RunResult:
    """What one run on the interpreter gives: named outputs and the cost report."""

    outputs: dict[str, np.ndarray]
    report: Any
    trace_events: list[dict[str, Any]] | None = None


@dataclass
class CompiledModel:
    """A model after a pass pipeline and (with a target) compiled to an NPU program."""

    model: Model
    pipeline: str
    passes: list[PassRecord]
    ir: IRDumps = field(default_factory=lambda: IRDumps({}))
    target: str | None = None
    config: Any = None
    compiled: Any = None  # backend.compile.Compiled
    measured_lines: list[str] = field(default_factory=list)  # printed after compile (cmd_compile)

    def reference(self, inputs: Mapping[str, np.ndarray], **kw: Any) -> dict[str, np.ndarray]:
        """The oracle's outputs for the compressed nn model."""
        return ref.run(self.model, inputs, **kw)

    def run(
        self, inputs: Mapping[str, np.ndarray], *, timing_only: bool = False, trace: bool = False
    ) -> RunResult:
        """Run the program on the interpreter."""
        if self.compiled is None:
            raise WispError(f"{self.model.name} was compiled without a target; nothing to run")
        from backend.interpreter import run as interpret

        named = _program_inputs(self.model, self.compiled, inputs)
        result = interpret(
            self.compiled.program, named, self.config, timing_only=timing_only, trace=trace
        )
        # timing-only runs skip numerics and return no outputs
        outputs = {n: result.outputs[n] for n in self.compiled.output_names if n in result.outputs}
        return RunResult(outputs, result.report, getattr(result, "trace_events", None))

    def save(self, outdir: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write OUTDIR (atomically): model.mlir + weights, ir/ dumps, compile.json and, with a target,
        program.s (+ program.data, its DRAM image), program.npubin and the static report.json.

        An existing OUTDIR is replaced only if it is empty or an earlier wisp output, unless
        ``force`` (`compiler.output_guard`)."""
        from compiler.io_util import staged_directory
        from compiler.output_guard import MARKER, MARKER_TEXT, check_replaceable

        check_replaceable(outdir, force)
        with staged_directory(outdir) as stage:
            (stage / MARKER).write_text(MARKER_TEXT)
            self.model.save(stage, "model")
            (stage / "ir").mkdir()
            for index, (name, text) in enumerate(self.ir.items()):
                (stage / "ir" / f"{index:02d}-{name}.mlir").write_text(text)
            manifest: dict[str, Any] = {
                "model": self.model.name,
                "pipeline": self.pipeline,
                "passes": [
                    {"name": r.name, "seconds": round(r.seconds, 6), "report": r.report}
                    for r in self.passes
                ],
                "params": self.model.weights.num_params,
                "meta": self.model.meta,
                "target": self.target,
            }
            if self.compiled is not None:
                from backend.asm import disassemble
                from backend.npubin import write

                program = self.compiled.program
                # the DRAM image (weights) goes beside the assembly, not inline as hex
                (stage / "program.s").write_text(disassemble(program, incbin="program.data"))
                (stage / "program.data").write_bytes(program.data)
                (stage / "program.npubin").write_bytes(write(program))
                (stage / "report.json").write_text(
                    json.dumps(self.compiled.static_report, indent=2, sort_keys=True) + "\n"
                )
                manifest["inputs"] = self.compiled.input_names
                manifest["outputs"] = self.compiled.output_names
                manifest["layer_of"] = self.compiled.layer_of
                manifest["config"] = self.config.name
                # the config itself, so loading this directory never follows a path it names
                (stage / CONFIG_COPY).write_text(self.config.canonical + "\n")
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


CONFIG_COPY = "config.json"


def _saved_config(outdir: Path, manifest: dict[str, Any]) -> Any:
    """The config an OUTDIR was compiled for: its saved copy, or a bundled name; never a path
    read from the manifest (the directory is data, not a list of files to open)."""
    from backend.config import bundled_config, load_config

    if (outdir / CONFIG_COPY).is_file():
        return load_config(outdir / CONFIG_COPY)
    return bundled_config(str(manifest.get("config") or manifest.get("target") or "spatten"))


def _program_inputs(
    model: Model, compiled: Any, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    from backend.convert import convert
    from compiler.weight_audit import audit_inputs

    audit_inputs("inputs", inputs)
    specs = model.input_specs()
    named: dict[str, np.ndarray] = {}
    for (name, (shape, dtype)), symbol in zip(specs.items(), compiled.input_names, strict=True):
        if name not in inputs:
            raise WispError(f"missing input '{name}' (the model takes {', '.join(specs)})")
        x = np.asarray(inputs[name])
        if tuple(x.shape) != shape:
            raise WispError(
                f"input '{name}' has shape {list(x.shape)}, the model expects {list(shape)}"
            )
        try:
            named[symbol] = convert(x, np.dtype(dtype), f"input '{name}'")
        except ValueError as e:
            raise WispError(str(e)) from None
    return named


def compile_model(
    model: Model | str,
    pipeline: str = "",
    target: str | os.PathLike[str] | None = "spatten",
    *,
    print_ir_after_all: bool = False,
    **options: Any,
) -> CompiledModel:
    """Run `pipeline` on a model (a Model, or a zoo name / .mlir path with shape `options`) and compile it
    for `target` (a config name, a config file, or None for the nn IR only). The given Model is not
    modified."""
    passes = parse_pipeline(pipeline)
    config = None
    if target is not None:
        from backend.config import load_config

        config = load_config(target if isinstance(target, str) else Path(target))
    model = load_model(model, **options) if isinstance(model, str) else model.clone()
    ir = IRDumps({"input": print_module(model.module)})
    records = run_pipeline(model, passes, keep_ir=True, print_ir_after_all=print_ir_after_all)
    for r in records:
        name, n = r.name, 2
        while name in ir:
            name, n = f"{r.name}.{n}", n + 1
        ir[name] = r.ir or ""
    compiled = None
    if config is not None:
        from backend.compile import compile_module

        with stages(f"compile for {config.name}", 3) as next_stage:
            compiled = compile_module(model.module, model.weights, config, next_stage)
        ir.lazy("npu-lowered", lambda: compiled.npu_ir_lowered)
        ir.lazy("npu-scheduled", lambda: compiled.npu_ir_scheduled)
        # a mixed-precision report gets its measured side (one timing-only interpreter run)
        from compiler.mixed_measure import add_measured

        measured = add_measured(records, model.module, compiled.program, config)
    else:
        measured = []
    return CompiledModel(
        model,
        pipeline,
        records,
        ir,
        None if target is None else str(target),
        config,
        compiled,
        measured_lines=measured,
    )


def reference(
    model: Model | str, inputs: Mapping[str, np.ndarray], **kw: Any
) -> dict[str, np.ndarray]:
    """Run the numpy oracle on a model (or a zoo name)."""
    return ref.run(load_model(model) if isinstance(model, str) else model, inputs, **kw)


def load_compiled(outdir: str | os.PathLike[str]) -> CompiledModel:
    """Load a directory written by `CompiledModel.save` / `wisp compile`."""
    outdir = Path(outdir)
    manifest_path = outdir / MANIFEST
    if not manifest_path.exists():
        raise WispError(f"{outdir}: not a wisp compile output (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    model = load_model(str(outdir))
    compiled_model = CompiledModel(
        model, manifest.get("pipeline", ""), [], IRDumps({}), manifest.get("target")
    )
    if (outdir / "program.npubin").exists():
        from backend.compile import Compiled
        from backend.npubin import read

        program = read((outdir / "program.npubin").read_bytes(), str(outdir / "program.npubin"))
        compiled_model.config = _saved_config(outdir, manifest)
        compiled_model.compiled = Compiled(
            program=program,
            input_names=list(manifest["inputs"]),
            output_names=list(manifest["outputs"]),
            layer_of=list(manifest.get("layer_of", [])),
            static_report={},
        )
    return compiled_model
