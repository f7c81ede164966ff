"""MATMUL semantics vs independent numpy references (integer paths bit-exact)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_interp_util import Builder, load_store, pack4, store_out

from backend.errors import SimError
from backend.isa import DType


def _matmul_prog(
    a: np.ndarray,
    b_stored: np.ndarray,
    mode: str,
    b_dt: DType,
    tb: bool = False,
    acc_init: np.ndarray | None = None,
    meta: bytes | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    m, k = a.shape
    n = b_stored.shape[0] if tb else b_stored.shape[1]
    b = Builder()
    a_dt = DType.FP16 if mode in ("fp16", "sp24h") else DType.INT8
    c_dt = DType.FP32 if mode in ("fp16", "sp24h") else DType.INT32
    load_store(b, a, a_dt, "act", 0, "a")
    load_store(b, b_stored, b_dt, "wgt", 0, "b")
    extra = {}
    if meta is not None:
        s = b.input("meta", np.frombuffer(meta, np.int8).reshape(1, -1), DType.INT8)
        b.add("LOAD", dtype="int8", dst_buf="idx", dst_off=0, dst_stride=len(meta),
              src_addr=s.addr, src_stride=len(meta), rows=1, cols=len(meta))  # fmt: skip
        extra.update(meta_buf="idx", meta_off=0)
    if mask is not None:
        s = b.input("mask", mask.astype(np.int8).reshape(1, -1), DType.INT8)
        b.add("LOAD", dtype="int8", dst_buf="idx", dst_off=512, dst_stride=m, src_addr=s.addr,
              src_stride=m, rows=1, cols=m)  # fmt: skip
        extra.update(mask=1, mask_buf="idx", mask_off=512)
    acc = 0
    if acc_init is not None:
        load_store(b, acc_init, c_dt, "acc", 0, "c0")
        acc = 1
    b.add("MATMUL", mode=mode, acc=acc, tb=int(tb), a_buf="act", a_off=0, a_stride=k,
          b_buf="wgt", b_off=0, b_stride=b_stored.shape[1], c_buf="acc", c_off=0, c_stride=n,
          m=m, n=n, k=k, **extra)  # fmt: skip
    store_out(b, (m, n), c_dt, "acc", 0)
    return b.run().outputs["y"]


def _i8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


def ref_int(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.int64) @ b.astype(np.int64)


@pytest.mark.parametrize("tb", [False, True])
def test_int8_exact(tb: bool) -> None:
    rng = np.random.default_rng(1)
    a, bm = _i8(rng, (33, 70)), _i8(rng, (70, 45))
    out = _matmul_prog(a, bm.T.copy() if tb else bm, "int8", DType.INT8, tb=tb)
    assert out.dtype == np.int32
    assert np.array_equal(out, ref_int(a, bm))


def test_int8_extremes_and_accumulate() -> None:
    a = np.full((4, 1024), -128, np.int8)
    bm = np.full((1024, 8), -128, np.int8)
    init = np.arange(32, dtype=np.int32).reshape(4, 8) * 1000
    out = _matmul_prog(a, bm, "int8", DType.INT8, acc_init=init)
    assert np.array_equal(out, ref_int(a, bm) + init)  # 2^24 + init: needs exact accumulation


def test_int8_large_k_uses_float64_exactly() -> None:
    rng = np.random.default_rng(2)
    a, bm = _i8(rng, (3, 2048)), _i8(rng, (2048, 5))
    a[0, :] = -128
    bm[:, 0] = -128
    assert np.array_equal(_matmul_prog(a, bm, "int8", DType.INT8), ref_int(a, bm))


@pytest.mark.parametrize("tb", [False, True])
def test_int4w_exact(tb: bool) -> None:
    rng = np.random.default_rng(3)
    a = _i8(rng, (9, 32))
    w = rng.integers(-8, 8, (32, 12)).astype(np.int8)
    out = _matmul_prog(a, w.T.copy() if tb else w, "int4w", DType.INT4, tb=tb)
    assert np.array_equal(out, ref_int(a, w))


def compress_24(dense_kn: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Independent 2:4 compression of B[K, N] along K: values [K/2, N] and nibbles [K/4, N]."""
    k, n = dense_kn.shape
    vals = np.zeros((k // 2, n), np.int8)
    nibbles = [0] * (k // 4 * n)
    for g in range(k // 4):
        for j in range(n):
            nz = [p for p in range(4) if dense_kn[4 * g + p, j] != 0]
            pad = [p for p in rng.permutation(4).tolist() if p not in nz]
            p0, p1 = sorted((nz + pad)[:2])
            vals[2 * g, j] = dense_kn[4 * g + p0, j]
            vals[2 * g + 1, j] = dense_kn[4 * g + p1, j]
            nibbles[g * n + j] = p0 | (p1 << 2)
    return vals, nibbles


def _sparse_24(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    d = _i8(rng, (k, n))
    for g in range(k // 4):
        for j in range(n):
            drop = rng.choice(4, size=2 + int(rng.integers(0, 2)), replace=False)
            d[4 * g + drop, j] = 0
    return d


@pytest.mark.parametrize("tb", [False, True])
def test_sp24_expansion_exact(tb: bool) -> None:
    rng = np.random.default_rng(4)
    k, n = 24, 10
    dense = _sparse_24(rng, k, n)
    a = _i8(rng, (7, k))
    if tb:  # stored [N, K]: compress rows of B^T along K
        vals_t, nib_t = compress_24(dense, rng)
        vals = vals_t.T.copy()
        nib = [nib_t[g * n + j] for j in range(n) for g in range(k // 4)]
    else:
        vals, nib = compress_24(dense, rng)
    meta = pack4(np.array([x - 16 if x > 7 else x for x in nib]))
    out = _matmul_prog(a, vals, "sp24", DType.INT8, tb=tb, meta=meta)
    assert np.array_equal(out, ref_int(a, dense))


def test_sp24_bad_metadata() -> None:
    rng = np.random.default_rng(5)
    vals = _i8(rng, (2, 4))
    meta = pack4(np.array([0b0101 - 0] * 4))  # pos0 == pos1 == 1
    with pytest.raises(SimError, match="twice"):
        _matmul_prog(_i8(rng, (2, 4)), vals, "sp24", DType.INT8, meta=meta)


def test_precision_mask_uses_msb_for_masked_rows() -> None:
    rng = np.random.default_rng(6)
    a, bm = _i8(rng, (6, 16)), _i8(rng, (16, 5))
    mask = np.array([0, 1, 0, 1, 1, 0])
    out = _matmul_prog(a, bm, "int8", DType.INT8, mask=mask)
    msb = (bm.astype(np.int64) // 16) * 16  # floor division = arithmetic shift
    ref = np.where(mask[:, None] == 1, ref_int(a, msb), ref_int(a, bm))
    assert np.array_equal(out, ref)


@pytest.mark.parametrize("tb", [False, True])
def test_fp16_matmul(tb: bool) -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((17, 40)).astype(np.float16)
    bm = rng.standard_normal((40, 23)).astype(np.float16)
    init = rng.standard_normal((17, 23)).astype(np.float32)
    out = _matmul_prog(a, bm.T.copy() if tb else bm, "fp16", DType.FP16, tb=tb, acc_init=init)
    ref = a.astype(np.float64) @ bm.astype(np.float64) + init
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 20),
    n=st.integers(1, 20),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**31),
    tb=st.booleans(),
)
def test_int8_random_shapes(m: int, n: int, k: int, seed: int, tb: bool) -> None:
    rng = np.random.default_rng(seed)
    a, bm = _i8(rng, (m, k)), _i8(rng, (k, n))
    out = _matmul_prog(a, bm.T.copy() if tb else bm, "int8", DType.INT8, tb=tb)
    assert np.array_equal(out, ref_int(a, bm))


def test_operand_cache_sees_rewrites_of_b() -> None:
    """Repeated MATMULs on one B tile; B is rewritten (whole, then one row) in between."""
    rng = np.random.default_rng(8)
    a = _i8(rng, (4, 8))
    b1, b2 = _i8(rng, (8, 6)), _i8(rng, (8, 6))
    row = _i8(rng, (1, 6))
    b = Builder()
    load_store(b, a, DType.INT8, "act", 0, "a")
    load_store(b, b1, DType.INT8, "wgt", 0, "b1")
    mm = dict(mode="int8", a_buf="act", a_off=0, a_stride=8, b_buf="wgt", b_off=0, b_stride=6,
              c_buf="acc", c_stride=6, m=4, n=6, k=8)  # fmt: skip
    b.add("MATMUL", c_off=0, **mm)
    load_store(b, b2, DType.INT8, "wgt", 0, "b2")
    b.add("MATMUL", c_off=256, **mm)
    load_store(b, row, DType.INT8, "wgt", 3 * 6, "r")  # overwrite row 3 of B only
    b.add("MATMUL", c_off=512, **mm)
    b.add("MATMUL", c_off=768, **mm)  # unchanged operands: cached conversion reused
    for j, off in enumerate((0, 256, 512, 768)):
        store_out(b, (4, 6), DType.INT32, "acc", off, name=f"y{j}")
    out = b.run().outputs
    b3 = b2.copy()
    b3[3] = row[0]
    assert np.array_equal(out["y0"], ref_int(a, b1))
    assert np.array_equal(out["y1"], ref_int(a, b2))
    assert np.array_equal(out["y2"], ref_int(a, b3))
    assert np.array_equal(out["y3"], ref_int(a, b3))


@pytest.mark.parametrize("tb", [False, True])
def test_sp24_compress_helper_roundtrip(tb: bool) -> None:
    from backend.interpreter.numerics import sp24_compress

    rng = np.random.default_rng(9)
    k, n = 16, 7
    dense = _sparse_24(rng, k, n)
    vals, meta = sp24_compress(dense, tb=tb)
    assert vals.shape == ((n, k // 2) if tb else (k // 2, n))
    a = _i8(rng, (5, k))
    out = _matmul_prog(a, vals, "sp24", DType.INT8, tb=tb, meta=meta)
    assert np.array_equal(out, ref_int(a, dense))
    with pytest.raises(ValueError, match="2:4"):
        sp24_compress(np.ones((4, 2), np.int8))


@pytest.mark.parametrize("tb", [False, True])
def test_sp24h_fp16_2_4_matmul(tb: bool) -> None:
    """sp24h: fp16 A × 2:4-compressed fp16 B (values + nibble metadata) == A · dense B."""
    from backend.interpreter.numerics import sp24_compress

    rng = np.random.default_rng(10)
    k, n = 32, 9
    dense = rng.standard_normal((k, n)).astype(np.float16)
    keep = np.argsort(rng.random((k // 4, 4, n)), axis=1)[:, :2, :]
    mask = np.zeros((k // 4, 4, n), bool)
    np.put_along_axis(mask, keep, True, axis=1)
    dense = np.where(mask.reshape(k, n), dense, np.float16(0))
    vals, meta = sp24_compress(dense, tb=tb)
    assert vals.dtype == np.float16
    a = rng.standard_normal((6, k)).astype(np.float16)
    init = rng.standard_normal((6, n)).astype(np.float32)
    out = _matmul_prog(a, vals, "sp24h", DType.FP16, tb=tb, meta=meta, acc_init=init)
    ref = a.astype(np.float64) @ dense.astype(np.float64) + init
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
