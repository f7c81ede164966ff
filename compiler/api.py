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
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    source: Model | None = None  # a gpt2-family model before the pipeline (for generate)
    _generation_forms: dict[str, Any] = field(default_factory=dict, repr=False)

    def reference(self, inputs: Mapping[str, np.ndarray], **kw: Any) -> dict[str, np.ndarray]:
        """The oracle's outputs for the compressed nn model."""
        return ref.run(self.model, inputs, **kw)

    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        timing_only: bool = False,
        trace: bool = False,
        resident: Any = None,
    ) -> RunResult:
        """Run the program on the interpreter; ``resident`` (a
        `backend.interpreter.resident.ResidentDram`) keeps the program's resident regions (a
        generation's KV cache) across runs of the session's programs."""
        if self.compiled is None:
            raise WispError(f"{self.model.name} was compiled without a target; nothing to run")
        from backend.interpreter import run as interpret

        named = _program_inputs(self.model, self.compiled, inputs)
        result = interpret(
            self.compiled.program,
            named,
            self.config,
            timing_only=timing_only,
            trace=trace,
            resident=resident,
        )
        # timing-only runs skip numerics and return no outputs
        outputs = {n: result.outputs[n] for n in self.compiled.output_names if n in result.outputs}
        return RunResult(outputs, result.report, getattr(result, "trace_events", None))

    def generate(
        self, prompt: str, tokens: int, *, temperature: float | None = None, seed: int = 0
    ) -> Any:
        """Continue `prompt` by `tokens` characters (a gpt2-family model such as char-gpt): the
        prefill and decode programs (this pipeline, this target) are compiled once and reused;
        returns a `compiler.generation.session.Generation` (text, per-step cost)."""
        from compiler.generation.forms import LanguageModel
        from compiler.generation.session import Generation, Generator, Sampler

        if self.source is None:
            raise WispError(f"{self.model.name}: generate needs a gpt2-family zoo model")
        gen = Generator(
            LanguageModel.of(self.source),
            pipeline=self.pipeline,
            target=self.target,
            forms=self._generation_forms,
        )
        ids = gen.check_request(prompt, tokens)
        gen.prepare(ids.size, tokens)
        steps = list(gen.generate(prompt, tokens, Sampler(temperature, seed)))
        return Generation(prompt, "".join(s.text for s in steps), steps)

    def __repr__(self) -> str:
        parts = [f"model={self.model.name!r}", f"pipeline={self.pipeline!r}"]
        parts.append(f"target={self.target!r}")
        parts.append(f"passes={len(self.passes)}")
        if self.compiled is not None:
            prog = self.compiled.program
            parts.append(f"instructions={len(prog.instrs)}")
            parts.append(f"data_bytes={len(prog.data)}")
            parts.append(f"inputs={self.compiled.input_names}")
            parts.append(f"outputs={self.compiled.output_names}")
        return f"CompiledModel({', '.join(parts)})"

    def save(
        self,
        outdir: str | os.PathLike[str],
        *,
        force: bool = False,
        emit: str | Iterable[str] | None = None,
        weights: str = "fp32",
    ) -> None:
        """Write OUTDIR (atomically): compile.json, config.json and the artifacts ``emit`` names
        (`parse_emit`; default `DEFAULT_EMIT`): ``model`` (model.mlir + the weights, what
        `load_compiled` and the reference executor read: float32 as the passes left them, or with
        ``weights="program"`` each weight the program holds only in fp16 saved as float16 — half
        the bytes, the values the NPU computes with; the reference then runs on those), ``binary`` (program.npubin, holding the
        DRAM image), ``asm`` (program.s; its ``.incbin`` reads the image from program.npubin, or
        from program.data when no binary is written), ``data`` (program.data, the image alone),
        ``report`` (the static report.json) and ``ir`` (ir/ dumps).

        An existing OUTDIR is replaced only if it is empty or an earlier wisp output, unless
        ``force`` (`compiler.output_guard`)."""
        from compiler.io_util import staged_directory
        from compiler.output_guard import MARKER, MARKER_TEXT, check_replaceable

        kinds = parse_emit(emit)
        if weights not in WEIGHT_PRECISIONS:
            raise WispError(
                f"--save-weights: unknown precision {weights!r} (choose from {', '.join(WEIGHT_PRECISIONS)})"
            )
        if weights == "program" and self.compiled is None:
            raise WispError("--save-weights program: no program was compiled (--target none)")
        check_replaceable(outdir, force)
        with staged_directory(outdir) as stage:
            (stage / MARKER).write_text(MARKER_TEXT)
            if "model" in kinds:
                store = self.model.weights
                if weights == "program" and self.compiled is not None:
                    store = store.in_program_precision(self.compiled.data_dtypes)
                self.model.save(stage, "model", store)
            if "ir" in kinds:
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
                _save_program(stage, self.compiled, kinds)
                manifest["inputs"] = self.compiled.input_names
                manifest["outputs"] = self.compiled.output_names
                manifest["layer_of"] = self.compiled.layer_of
                manifest["config"] = self.config.name
                manifest["emit"] = sorted(kinds)
                manifest["saved_weights"] = weights
                # the config itself, so loading this directory never follows a path it names
                (stage / CONFIG_COPY).write_text(self.config.canonical + "\n")
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


WEIGHT_PRECISIONS = ("fp32", "program")
EMIT_KINDS = ("model", "binary", "asm", "data", "report", "ir")
DEFAULT_EMIT = ("model", "binary", "asm", "report", "ir")


def parse_emit(emit: str | Iterable[str] | None) -> frozenset[str]:
    """The artifact names of ``--emit`` (a comma list or names; None: `DEFAULT_EMIT`;
    ``default`` stands for the defaults, ``all`` for every artifact)."""
    if emit is None:
        return frozenset(DEFAULT_EMIT)
    names = (
        [n.strip() for n in emit.split(",") if n.strip()] if isinstance(emit, str) else list(emit)
    )
    out: set[str] = set()
    for n in names:
        if n == "default":
            out |= set(DEFAULT_EMIT)
        elif n == "all":
            out |= set(EMIT_KINDS)
        elif n in EMIT_KINDS:
            out.add(n)
        else:
            raise WispError(
                f"--emit: unknown artifact {n!r} (choose from {', '.join(EMIT_KINDS)}, "
                "default, all)"
            )
    if not out:
        raise WispError("--emit: no artifact named")
    return frozenset(out)


def _save_program(stage: Path, compiled: Any, kinds: frozenset[str]) -> None:
    """program.npubin / program.s / program.data / report.json as ``kinds`` asks; the DRAM image
    is written once (in the binary when there is one, which the assembly then references)."""
    from backend.asm import disassemble
    from backend.npubin import write_file

    program = compiled.program
    span = write_file(program, stage / "program.npubin") if "binary" in kinds else None
    if "data" in kinds or ("asm" in kinds and span is None):
        (stage / "program.data").write_bytes(program.data)
    if "asm" in kinds:
        if span is not None and "data" not in kinds:
            text = disassemble(program, incbin="program.npubin", span=span)
        else:
            text = disassemble(program, incbin="program.data")
        (stage / "program.s").write_text(text)
    if "report" in kinds:
        (stage / "report.json").write_text(
            json.dumps(compiled.static_report, indent=2, sort_keys=True) + "\n"
        )


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
    kept = {n for n, s in compiled.program.symbols.items() if s.kind == "resident"}
    specs = {n: s for n, s in model.input_specs().items() if n not in kept}  # not host inputs
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
    source = model.clone() if model.meta.get("family") == "gpt2" else None
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
        from backend.lower.resident import ResidentLayout

        with stages(f"compile for {config.name}", 3) as next_stage:
            compiled = compile_module(
                model.module, model.weights, config, next_stage, ResidentLayout.of(model.meta)
            )
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
        source=source,
    )


def reference(
    model: Model | str, inputs: Mapping[str, np.ndarray], **kw: Any
) -> dict[str, np.ndarray]:
    """Run the numpy oracle on a model (or a zoo name)."""
    return ref.run(load_model(model) if isinstance(model, str) else model, inputs, **kw)


def _saved_program(outdir: Path) -> Any:
    """The program of OUTDIR: program.npubin, or program.s when no binary was emitted."""
    if (outdir / "program.npubin").exists():
        from backend.npubin import read

        return read((outdir / "program.npubin").read_bytes(), str(outdir / "program.npubin"))
    from backend.asm import assemble

    path = outdir / "program.s"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise WispError(f"{path}: cannot read ({e})") from None
    return assemble(text, str(path))


def load_compiled(outdir: str | os.PathLike[str]) -> CompiledModel:
    """Load a directory written by `CompiledModel.save` / `wisp compile`."""
    outdir = Path(outdir)
    manifest_path = outdir / MANIFEST
    if not manifest_path.exists():
        raise WispError(f"{outdir}: not a wisp compile output (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if not (outdir / "model.mlir").exists():
        raise WispError(
            f"{outdir}: no model.mlir (compiled with an --emit list without 'model'); "
            "recompile with --emit default to load it"
        )
    model = load_model(str(outdir))
    compiled_model = CompiledModel(
        model, manifest.get("pipeline", ""), [], IRDumps({}), manifest.get("target")
    )
    if (outdir / "program.npubin").exists() or (outdir / "program.s").exists():
        from backend.compile import Compiled

        compiled_model.config = _saved_config(outdir, manifest)
        program = _saved_program(outdir)
        compiled_model.compiled = Compiled(
            program=program,
            input_names=list(manifest["inputs"]),
            output_names=list(manifest["outputs"]),
            layer_of=list(manifest.get("layer_of", [])),
            static_report={},
        )
    return compiled_model
