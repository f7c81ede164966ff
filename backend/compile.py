"""Compile an nn module and its weights to an NPU Program: lower → schedule → emit.

compiled = compile_module(module, weights, "spatten")
result = backend.interpreter.run(compiled.program, {"image": x})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from backend.config import Config, load_config
from backend.cost import cost
from backend.emit import assembly, binary, build_program
from backend.isa import Instr, Queue
from backend.lower import lower_module
from backend.lower.resident import ResidentLayout
from backend.npu_dialect import print_instrs
from backend.program import Program
from backend.schedule import schedule


@dataclass
class Compiled:
    """A compiled model. The npu IR texts are rendered on first access (they are large)."""

    program: Program
    input_names: list[str]
    output_names: list[str]
    layer_of: list[str]
    static_report: dict
    lowered_instrs: list[Instr] = field(repr=False, default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # weight symbol -> element types of its layouts in the image (`Lowered.data_dtypes`)
    data_dtypes: dict[str, frozenset[str]] = field(repr=False, default_factory=dict)

    def __repr__(self) -> str:  # short: no instruction list, image or report body
        return f"Compiled({self.program!r}, inputs={self.input_names}, outputs={self.output_names})"

    @property
    def npu_ir_lowered(self) -> str:
        """npu IR after lowering (program order, no tokens)."""
        return print_instrs(self.lowered_instrs)

    @property
    def npu_ir_scheduled(self) -> str:
        """npu IR after scheduling (final order, tokens, FINISH)."""
        return print_instrs(self.program.instrs)

    def asm(self, incbin: str | None = None) -> str:
        """Assembly text of the program."""
        return assembly(self.program, incbin)

    def npubin(self) -> bytes:
        """`.npubin` bytes of the program."""
        return binary(self.program)


def token_counts(instrs: list[Instr]) -> dict[str, int]:
    """Dependency tokens per channel ``src->dst`` (each is signalled once and waited once)."""
    names = [q.name.lower() for q in Queue]
    out: dict[str, int] = {}
    for i in instrs:
        q = int(i.cls.queue)
        for d in range(len(names)):
            if i.signal >> d & 1:
                key = f"{names[q]}->{names[d]}"
                out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def per_layer(instrs: list[Instr], tags: list[str], config: Config) -> dict[str, dict[str, int]]:
    """Per layer tag: instructions, busy cycles (summed over queues), MACs and DRAM bytes."""
    out: dict[str, dict[str, int]] = {}
    for ins, tag in zip(instrs, tags, strict=True):
        if not tag:
            continue
        c = cost(ins, config)
        d = out.setdefault(tag, {"instrs": 0, "busy_cycles": 0, "macs": 0, "dram_bytes": 0})
        d["instrs"] += 1
        d["busy_cycles"] += c.cycles
        d["macs"] += sum(c.macs_useful.values())
        d["dram_bytes"] += c.dram_read + c.dram_write
    return out


def compile_module(
    module: ModuleOp,
    weights: Mapping[str, np.ndarray],
    config: Config | str | Path,
    on_stage: Callable[[str], None] | None = None,
    resident: ResidentLayout | None = None,
) -> Compiled:
    """Lower ``@main`` of ``module`` with ``weights`` for ``config`` (a Config, name or path).
    ``on_stage(name)`` is called as each step (lower, schedule, emit) starts (progress display);
    ``resident`` places the arguments it names in fixed DRAM regions (backend/lower/resident.py)."""
    import time

    cfg = load_config(config)
    module.verify()  # lowering assumes verified IR (shapes as the verifier inferred them)
    next_stage = on_stage or (lambda _name: None)
    t0 = time.perf_counter()
    next_stage("lower")
    low = lower_module(module, weights, cfg, resident)
    t1 = time.perf_counter()
    next_stage("schedule")
    instrs, est, tags = schedule(low.instrs, cfg, low.data_end, low.layer_of)
    t2 = time.perf_counter()
    next_stage("emit")
    program = build_program(instrs, low.data, low.dram_size, low.symbols, cfg, low.data_end)
    report = est.to_dict(cfg)
    report["instructions"] = len(instrs)
    report["tokens"] = token_counts(instrs)
    report["per_layer"] = per_layer(instrs, tags, cfg)
    report["data_bytes"] = len(low.data)
    report["dram_size"] = program.dram_size
    return Compiled(
        program=program,
        input_names=low.input_names,
        output_names=low.output_names,
        layer_of=tags,
        static_report=report,
        lowered_instrs=low.instrs,
        timings={"lower": t1 - t0, "schedule": t2 - t1},
        data_dtypes=low.data_dtypes,
    )
