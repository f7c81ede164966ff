"""mixed-precision, measured side: compiling a pipeline with `mixed-precision` for a target runs the
program once on the interpreter (timing only) and sets predicted vs measured cost into the pass's
report. Checked against independent computations: the program's instructions summed with
backend.cost.model.cost (selected by their comment from the IR's own op numbering), and
passes.latency.linear_cost of each quantized layer from the IR's shapes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from frontdoor_util import run_cli
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

from backend.config import Config, load_config
from backend.cost.model import cost
from backend.interpreter import run
from backend.program import Program
from compiler.api import CompiledModel, compile_model
from dialects import nn, quant
from dialects.nn_base import shape_of
from passes.latency import linear_cost
from passes.quant_math import Granularity

# block 0 only and 2 samples: a few seconds; the rest of the model stays fp16 (not counted)
PIPE = "mixed-precision{budget=0.75 metric=cycles hw=edge layers=blocks.0.* samples=2%s}"
MEASURED, PREDICTED = "measured (interpreter)", "predicted (cost model)"


def _labels(module: ModuleOp, layers: set[str]) -> dict[str, quant.LinearOp]:
    """'quant.linear#n' → op for the quant.linear ops of `layers` (n: index in @main's body)."""
    (main,) = [op for op in module.ops if isinstance(op, FuncOp)]
    out = {}
    for n, op in enumerate(main.body.block.ops):
        if isinstance(op, quant.LinearOp):
            assert isinstance(op.weight.owner, nn.WeightOp)
            if op.weight.owner.symbol.split(".weight")[0] in layers:
                out[f"quant.linear#{n}"] = op
    return out


def _sum_costs(program: Program, cfg: Config, labels: set[str] | None) -> dict[str, Any]:
    """Sum of cost(ins) over the instructions whose comment's op label is in `labels` (all if
    None)."""
    tot = {"instructions": 0, "busy_cycles": 0, "energy_pj": 0.0, "dram_bytes": 0}
    for ins in program.instrs:
        parts = ins.comment.split()
        if labels is not None and (len(parts) < 2 or parts[1] not in labels):
            continue
        assert not ins.pred, "a predicated instruction: the sum below would not hold"
        c = cost(ins, cfg)
        tot["instructions"] += 1
        tot["busy_cycles"] += c.cycles
        tot["energy_pj"] += c.energy_total
        tot["dram_bytes"] += c.dram_read + c.dram_write
    return tot


@pytest.fixture(scope="module", params=["edge", "spatten"])
def compiled(request: pytest.FixtureRequest) -> CompiledModel:
    return compile_model("digits-vit", PIPE % "", request.param)


def test_measured_equals_instruction_sum(compiled: CompiledModel) -> None:
    report = compiled.passes[0].report
    assert report is not None
    meas = report["measured"]
    quantized = {n for n, v in report["layers"].items() if v["bits"] != 16}
    assert quantized and all(n.startswith("blocks.0.") for n in quantized)
    assert meas["layers"] == [n for n in report["layers"] if n in quantized]
    labels = _labels(compiled.model.module, quantized)
    assert labels  # the pass's layers are quant.linear ops of the compiled module
    cfg, program = compiled.config, compiled.compiled.program
    want = _sum_costs(program, cfg, set(labels))
    got = meas[MEASURED]
    assert got["config"] == cfg.name
    assert got["instructions"] == want["instructions"] > 0
    assert got["busy_cycles"] == want["busy_cycles"]
    assert got["energy_pj"] == pytest.approx(want["energy_pj"], rel=1e-12)
    assert got["dram_bytes"] == want["dram_bytes"]
    assert sum(got["busy_cycles_by_queue"].values()) == got["busy_cycles"]
    # the union of their execution intervals: no more than the busy sum, no less than any queue
    assert max(got["busy_cycles_by_queue"].values()) <= got["active_cycles"] <= got["busy_cycles"]
    assert got["active_cycles"] <= meas["program"]["cycles"]
    # whole program: every instruction (no predicates in this program)
    everything = _sum_costs(program, cfg, None)
    assert meas["program"]["energy_pj"] == pytest.approx(everything["energy_pj"], rel=1e-9)
    assert meas["program"]["dram_bytes"] == everything["dram_bytes"]
    assert meas["program"]["cycles"] == run(program, None, cfg, timing_only=True).report.cycles
    # weight-image reads: LOADs from the data section, a subset of the layers' DRAM bytes
    assert 0 < got["weight_dram_bytes"] <= got["dram_bytes"]


def test_predicted_is_linear_cost_of_the_quantized_layers(compiled: CompiledModel) -> None:
    report = compiled.passes[0].report
    assert report is not None
    meas = report["measured"]
    quantized = {n for n, v in report["layers"].items() if v["bits"] != 16}
    labels = _labels(compiled.model.module, quantized)
    hw = load_config("edge")

    def predicted(cfg: Config) -> dict[str, float]:
        tot = {"cycles": 0.0, "energy_pj": 0.0, "dram_bytes": 0.0}
        for op in labels.values():
            name = op.weight.owner.symbol.split(".weight")[0]  # type: ignore[union-attr]
            bits = report["layers"][name]["bits"]
            x, (n, k) = shape_of(op.input.type), shape_of(op.weight.type)
            m = math.prod(x[:-1])
            c = linear_cost(m, n, k, bits, cfg, Granularity("channel").groups(k))
            tot["cycles"] += c.cycles
            tot["energy_pj"] += c.energy_pj
            tot["dram_bytes"] += c.dram_bytes
        return tot

    # merged q/k/v have one op each in the IR, so every quantized layer is one label
    assert len(labels) == len(quantized)
    p = meas[PREDICTED]
    want = predicted(hw)
    assert p["config"] == "edge"
    assert p["cycles"] == want["cycles"] and p["dram_bytes"] == want["dram_bytes"]
    assert p["energy_pj"] == pytest.approx(want["energy_pj"], rel=1e-12)
    assert p["cycles"] == pytest.approx(
        sum(report["layers"][n]["cost"][str(report["layers"][n]["bits"])] for n in quantized)
    )  # the figures the allocation used (metric=cycles)
    if compiled.config.name == "edge":
        assert meas["same_config"] and PREDICTED + " on target" not in meas
    else:
        assert not meas["same_config"]
        on = meas[PREDICTED + " on target"]
        want_t = predicted(compiled.config)
        assert on["config"] == compiled.config.name
        assert on["cycles"] == want_t["cycles"] and on["dram_bytes"] == want_t["dram_bytes"]
        assert any("hw=edge" in n and compiled.config.name in n for n in meas["notes"])


def test_no_target_or_no_pass_no_measurement() -> None:
    c = compile_model("digits-vit", PIPE % "", None)
    assert c.passes[0].report is not None and "measured" not in c.passes[0].report
    assert c.measured_lines == []
    c = compile_model("digits-vit", "canonicalize", "edge")
    assert c.measured_lines == []


def test_cli_prints_and_compile_json_carries_it(tmp_path: Path) -> None:
    out = tmp_path / "mp"
    r = run_cli("wisp", "compile", "digits-vit", "-p", PIPE % "", "--target", "spatten", "-o", out)
    assert r.returncode == 0, r.stderr
    assert f"{PREDICTED} on spatten" in r.stdout and f"{MEASURED} on spatten" in r.stdout
    assert "hw=edge" in r.stdout  # the configs differ, and it says so
    manifest = json.loads((out / "compile.json").read_text())
    (rec,) = [p for p in manifest["passes"] if p["name"] == "mixed-precision"]
    meas = rec["report"]["measured"]
    assert meas["target"] == "spatten" and meas["hw"] == "edge" and not meas["same_config"]
    assert meas[MEASURED]["instructions"] > 0 and meas[PREDICTED]["cycles"] > 0
    assert any(MEASURED in n for n in rec["report"]["notes"])
