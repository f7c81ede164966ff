"""Predicted vs measured cost of a `mixed-precision` allocation, set into the pass's report.

Passes never run the interpreter (passes/ does not import it), so the measured side of the
mixed-precision report is added here, by the compiler driver, once the pipeline is compiled for a
target: the program runs once on the interpreter in timing-only mode (no numerics, milliseconds)
with a trace, and

- the whole program's cycles, energy and DRAM bytes are the interpreter's run report;
- the quantized layers' figures sum the instructions whose comment names one of their
  `quant.linear` ops (`<tag> quant.linear#<n>`, n the op's index in @main as the lowering numbers
  it; see backend/lower/context.py `emit`): the interpreter's executed cycles per instruction
  (`busy`, summed over queues) and the union of their execution intervals on the timeline
  (`active`, the wall cycles during which one of them ran), and the cost model's energy and DRAM
  bytes of the executed instructions (in a timing-only run every executed instruction costs its
  static `backend.cost.cost`). Instructions fused into a linear (its layer-norm prologue, a
  following quantize, an epilogue GELU or residual add, q/k/v merged into the first one) carry its
  comment and count with it.

The pass's prediction is `passes.latency.linear_cost` of each layer at its chosen width on the
pass's `hw` config; when the compile target is another config the prediction is repeated on the
target (same call, same arguments) and both are reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

from backend.config import Config
from backend.cost import cost
from backend.interpreter.report import QUEUE_NAMES
from backend.program import Program
from compiler.pipeline import PassRecord
from compiler.report.figures import union_length
from dialects import nn, quant
from passes.latency import linear_cost

PASS = "mixed-precision"
PREDICTED = "predicted (cost model)"
MEASURED = "measured (interpreter)"


def quant_linear_labels(module: ModuleOp, layers: Iterable[str]) -> dict[str, str]:
    """`quant.linear#<n>` (the lowering's op label: n = index in @main's body) → layer name, for
    the quant.linear ops whose weight is `<layer>.weight.q` for one of `layers`."""
    want = set(layers)
    main = next(
        (op for op in module.ops if isinstance(op, FuncOp) and op.sym_name.data == "main"), None
    )
    if main is None:
        return {}
    out: dict[str, str] = {}
    for n, op in enumerate(main.body.block.ops):
        if isinstance(op, quant.LinearOp) and isinstance(op.weight.owner, nn.WeightOp):
            name = op.weight.owner.symbol.removesuffix(".weight.q")
            if name in want:
                out[f"{op.name}#{n}"] = name
    return out


def _op_label(comment: str) -> str:
    parts = comment.split()
    return parts[1] if len(parts) > 1 else ""


def timing_run(program: Program, config: Config) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One timing-only interpreter run: the whole program's figures and the trace events."""
    from backend.interpreter import run

    result = run(program, None, config, timing_only=True, trace=True)
    rep = result.report
    whole = {
        "cycles": rep.cycles,
        "energy_pj": rep.energy_total_pj,
        "dram_bytes": rep.dram_read + rep.dram_write,
    }
    return whole, result.trace_events


def layer_figures(
    program: Program, config: Config, events: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The executed instructions of `labels`' ops in a run's trace `events`, summed."""
    data_end = len(program.data)
    busy = instrs = dram = weight_dram = 0
    energy = 0.0
    by_queue: dict[int, int] = {}
    spans: list[tuple[int, int]] = []
    ops_seen: set[str] = set()
    for ev in events:
        if ev.get("ph") != "X":
            continue
        a = ev["args"]
        label = _op_label(a["comment"])
        if label not in labels or a["skipped"]:
            continue
        ins = program.instrs[a["index"]]
        c = cost(ins, config)
        instrs += 1
        ops_seen.add(label)
        busy += a["cycles"]
        by_queue[ev["tid"]] = by_queue.get(ev["tid"], 0) + a["cycles"]
        spans.append((a["cycle"], a["cycle"] + a["cycles"]))
        energy += c.energy_total
        dram += c.dram_read + c.dram_write
        if ins.cls.name in ("LOAD", "LOADBP") and int(ins.args["src_addr"]) < data_end:
            weight_dram += c.dram_read
    return {
        "instructions": instrs,
        "ops_with_instructions": len(ops_seen),
        "busy_cycles": busy,
        "busy_cycles_by_queue": {QUEUE_NAMES[q]: v for q, v in sorted(by_queue.items())},
        "active_cycles": union_length(spans),
        "energy_pj": energy,
        "dram_bytes": dram,
        "weight_dram_bytes": weight_dram,
    }


def _predicted(layers: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    keys = ("cycles", "energy_pj", "dram_bytes", "weight_bytes")
    return {k: sum(layers[n]["predicted"][k] for n in names) for k in keys}


def _on_config(
    layers: Mapping[str, Mapping[str, Any]], names: Iterable[str], config: Config
) -> dict[str, Any]:
    out = {"cycles": 0, "energy_pj": 0.0, "dram_bytes": 0, "weight_bytes": 0}
    for n in names:
        m, nn_, k = layers[n]["shape_mnk"]
        c = linear_cost(m, nn_, k, layers[n]["bits"], config, layers[n]["groups"])
        out["cycles"] += c.cycles
        out["energy_pj"] += c.energy_pj
        out["dram_bytes"] += c.dram_bytes
        out["weight_bytes"] += c.weight_bytes
    return out


def add_measured(
    records: Sequence[PassRecord], module: ModuleOp, program: Program, config: Config
) -> list[str]:
    """Set `measured` into every mixed-precision record's report (and note lines); returns the
    lines to print. One timing-only interpreter run serves every such record."""
    targets = [r for r in records if r.name == PASS and r.report and "layers" in r.report]
    lines: list[str] = []
    if not targets:
        return lines
    whole, events = timing_run(program, config)
    for rec in targets:
        report = rec.report
        assert report is not None
        layers: dict[str, dict[str, Any]] = report["layers"]
        names = [n for n, v in layers.items() if v["bits"] != 16 and "predicted" in v]
        labels = quant_linear_labels(module, names)
        measured = layer_figures(program, config, events, labels)
        hw = str(report.get("hw", ""))
        predicted: dict[str, Any] = _predicted(layers, names) | {"config": hw}
        entry: dict[str, Any] = {
            "target": config.name,
            "hw": hw,
            "same_config": hw == config.name,
            "timing_only": True,
            "program": whole,
            "layers": names,
            PREDICTED: predicted,
            MEASURED: measured | {"config": config.name},
        }
        notes = [
            f"{PASS}: {len(names)} quantized layer(s), {measured['instructions']} instructions of "
            f"{measured['ops_with_instructions']} quant.linear op(s) (merged layers count with "
            "the op they were merged into)",
        ]
        if hw != config.name:
            on_target: dict[str, Any] = _on_config(layers, names, config) | {"config": config.name}
            entry[PREDICTED + " on target"] = on_target
            notes.append(
                f"the pass priced its allocation on hw={hw}, the program was compiled for "
                f"{config.name}: the prediction is given on both, the measurement on {config.name}"
            )
        else:
            on_target = predicted
        shown = [predicted] + ([on_target] if on_target is not predicted else [])
        notes += [
            f"{PREDICTED} on {p['config']}: {p['cycles']:,} cycles "
            "(max(MATMUL, weight DMA) + vector per layer), "
            f"{p['energy_pj'] / 1e6:,.3f} uJ, {p['dram_bytes']:,} DRAM B (weights, scales, bias)"
            for p in shown
        ]
        notes += [
            f"{MEASURED} on {config.name}: {measured['active_cycles']:,} active cycles "
            f"({measured['busy_cycles']:,} busy, summed over queues), "
            f"{measured['energy_pj'] / 1e6:,.3f} uJ, {measured['dram_bytes']:,} DRAM B "
            f"({measured['weight_dram_bytes']:,} from the weight image)",
            f"{MEASURED}, whole program on {config.name}: {whole['cycles']:,} cycles, "
            f"{whole['energy_pj'] / 1e6:,.3f} uJ, {whole['dram_bytes']:,} DRAM B",
        ]
        entry["notes"] = notes
        report["measured"] = entry
        report.setdefault("notes", []).extend(notes)
        lines += [f"[{PASS}] measured after compile (timing-only interpreter run)"]
        lines += [f"  {n}" for n in notes]
    return lines
