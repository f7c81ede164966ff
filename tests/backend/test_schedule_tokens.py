"""Scheduler: dependencies from memory ranges, minimal balanced tokens, planted bugs are caught."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from compile_util import random_inputs, small_zoo

from backend.compile import compile_module
from backend.config import load_config
from backend.errors import SimError
from backend.interpreter import run
from backend.isa import Instr, Queue, make
from backend.schedule import dependencies, insert_tokens, schedule
from compiler import reference

SP = load_config("spatten")
KW = {"layers": 1, "dim": 64, "heads": 2, "mlp_dim": 128, "seq": 16, "vocab": 100}


def _load(off: int, addr: int = 4096) -> Instr:
    return make("LOAD", dtype="fp16", dst_buf="act", dst_off=off, dst_stride=16,
                src_addr=addr, src_stride=32, rows=16, cols=16)  # fmt: skip


def _mm(a: int, c: int) -> Instr:
    return make("MATMUL", mode="fp16", a_buf="act", a_off=a, a_stride=16, b_buf="act",
                b_off=a, b_stride=16, c_buf="acc", c_off=c, c_stride=16, m=16, n=16, k=16)  # fmt: skip


def _move(c: int, dst: int) -> Instr:
    return make("MOVE", src_dtype="fp32", dst_dtype="fp16", dst_buf="vec", dst_off=dst,
                dst_stride=16, src_buf="acc", src_off=c, src_stride=16, rows=16, cols=16)  # fmt: skip


def _store(src: int, addr: int) -> Instr:
    return make("STORE", dtype="fp16", src_buf="vec", src_off=src, src_stride=16,
                dst_addr=addr, dst_stride=32, rows=16, cols=16)  # fmt: skip


def test_dependencies_raw_war_waw() -> None:
    instrs = [_load(0), _mm(0, 0), _load(0), _move(0, 0), _store(0, 8192), _load(0, 8192)]
    deps = dependencies(instrs, readonly_end=4096)
    assert deps[1] == [0]  # RAW act
    assert deps[2] == [0, 1]  # WAW with load 0, WAR with the matmul's read
    assert deps[3] == [1]  # RAW acc
    assert deps[4] == [3]  # RAW vec
    assert deps[5] == [2, 4]  # WAW act, RAW DRAM written by the store


def test_war_waits_for_every_reader() -> None:
    """Two readers in one queue: the list scheduler may reorder them, so a later write must
    depend on both (regression: keeping only the last reader per queue raced on bert-base)."""
    instrs = [_load(0), _mm(0, 0), _mm(0, 1024), _load(0)]
    assert dependencies(instrs, readonly_end=4096)[3] == [0, 1, 2]


def test_readonly_data_not_tracked() -> None:
    """Reads of the data section never conflict; writing it is a compiler bug."""
    assert dependencies([_load(0, 0), _load(512, 0)], readonly_end=4096) == [[], []]
    with pytest.raises(ValueError, match="read-only"):
        dependencies([_store(0, 0)], readonly_end=4096)


def test_transitive_tokens_are_omitted() -> None:
    # load → matmul → move, and the move also (transitively) after the load: one token each hop
    instrs = [_load(0), _mm(0, 0), _move(0, 0)]
    preds = [[], [0], [0, 1]]
    out = insert_tokens(instrs, [0, 1, 2], preds)
    assert out[0].signal == 1 << Queue.MATRIX
    assert out[1].wait == 1 << Queue.LOAD and out[1].signal == 1 << Queue.VECTOR
    assert out[2].wait == 1 << Queue.MATRIX  # the load dependency is implied


def test_schedule_ends_with_finish_and_balances() -> None:
    instrs = [_load(0), _mm(0, 0), _move(0, 0), _store(0, 8192), _load(0, 8192), _mm(0, 1024)]
    out, est, _ = schedule(instrs, SP, readonly_end=4096)
    assert out[-1].cls.name == "FINISH"
    _assert_balanced(out)
    res = run(_program(out), {}, SP)
    assert not res.report.unconsumed_tokens
    assert est.cycles > 0


def _program(instrs: list[Instr]):
    from backend.program import Program

    return Program(instrs=instrs, data=bytes(4096), dram_size=16384, config_name="spatten")


def _assert_balanced(instrs: list[Instr]) -> None:
    sig = np.zeros((5, 5), int)
    wt = np.zeros((5, 5), int)
    for i in instrs:
        q = int(i.cls.queue)
        for o in range(5):
            sig[q, o] += i.signal >> o & 1
            wt[o, q] += i.wait >> o & 1
    assert (sig == wt).all(), (sig, wt)


@pytest.fixture(scope="module")
def compiled():
    m = small_zoo("gpt2", **KW)
    return m, compile_module(m.module, m.weights, "spatten")


def test_compiled_tokens_balanced(compiled) -> None:
    m, c = compiled
    _assert_balanced(c.program.instrs)
    res = run(c.program, random_inputs(m), "spatten")
    assert not res.report.unconsumed_tokens


def _pairs(instrs: list[Instr], a: int, b: int) -> list[tuple[int, int]]:
    sigs = [n for n, i in enumerate(instrs) if int(i.cls.queue) == a and i.signal >> b & 1]
    waits = [n for n, i in enumerate(instrs) if int(i.cls.queue) == b and i.wait >> a & 1]
    return list(zip(sigs, waits, strict=True))


def _drop(c, s: int, w: int, a: int, b: int):
    instrs = list(c.program.instrs)
    instrs[s] = replace(instrs[s], signal=instrs[s].signal & ~(1 << b))
    instrs[w] = replace(instrs[w], wait=instrs[w].wait & ~(1 << a))
    return replace(c.program, instrs=instrs)


def test_planted_missing_dependency_is_caught(compiled) -> None:
    """Drop a matrix → vector token pair: the vector op reads accumulators being written, and the
    interpreter's race check names both instructions."""
    m, c = compiled
    inputs = random_inputs(m)
    for s, w in _pairs(c.program.instrs, Queue.MATRIX, Queue.VECTOR):
        try:
            run(_drop(c, s, w, Queue.MATRIX, Queue.VECTOR), inputs, "spatten")
        except SimError as e:
            msg = str(e)
            assert "race" in msg and f"instruction {s}" in msg and f"instruction {w}" in msg, msg
            return
    raise AssertionError("no dropped matrix → vector token was reported as a race")


def test_every_matrix_to_vector_token_matters(compiled) -> None:
    """Without any one of them, the interpreter reports a race or the output goes wrong."""
    m, c = compiled
    inputs = random_inputs(m)
    ref = reference.run(m, inputs)["out0"]
    pairs = _pairs(c.program.instrs, Queue.MATRIX, Queue.VECTOR)
    for s, w in pairs:
        try:
            out = run(_drop(c, s, w, Queue.MATRIX, Queue.VECTOR), inputs, "spatten").outputs
        except SimError as e:
            assert "race" in str(e)
            continue
        assert np.abs(out["out0"].astype(np.float32) - ref).max() > 0.05, (s, w)


def test_dropped_signal_deadlocks(compiled) -> None:
    m, c = compiled
    instrs = list(c.program.instrs)
    s, _ = _pairs(instrs, Queue.LOAD, Queue.MATRIX)[0]
    instrs[s] = replace(instrs[s], signal=instrs[s].signal & ~(1 << Queue.MATRIX))
    with pytest.raises(SimError, match="deadlock"):
        run(replace(c.program, instrs=instrs), random_inputs(m), "spatten")


def test_dropped_wait_leaves_tokens(compiled) -> None:
    m, c = compiled
    instrs = list(c.program.instrs)
    _, w = _pairs(instrs, Queue.LOAD, Queue.MATRIX)[-1]
    instrs[w] = replace(instrs[w], wait=instrs[w].wait & ~(1 << Queue.LOAD))
    try:
        res = run(replace(c.program, instrs=instrs), random_inputs(m), "spatten")
    except (
        SimError
    ) as e:  # a race on the instruction that lost its wait is also a correct diagnosis
        assert "race" in str(e) and f"instruction {w}" in str(e), str(e)
        return
    assert res.report.unconsumed_tokens
