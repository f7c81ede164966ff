"""Interpreter checks: deadlock, races between queues, invalid fields; report, trace, modes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_interp_util import Builder, load_store, store_out

from backend.errors import SimError
from backend.interpreter import run
from backend.isa import DType, Instr, Queue, make, queue_mask
from backend.program import Program

L, S, MX, V, SEL = (queue_mask(q) for q in Queue)


def _prog(*instrs) -> Program:
    return Program(instrs=list(instrs), dram_size=1 << 16)


def _load(off: int = 0, rows: int = 16, **hdr):
    return make("LOAD", dtype="int8", dst_buf="act", dst_off=off, dst_stride=64, src_addr=0,
                src_stride=64, rows=rows, cols=64, **hdr)  # fmt: skip


def _matmul(**hdr):
    return make("MATMUL", mode="int8", a_buf="act", a_off=0, a_stride=64, b_buf="wgt", b_off=0,
                b_stride=16, c_buf="acc", c_off=0, c_stride=16, m=16, n=16, k=64,
                **hdr)  # fmt: skip


# ---- deadlock -----------------------------------------------------------------------------------


def test_deadlock_missing_signal_reports_each_blocked_head() -> None:
    prog = _prog(_load(), _matmul(wait=L), make("FINISH"))  # the load never signals
    with pytest.raises(SimError) as e:
        run(prog, None, "spatten")
    msg = str(e.value)
    assert "deadlock" in msg
    assert "matrix queue head: instruction 1 (matmul) waits for a token from load" in msg
    assert "select queue head: instruction 2 (finish) waits for the other queues to drain" in msg
    assert e.value.index == 1


def test_deadlock_cycle() -> None:
    prog = _prog(_load(wait=MX, signal=MX), _matmul(wait=L, signal=L))
    with pytest.raises(SimError, match=r"instruction 0 \(load\) waits for a token from matrix"):
        run(prog, None, "spatten", timing_only=True)


def test_correct_tokens_run() -> None:
    rep = run(_prog(_load(signal=MX), _matmul(wait=L), make("FINISH")), None, "spatten").report
    assert rep.instructions == 3 and not rep.unconsumed_tokens


# ---- races --------------------------------------------------------------------------------------


def test_race_detected_without_token() -> None:
    prog = _prog(_load(), _matmul(), make("FINISH"))  # matmul reads act while the load writes it
    with pytest.raises(SimError, match=r"instruction 1: race: matmul .* instruction 0 load"):
        run(prog, None, "spatten")
    with pytest.raises(SimError, match="race"):
        run(prog, None, "spatten", timing_only=True)


def test_no_race_on_disjoint_ranges_or_interleaved_columns() -> None:
    # load writes act rows at offset 4096 (disjoint from the matmul's A tile) → no race
    run(_prog(_load(off=4096), _matmul(), make("FINISH")), None, "spatten")
    # two vector-vs-load tiles on interleaved columns of one 128-wide matrix: no shared byte
    vec = make("VEC", op="copy", dtype="int8", dst_buf="vec", dst_off=0, dst_stride=64,
               a_buf="act", a_off=64, a_stride=128, rows=8, cols=64)  # fmt: skip
    ld = make("LOAD", dtype="int8", dst_buf="act", dst_off=0, dst_stride=128, src_addr=0,
              src_stride=64, rows=8, cols=64)  # fmt: skip
    run(_prog(ld, vec, make("FINISH")), None, "spatten")
    # ...but overlapping columns do race
    vec2 = make("VEC", op="copy", dtype="int8", dst_buf="vec", dst_off=0, dst_stride=64,
                a_buf="act", a_off=32, a_stride=128, rows=8, cols=64)  # fmt: skip
    with pytest.raises(SimError, match="race"):
        run(_prog(ld, vec2, make("FINISH")), None, "spatten")


def test_read_read_is_not_a_race() -> None:
    mm = _matmul()
    vec = make("VEC", op="copy", dtype="int8", dst_buf="vec", dst_off=0, dst_stride=64,
               a_buf="act", a_off=0, a_stride=64, rows=16, cols=64)  # fmt: skip
    run(_prog(mm, vec, make("FINISH")), None, "spatten")


# ---- invalid fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instr", "pattern"),
    [
        (make("MATMUL", mode="sp24", a_buf="act", a_off=0, a_stride=6, b_buf="wgt", b_off=0,
              b_stride=4, c_buf="acc", c_off=0, c_stride=4, m=2, n=4, k=6), "divisible by 4"),
        (make("LOAD", dtype="int4", dst_buf="act", dst_off=0, dst_stride=4, src_addr=0,
              src_stride=4, rows=1, cols=3), "even cols"),
        (make("TOPK", src_buf="idx", src_off=0, src_stride=4, rows=1, n=4, k=5, dst_buf="idx",
              dst_off=64), "exceeds n"),
        (make("VEC", op="exp", dtype="int8", dst_buf="vec", dst_off=0, dst_stride=4, a_buf="vec",
              a_off=0, a_stride=4, rows=1, cols=4), "float dtype"),
        (make("MATMUL", mode="fp16", a_buf="act", a_off=0, a_stride=4, b_buf="wgt", b_off=0,
              b_stride=4, c_buf="acc", c_off=0, c_stride=4, m=1, n=4, k=4, mask=1),
         "mask needs mode int8"),
    ],
)  # fmt: skip
def test_invalid_fields(instr, pattern: str) -> None:
    with pytest.raises(SimError, match=f"instruction 0: .*{pattern}"):
        run(_prog(instr), None, "spatten")


def test_dataflow_the_config_lacks_is_an_error() -> None:
    ws = make("MATMUL", mode="int8", a_buf="act", a_off=0, a_stride=64, b_buf="wgt", b_off=0,
              b_stride=16, c_buf="acc", c_off=0, c_stride=16, m=16, n=16, k=64, flow="is")  # fmt: skip
    with pytest.raises(SimError, match="instruction 0: .*dataflow 'is' is not supported by "
                       "config 'edge' \\(matrix.dataflows: os, ws\\)"):  # fmt: skip
        run(_prog(ws, make("FINISH")), None, "edge", timing_only=True)
    run(_prog(ws, make("FINISH")), None, "spatten", timing_only=True)  # spatten has all three


def test_select_instruction_after_finish() -> None:
    with pytest.raises(SimError, match="instruction 1: select-queue instruction after FINISH"):
        run(_prog(make("FINISH"), make("NOP")), None, "spatten")


# ---- modes, report, trace -----------------------------------------------------------------------


def _small() -> Builder:
    b = Builder()
    rng = np.random.default_rng(40)
    load_store(b, rng.integers(-128, 128, (16, 32)).astype(np.int8), DType.INT8, "act", 0, "a")
    load_store(b, rng.integers(-128, 128, (32, 16)).astype(np.int8), DType.INT8, "wgt", 0, "b")
    b.add("MATMUL", mode="int8", a_buf="act", a_off=0, a_stride=32, b_buf="wgt", b_off=0,
          b_stride=16, c_buf="acc", c_off=0, c_stride=16, m=16, n=16, k=32,
          comment="layer1.fc matmul")  # fmt: skip
    store_out(b, (16, 16), DType.INT32, "acc", 0)
    return b


def test_timing_only_matches_functional_timing() -> None:
    b = _small()
    full = b.run()
    fast = b.run(timing_only=True)
    assert fast.outputs == {}
    assert fast.report.cycles == full.report.cycles
    assert fast.report.macs_useful == full.report.macs_useful


def test_report_json_deterministic_and_complete() -> None:
    b = _small()
    r1, r2 = b.run(), b.run()
    assert r1.report.to_json() == r2.report.to_json()
    d = json.loads(r1.report.to_json())
    for key in (
        "cycles",
        "queues",
        "macs_useful",
        "macs_issued",
        "dram_read",
        "dram_write",
        "sram_read",
        "sram_write",
        "energy_pj",
        "bound",
        "efficiency",
        "per_tag",
    ):
        assert key in d  # fmt: skip
    assert d["macs_useful"]["int8"] == 16 * 16 * 32
    assert d["per_tag"]["layer1.fc"]["macs"] == 16 * 16 * 32
    assert 0 < d["efficiency"] <= 1
    assert d["energy_pj"]["total"] == pytest.approx(sum(
        v for k, v in d["energy_pj"].items() if k != "total"), rel=1e-5)  # fmt: skip
    text = r1.report.table()
    assert "cycles" in text and "layer1.fc" in text


def test_trace_one_track_per_queue() -> None:
    r = _small().run(trace=True)
    ev = r.trace_events
    json.dumps(ev)
    names = {e["args"]["name"] for e in ev if e["name"] == "thread_name"}
    assert names == {"load", "store", "matrix", "vector", "select"}
    spans = [e for e in ev if e["ph"] == "X"]
    assert len(spans) == 5
    assert {e["tid"] for e in spans} == {0, 1, 2, 4}
    assert [e["name"] for e in spans if e["tid"] == 0] == ["load", "load"]


def test_inputs_are_validated() -> None:
    b = _small()
    with pytest.raises(SimError, match="missing input"):
        run(b.program(), {"a": b.inputs["a"]}, "spatten")
    with pytest.raises(SimError, match="shape"):
        run(b.program(), {"a": b.inputs["a"], "b": b.inputs["a"]}, "spatten")


def test_out_of_range_fields_built_without_make() -> None:
    good = make("SETP", pdst=1, value=1)
    bad_buf = make("LOAD", dtype="int8", dst_buf="act", dst_off=0, dst_stride=4, src_addr=0,
                   src_stride=4, rows=1, cols=4)  # fmt: skip
    bad_buf = Instr(bad_buf.cls, {**bad_buf.args, "dst_buf": 9})
    with pytest.raises(SimError, match="instruction 1: load: invalid field 'dst_buf'"):
        run(_prog(good, bad_buf), None, "spatten")
    with pytest.raises(SimError, match="instruction 0: setp: invalid header"):
        run(_prog(Instr(good.cls, good.args, pred=17)), None, "spatten")


def test_decode_gather_sources_conservative_or_exact() -> None:
    from backend.interpreter.operands import DRAM, decode

    g = make("GATHER", dtype="int8", dst_buf="act", dst_off=0, dst_stride=8, src_addr=4096,
             src_stride=8, idx_buf="idx", idx_off=0, rows=4, cols=8)  # fmt: skip
    src = decode(g)["src"]  # default: conservative, every table row from the base on
    assert src.space == DRAM and src.off == 4096 and src.end > 2**32
    assert decode(g, conservative=False)["src"].empty


def test_race_on_gathered_dram_rows() -> None:
    # a STORE writes DRAM rows 2..3 of a table while a GATHER (no token) reads rows 0 and 3
    b = Builder()
    table = b.input("t", np.zeros((4, 8), np.int8), DType.INT8)
    load_store(b, np.array([[0, 3]], np.int32), DType.INT32, "idx", 0, "i")
    b.add("STORE", dtype="int8", src_buf="vec", src_off=0, src_stride=8,
          dst_addr=table.addr + 16, dst_stride=8, rows=2, cols=8)  # fmt: skip
    b.add("GATHER", dtype="int8", dst_buf="act", dst_off=0, dst_stride=8, src_addr=table.addr,
          src_stride=8, idx_buf="idx", idx_off=0, rows=2, cols=8)  # fmt: skip
    with pytest.raises(SimError, match=r"instruction 2: race: gather .* dram\[16:32\]"):
        run(b.program(serial=False, finish=False), b.inputs, "spatten")
    b.specs[-1][1]["rows"] = 1  # gather row 0 only: no shared byte, no race
    run(b.program(serial=False, finish=False), b.inputs, "spatten")


def test_report_totals_are_sums_of_instruction_costs() -> None:
    from backend.config import load_config
    from backend.cost import cost

    b = _small()
    prog = b.program()
    rep = run(prog, b.inputs, "spatten").report
    costs = [cost(i, load_config("spatten")) for i in prog.instrs]
    assert rep.dram_read == sum(c.dram_read for c in costs)
    assert rep.dram_write == sum(c.dram_write for c in costs)
    assert rep.sram_read == sum(c.sram_read for c in costs)
    assert rep.energy_total_pj == pytest.approx(sum(c.energy_total for c in costs))
    assert sum(q.busy for q in rep.queues.values()) == sum(c.cycles for c in costs)
