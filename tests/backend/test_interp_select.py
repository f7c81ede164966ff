"""Select-unit semantics (TOPK, IMPACC, PREDICT, CMP/SETP) and predicated skip."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_interp_util import Builder, load_store, store_out

from backend.isa import DType, Queue, make, queue_mask


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    b = Builder()
    r, n = load_store(b, scores.astype(np.float32), DType.FP32, "idx", 0, "s")
    b.add("TOPK", src_buf="idx", src_off=0, src_stride=n, rows=r, n=n, k=k, dst_buf="idx",
          dst_off=8192)  # fmt: skip
    store_out(b, (r, k), DType.INT32, "idx", 8192)
    return b.run().outputs["y"]


def topk_ref(row: list[float], k: int) -> list[int]:
    """Pure Python: take k best by (score desc, index asc), return indices ascending."""
    best = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
    return sorted(best)


def test_topk_order_preserving_ties_to_lower_index() -> None:
    s = np.array([[1, 5, 5, 2, 5, 0], [3, 3, 3, 3, 3, 3]], np.float32)
    assert _topk(s, 2).tolist() == [[1, 2], [0, 1]]
    assert _topk(s, 4).tolist() == [[1, 2, 3, 4], [0, 1, 2, 3]]


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 4),
    n=st.integers(1, 40),
    data=st.data(),
    seed=st.integers(0, 2**31),
)
def test_topk_random(rows: int, n: int, data: st.DataObject, seed: int) -> None:
    k = data.draw(st.integers(1, n))
    rng = np.random.default_rng(seed)
    s = rng.integers(-4, 5, (rows, n)).astype(np.float32)  # many ties
    got = _topk(s, k)
    assert got.tolist() == [topk_ref(row.tolist(), k) for row in s]


def _impacc(x: np.ndarray, mode: str, heads: int, init: np.ndarray) -> np.ndarray:
    b = Builder()
    r, c = load_store(b, x, DType.FP16, "vec", 0, "x")
    load_store(b, init.reshape(1, -1), DType.FP32, "idx", 256, "init")
    b.add("IMPACC", mode=mode, src_dtype="fp16", src_buf="vec", src_off=0, src_stride=c,
          rows=r, cols=c, heads=heads, dst_buf="idx", dst_off=256)  # fmt: skip
    store_out(b, (1, init.size), DType.FP32, "idx", 256)
    return b.run().outputs["y"][0]


def test_impacc_colsum_and_headmag() -> None:
    rng = np.random.default_rng(20)
    x = rng.standard_normal((5, 12)).astype(np.float16)
    init = np.arange(12, dtype=np.float32)
    got = _impacc(x, "colsum", 1, init)
    np.testing.assert_allclose(got, init + x.astype(np.float64).sum(0), rtol=1e-6)
    init3 = np.ones(3, np.float32)
    got = _impacc(x, "headmag", 3, init3)
    want = [1 + np.abs(x[:, 4 * h : 4 * h + 4].astype(np.float64)).sum() for h in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def leading_one_ref(v: int) -> float:
    return 0.0 if v == 0 else math.copysign(2.0 ** math.floor(math.log2(abs(v))), v)


def test_predict_leading_one() -> None:
    rng = np.random.default_rng(21)
    a = rng.integers(-128, 128, (4, 9)).astype(np.int8)
    bt = rng.integers(-128, 128, (5, 9)).astype(np.int8)  # stored [N, K]
    b = Builder()
    load_store(b, a, DType.INT8, "act", 0, "a")
    load_store(b, bt, DType.INT8, "wgt", 0, "b")
    b.add("PREDICT", a_buf="act", a_off=0, a_stride=9, b_buf="wgt", b_off=0, b_stride=9, tb=1,
          m=4, n=5, k=9, c_buf="idx", c_off=0, c_stride=5)  # fmt: skip
    store_out(b, (4, 5), DType.FP32, "idx", 0)
    got = b.run().outputs["y"]
    want = [
        [sum(leading_one_ref(int(a[i, t])) * leading_one_ref(int(bt[j, t])) for t in range(9))
         for j in range(5)]
        for i in range(4)
    ]  # fmt: skip
    assert got.tolist() == want


def _cmp_program(threshold: float) -> tuple[Builder, np.ndarray]:
    """p1 = max(probs) < threshold; a VEC guarded by p1 doubles x, one guarded by !p1 negates."""
    b = Builder()
    probs = np.array([[0.02, 0.07, 0.01]], np.float32)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    load_store(b, probs, DType.FP32, "idx", 0, "p")
    load_store(b, x, DType.FP32, "vec", 0, "x")
    b.add("CMP", reduce="max", cmp="lt", dtype="fp32", src_buf="idx", src_off=0, src_stride=3,
          rows=1, cols=3, imm=threshold, pdst=1)  # fmt: skip
    b.add("VEC", op="mul", bcast="scalar", dtype="fp32", dst_buf="vec", dst_off=0, dst_stride=3,
          a_buf="vec", a_off=0, a_stride=3, rows=1, cols=3, imm=2.0, pred=1)  # fmt: skip
    b.add("VEC", op="sub", bcast="scalar", dtype="fp32", dst_buf="vec", dst_off=0, dst_stride=3,
          a_buf="vec", a_off=0, a_stride=3, rows=1, cols=3, imm=100.0, pred=1,
          pneg=True)  # fmt: skip
    store_out(b, (1, 3), DType.FP32, "vec", 0)
    return b, x


def test_cmp_predicate_and_skip() -> None:
    b, x = _cmp_program(0.0625)  # max 0.07 < 0.0625 is false → only the pneg VEC runs
    r = b.run()
    assert r.outputs["y"].tolist() == (x - 100).tolist()
    assert r.report.skipped == 1 and r.report.queues["vector"].skipped == 1
    b, x = _cmp_program(0.125)  # true → only the doubling runs
    r = b.run()
    assert r.outputs["y"].tolist() == (x * 2).tolist()
    assert r.report.skipped == 1


def test_skipped_instruction_costs_one_cycle_and_keeps_tokens() -> None:
    from backend.interpreter import run
    from backend.program import Program

    V, S = queue_mask(Queue.VECTOR), queue_mask(Queue.SELECT)
    big: dict[str, Any] = dict(op="exp", dtype="fp32", dst_buf="vec", dst_off=0, dst_stride=64, a_buf="vec",
               a_off=0, a_stride=64, rows=64, cols=64)  # fmt: skip
    prog = Program(
        instrs=[
            make("SETP", pdst=2, value=0, signal=V),
            make("VEC", pred=2, wait=S, signal=S, **big),
            make("FINISH", wait=V),
        ],
        dram_size=64,
    )
    rep = run(prog, None, "spatten").report
    assert rep.skipped == 1
    assert rep.queues["vector"].busy == 1
    assert rep.vector_ops == 0 and rep.energy_pj["vector"] == 0
    assert rep.cycles == 3  # setp (1) → skipped vec (1) → finish (1)


def test_timing_only_takes_both_sides_of_an_unknown_predicate() -> None:
    b, _ = _cmp_program(0.125)
    rep = b.run(timing_only=True).report
    assert rep.skipped == 0 and rep.queues["vector"].instrs == 2
