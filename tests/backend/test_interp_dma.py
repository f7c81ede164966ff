"""DMA semantics: LOAD/STORE (strided, every dtype, packed int4), LOADBP, GATHER, SCATTER, bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_interp_util import NP, Builder, load_store, pack4, store_out

from backend.errors import SimError
from backend.interpreter import fast
from backend.isa import DType


@pytest.mark.parametrize("dt", [DType.FP16, DType.FP32, DType.INT8, DType.INT32])
def test_load_store_strided_roundtrip(dt: DType) -> None:
    rng = np.random.default_rng(30)
    x = (rng.standard_normal((5, 7)) * 100).astype(NP[dt])
    b = Builder()
    s = b.input("x", x, dt)
    es = dt.bits // 8
    # rows 1..3, cols 2..5 of x into SRAM with a row stride of 9 elements at byte offset 40
    b.add("LOAD", dtype=dt, dst_buf="vec", dst_off=40, dst_stride=9,
          src_addr=s.addr + (7 + 2) * es, src_stride=7 * es, rows=3, cols=4)  # fmt: skip
    store_out(b, (3, 4), dt, "vec", 40, stride=9)
    assert np.array_equal(b.run().outputs["y"], x[1:4, 2:6])


def test_packed_int4_load_and_store_bit_exact() -> None:
    rng = np.random.default_rng(31)
    v = rng.integers(-8, 8, (4, 10)).astype(np.int8)
    raw = np.frombuffer(pack4(v), np.int8).reshape(4, 5)  # packed rows, independent encoder
    b = Builder()
    s = b.input("packed", raw, DType.INT8)
    b.add("LOAD", dtype="int4", dst_buf="wgt", dst_off=0, dst_stride=12, src_addr=s.addr,
          src_stride=5, rows=4, cols=10)  # fmt: skip
    # unpack through MOVE int4 → int8, and store the packed tile back as raw bytes
    b.add("MOVE", src_dtype="int4", dst_dtype="int8", dst_buf="act", dst_off=0, dst_stride=10,
          src_buf="wgt", src_off=0, src_stride=12, rows=4, cols=10)  # fmt: skip
    store_out(b, (4, 10), DType.INT8, "act", 0, name="unpacked")
    out = b.output("repacked", (4, 5), DType.INT8)
    b.add("STORE", dtype="int4", src_buf="wgt", src_off=0, src_stride=12, dst_addr=out.addr,
          dst_stride=5, rows=4, cols=10)  # fmt: skip
    r = b.run()
    assert np.array_equal(r.outputs["unpacked"], v)
    assert r.outputs["repacked"].tobytes() == pack4(v)


def test_int4_symbol_roundtrip() -> None:
    v = np.array([[-8, 7, 1, -1], [0, 3, -5, 6]], np.int8)
    b = Builder()
    load_store(b, v, DType.INT4, "wgt", 0, "x")
    store_out(b, (2, 4), DType.INT4, "wgt", 0)
    assert np.array_equal(b.run().outputs["y"], v)


def _planes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent bit-plane split: msb = signed high nibble, lsb = unsigned low nibble."""
    rows, cols = v.shape
    hi = [[(int(x) >> 4) for x in row] for row in v]
    lo = [[int(x) & 0xF for x in row] for row in v]
    pk = lambda m: np.frombuffer(pack4(np.array(m)), np.int8).reshape(rows, cols // 2)  # noqa: E731
    return pk(hi), pk(lo)


@pytest.mark.parametrize("both", [True, False])
def test_loadbp_msb_lsb_reconstructs_int8(both: bool) -> None:
    rng = np.random.default_rng(32)
    v = rng.integers(-128, 128, (6, 8)).astype(np.int8)
    v[0, :4] = [-128, 127, -1, 0]
    msb, lsb = _planes(v)
    b = Builder()
    sm, sl = b.input("msb", msb, DType.INT8), b.input("lsb", lsb, DType.INT8)
    b.add("LOADBP", plane="msb", dst_buf="act", dst_off=16, dst_stride=8, src_addr=sm.addr,
          src_stride=4, rows=6, cols=8)  # fmt: skip
    if both:
        b.add("LOADBP", plane="lsb", dst_buf="act", dst_off=16, dst_stride=8, src_addr=sl.addr,
              src_stride=4, rows=6, cols=8)  # fmt: skip
    store_out(b, (6, 8), DType.INT8, "act", 16)
    want = v if both else ((v.astype(np.int64) >> 4) << 4).astype(np.int8)
    assert np.array_equal(b.run().outputs["y"], want)


def test_gather_rows_from_dram_table() -> None:
    rng = np.random.default_rng(33)
    table = rng.standard_normal((12, 5)).astype(np.float16)
    idx = np.array([[11, 0, 4, 4]], np.int32)
    b = Builder()
    st = b.input("table", table, DType.FP16)
    load_store(b, idx, DType.INT32, "idx", 0, "i")
    b.add("GATHER", dtype="fp16", dst_buf="act", dst_off=0, dst_stride=5, src_addr=st.addr,
          src_stride=10, idx_buf="idx", idx_off=0, rows=4, cols=5)  # fmt: skip
    store_out(b, (4, 5), DType.FP16, "act", 0)
    assert np.array_equal(b.run().outputs["y"], table[idx[0]])


def test_gather_index_out_of_bounds() -> None:
    b = Builder()
    st = b.input("table", np.zeros((2, 4), np.int8), DType.INT8)
    load_store(b, np.array([[10**8]], np.int32), DType.INT32, "idx", 0, "i")
    b.add("GATHER", dtype="int8", dst_buf="act", dst_off=0, dst_stride=4, src_addr=st.addr,
          src_stride=4, idx_buf="idx", idx_off=0, rows=1, cols=4)  # fmt: skip
    with pytest.raises(SimError, match=r"instruction 1: gather: DRAM out of bounds"):
        b.run()


def _scatter_program(base: np.ndarray, rows: np.ndarray, idx: np.ndarray, dst_rows: int) -> Builder:
    """Copy ``base`` into the output table, then SCATTER ``rows`` at ``idx`` (fp16)."""
    n, cols = base.shape
    b = Builder()
    sb = b.input("base", base, DType.FP16)
    out = b.output("y", base.shape, DType.FP16)
    b.add("LOAD", dtype="fp16", dst_buf="vec", dst_off=0, dst_stride=cols, src_addr=sb.addr,
          src_stride=2 * cols, rows=n, cols=cols)  # fmt: skip
    b.add("STORE", dtype="fp16", src_buf="vec", src_off=0, src_stride=cols, dst_addr=out.addr,
          dst_stride=2 * cols, rows=n, cols=cols)  # fmt: skip
    load_store(b, rows, DType.FP16, "act", 0, "rows")
    load_store(b, idx[None], DType.INT32, "idx", 0, "i")
    b.add("SCATTER", dtype="fp16", src_buf="act", src_off=0, src_stride=cols, dst_addr=out.addr,
          dst_stride=2 * cols, dst_rows=dst_rows, idx_buf="idx", idx_off=0, rows=len(idx),
          cols=cols)  # fmt: skip
    return b


@pytest.mark.parametrize("idx", [[7, 0, 3], [2], [5, 1, 5]])  # [5, 1, 5]: the later row wins
def test_scatter_rows_into_dram_table(idx: list[int]) -> None:
    rng = np.random.default_rng(34)
    base = rng.standard_normal((9, 6)).astype(np.float16)
    rows = rng.standard_normal((len(idx), 6)).astype(np.float16)
    want = base.copy()
    for i, j in enumerate(idx):  # independent numpy scatter, in row order
        want[j] = rows[i]
    b = _scatter_program(base, rows, np.array(idx, np.int32), 9)
    assert np.array_equal(b.run().outputs["y"], want)
    with fast.disabled():  # the event loop too
        assert np.array_equal(b.run().outputs["y"], want)


@pytest.mark.parametrize("bad", [9, -1, 40])
def test_scatter_index_outside_the_table(bad: int) -> None:
    base = np.zeros((9, 6), np.float16)
    b = _scatter_program(base, np.ones((2, 6), np.float16), np.array([0, bad], np.int32), 9)
    # instructions: LOAD, STORE (the base), LOAD (rows), LOAD (idx) → the SCATTER is index 4
    with pytest.raises(
        SimError,
        match=rf"instruction 4: scatter: scatter index {bad} is outside the table's rows \[0, 9\)",
    ):
        b.run()


def test_sram_out_of_bounds_names_instruction() -> None:
    b = Builder()
    s = b.input("x", np.zeros((4, 64), np.int8), DType.INT8)
    b.add("LOAD", dtype="int8", dst_buf="idx", dst_off=32768 - 100, dst_stride=64,
          src_addr=s.addr, src_stride=64, rows=4, cols=64)  # fmt: skip
    with pytest.raises(SimError, match=r"instruction 0: load: SRAM out of bounds: idx\["):
        b.run()


def test_dram_out_of_bounds() -> None:
    b = Builder()
    b.add("LOAD", dtype="int8", dst_buf="act", dst_off=0, dst_stride=64, src_addr=2**31,
          src_stride=64, rows=1, cols=64)  # fmt: skip
    with pytest.raises(SimError, match="instruction 0: load: DRAM out of bounds"):
        b.run()
    with pytest.raises(SimError, match="DRAM out of bounds"):
        b.run(timing_only=True)  # static checks hold without numerics


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 6), half=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_loadbp_random(rows: int, half: int, seed: int) -> None:
    v = np.random.default_rng(seed).integers(-128, 128, (rows, 2 * half)).astype(np.int8)
    msb, lsb = _planes(v)
    b = Builder()
    sm, sl = b.input("msb", msb, DType.INT8), b.input("lsb", lsb, DType.INT8)
    for plane, s in (("msb", sm), ("lsb", sl)):
        b.add("LOADBP", plane=plane, dst_buf="act", dst_off=0, dst_stride=2 * half,
              src_addr=s.addr, src_stride=half, rows=rows, cols=2 * half)  # fmt: skip
    store_out(b, (rows, 2 * half), DType.INT8, "act", 0)
    assert np.array_equal(b.run().outputs["y"], v)


def test_split_bitplanes_helper_matches_loadbp() -> None:
    from backend.interpreter.numerics import split_bitplanes

    v = np.random.default_rng(34).integers(-128, 128, (3, 6)).astype(np.int8)
    msb, lsb = split_bitplanes(v)
    ref_msb, ref_lsb = _planes(v)
    assert msb.tobytes() == ref_msb.tobytes() and lsb.tobytes() == ref_lsb.tobytes()
