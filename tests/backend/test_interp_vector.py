"""Vector-unit semantics (VEC, REQUANT, ROW, MOVE, VGATHER) vs independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_interp_util import Builder, load_store, store_out

from backend.isa import DType, to_f32


def _vec(op: str, x: np.ndarray, y: np.ndarray | None, dt: DType, bcast: str = "none",
         imm: float = 0.0) -> np.ndarray:  # fmt: skip
    b = Builder()
    r, c = load_store(b, x, dt, "vec", 0, "x")
    extra = {}
    if y is not None:
        load_store(b, y, dt, "vec", 8192, "w")
        extra = {"b_buf": "vec", "b_off": 8192, "b_stride": y.shape[1]}
    b.add("VEC", op=op, bcast=bcast, dtype=dt, dst_buf="act", dst_off=0, dst_stride=c,
          a_buf="vec", a_off=0, a_stride=c, rows=r, cols=c, imm=imm, **extra)  # fmt: skip
    store_out(b, (r, c), dt, "act", 0)
    return b.run().outputs["y"]


BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("bcast", ["none", "row", "col"])
def test_vec_binary_fp32(op: str, bcast: str) -> None:
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 7)).astype(np.float32)
    shape = {"none": (5, 7), "row": (1, 7), "col": (5, 1)}[bcast]
    y = (rng.standard_normal(shape) + 3).astype(np.float32)
    out = _vec(op, x, y, DType.FP32, bcast)
    np.testing.assert_allclose(out, BINARY[op](x, y), rtol=1e-6)


def test_vec_scalar_fp16() -> None:
    x = np.linspace(-4, 4, 24, dtype=np.float16).reshape(3, 8)
    out = _vec("mul", x, None, DType.FP16, "scalar", imm=0.5)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, (x.astype(np.float32) * 0.5).astype(np.float16))


@pytest.mark.parametrize(
    ("op", "ref"),
    [
        ("exp", math.exp),
        ("tanh", math.tanh),
        ("relu", lambda v: max(v, 0.0)),
        ("copy", lambda v: v),
        ("gelu", lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
        (
            "gelu_tanh",
            lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))),
        ),
    ],
)
def test_vec_unary(op: str, ref) -> None:
    x = np.linspace(-5, 3, 40, dtype=np.float32).reshape(4, 10)
    out32 = _vec(op, x, None, DType.FP32)
    want = np.array([[ref(float(v)) for v in row] for row in x])
    np.testing.assert_allclose(out32, want, rtol=2e-6, atol=1e-6)
    out16 = _vec(op, x.astype(np.float16), None, DType.FP16)
    np.testing.assert_allclose(out16.astype(np.float64), want, rtol=2e-3, atol=2e-3)


def test_vec_int8_saturates_and_int32_wraps() -> None:
    x = np.array([[100, -100, 5, -7]], np.int8)
    y = np.array([[100, -100, -9, 3]], np.int8)
    assert _vec("add", x, y, DType.INT8).tolist() == [[127, -128, -4, -4]]
    assert _vec("relu", x, None, DType.INT8).tolist() == [[100, 0, 5, 0]]
    xi = np.array([[2**31 - 1, -(2**31)]], np.int32)
    yi = np.array([[1, -1]], np.int32)
    assert _vec("add", xi, yi, DType.INT32).tolist() == [[-(2**31), 2**31 - 1]]


# ---- REQUANT ------------------------------------------------------------------------------------


def requant_ref(x: int, m: int, s: int, zp: int, bits: int) -> int:
    """Pure-Python reference: q = clamp(((x·m + 2^(s−1)) >> s) + zp)."""
    v = x * m + ((1 << (s - 1)) if s > 0 else 0)
    v = (v >> s) + zp
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return min(max(v, lo), hi)


def _requant(x: np.ndarray, out: str, mult: int | np.ndarray, shift: int, zp: int) -> np.ndarray:
    b = Builder()
    r, c = load_store(b, x, DType.INT32, "acc", 0, "x")
    out_dt = DType.INT8 if out == "int8" else DType.INT4
    extra: dict = {"mult": mult} if isinstance(mult, int) else {}
    if not isinstance(mult, int):
        load_store(b, np.asarray(mult, np.int32).reshape(1, -1), DType.INT32, "idx", 0, "m")
        extra = {"per_col": 1, "mult_buf": "idx", "mult_off": 0}
    b.add("REQUANT", out_dtype=out, dst_buf="act", dst_off=0, dst_stride=c, src_buf="acc",
          src_off=0, src_stride=c, rows=r, cols=c, shift=shift, zp=zp, **extra)  # fmt: skip
    store_out(b, (r, c), out_dt, "act", 0)
    return b.run().outputs["y"]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    mult=st.integers(-(2**31), 2**31 - 1),
    shift=st.integers(0, 63),
    zp=st.integers(-128, 127),
    out=st.sampled_from(["int8", "int4"]),
)
def test_requant_matches_integer_reference(
    seed: int, mult: int, shift: int, zp: int, out: str
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**31), 2**31, (3, 6), dtype=np.int64).astype(np.int32)
    x[0, 0], x[0, 1] = -(2**31), 2**31 - 1
    got = _requant(x, out, mult, shift, zp)
    bits = 8 if out == "int8" else 4
    want = [[requant_ref(int(v), mult, shift, zp, bits) for v in row] for row in x]
    assert got.tolist() == want


def test_requant_round_half_up_and_per_column() -> None:
    x = np.array([[3, -3, 5, -5], [1, -1, 7, -7]], np.int32)
    mults = np.array([1, 1, 3, -3], np.int32)
    got = _requant(x, "int8", mults, 1, 0)
    want = [[requant_ref(int(v), int(mults[j]), 1, 0, 8) for j, v in enumerate(row)] for row in x]
    assert got.tolist() == want
    assert got[0, :2].tolist() == [2, -1]  # 1.5 → 2, −1.5 → −1 (half toward +inf)


# ---- ROW ----------------------------------------------------------------------------------------


def _row(op: str, x: np.ndarray, dt: DType, **kw) -> np.ndarray:
    b = Builder()
    r, c = load_store(b, x, dt, "vec", 0, "x")
    extra = dict(kw)
    if op == "layernorm":
        g = extra.pop("gb")
        load_store(b, g.reshape(1, -1).astype(np.float32), DType.FP32, "idx", 0, "g")
        extra.update(g_buf="idx", g_off=0)
    wide = op in ("softmax", "layernorm")
    b.add("ROW", op=op, dtype=dt, dst_buf="act", dst_off=0, dst_stride=c if wide else 1,
          src_buf="vec", src_off=0, src_stride=c, rows=r, cols=c, **extra)  # fmt: skip
    store_out(b, (r, c if wide else 1), dt, "act", 0)
    return b.run().outputs["y"]


def softmax_ref(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_fp32_scale() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 13)).astype(np.float32)
    out = _row("softmax", x, DType.FP32, scale=0.125)
    np.testing.assert_allclose(out, softmax_ref(x.astype(np.float64) * 0.125), rtol=1e-5)


def test_softmax_causal_fp16() -> None:
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 8)).astype(np.float16)
    out = _row("softmax", x, DType.FP16, causal=1, row0=2)
    ref = x.astype(np.float64)
    for i in range(4):
        ref[i, i + 2 + 1 :] = -np.inf
    np.testing.assert_allclose(out.astype(np.float64), softmax_ref(ref), atol=1e-3)
    assert out[0, 3:].tolist() == [0] * 5


def test_layernorm() -> None:
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((5, 16)) * 3 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal(16), rng.standard_normal(16)
    eps = to_f32(1e-5)
    out = _row("layernorm", x, DType.FP32, eps=eps, gb=np.concatenate([gamma, beta]))
    xd = x.astype(np.float64)
    mu, var = xd.mean(1, keepdims=True), xd.var(1, keepdims=True)
    ref = (xd - mu) / np.sqrt(var + eps) * gamma.astype(np.float32) + beta.astype(np.float32)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_rowmax_rowsum() -> None:
    x = np.array([[1, 5, -2], [-7, -1, -3]], np.float32)
    assert _row("rowmax", x, DType.FP32).tolist() == [[5], [-1]]
    assert _row("rowsum", x, DType.FP32).tolist() == [[4], [-11]]
    xi = np.array([[1, 5, -2], [-7, -1, -3]], np.int32)
    assert _row("rowsum", xi, DType.INT32).tolist() == [[4], [-11]]


# ---- MOVE / VGATHER -----------------------------------------------------------------------------


def _move(x: np.ndarray, s_dt: DType, d_dt: DType, transpose: bool = False,
          scale: float = 1.0) -> np.ndarray:  # fmt: skip
    b = Builder()
    r, c = load_store(b, x, s_dt, "acc", 0, "x")
    dr, dc = (c, r) if transpose else (r, c)
    b.add("MOVE", src_dtype=s_dt, dst_dtype=d_dt, transpose=int(transpose), dst_buf="vec",
          dst_off=0, dst_stride=dc, src_buf="acc", src_off=0, src_stride=c, rows=r, cols=c,
          scale=scale)  # fmt: skip
    store_out(b, (dr, dc), d_dt, "vec", 0)
    return b.run().outputs["y"]


def test_move_int32_to_fp32_scaled_transposed() -> None:
    x = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000
    out = _move(x, DType.INT32, DType.FP32, transpose=True, scale=0.25)
    assert np.array_equal(out, (x.T * 0.25).astype(np.float32))


def test_move_fp32_fp16_int8_int4() -> None:
    x = np.array([[1.5, -2.5, 300.0, 0.1]], np.float32)
    assert np.array_equal(_move(x, DType.FP32, DType.FP16), x.astype(np.float16))
    assert _move(x, DType.FP32, DType.INT8).tolist() == [[2, -2, 127, 0]]  # half-even, saturate
    xi = np.array([[100, -100, 3, -4]], np.int32)
    assert _move(xi, DType.INT32, DType.INT4).tolist() == [[7, -8, 3, -4]]
    x4 = np.array([[7, -8, 3, -4, 0, 1]], np.int8)
    assert _move(x4, DType.INT4, DType.INT8).tolist() == x4.tolist()


def test_vgather_rows() -> None:
    rng = np.random.default_rng(14)
    x = rng.standard_normal((10, 6)).astype(np.float16)
    idx = np.array([[7, 0, 3, 3, 9]], np.int32)
    b = Builder()
    load_store(b, x, DType.FP16, "vec", 64, "x")
    load_store(b, idx, DType.INT32, "idx", 0, "i")
    b.add("VGATHER", dtype="fp16", dst_buf="act", dst_off=0, dst_stride=6, src_buf="vec",
          src_off=64, src_stride=6, idx_buf="idx", idx_off=0, rows=5, cols=6)  # fmt: skip
    store_out(b, (5, 6), DType.FP16, "act", 0)
    assert np.array_equal(b.run().outputs["y"], x[idx[0]])


@settings(max_examples=20, deadline=None)
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    op=st.sampled_from(sorted(BINARY)),
    bcast=st.sampled_from(["none", "row", "col"]),
    seed=st.integers(0, 2**31),
)
def test_vec_random_shapes(rows: int, cols: int, op: str, bcast: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    shape = {"none": (rows, cols), "row": (1, cols), "col": (rows, 1)}[bcast]
    y = (rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)).astype(np.float32)
    np.testing.assert_allclose(_vec(op, x, y, DType.FP32, bcast), BINARY[op](x, y), rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 7), cols=st.integers(1, 7), seed=st.integers(0, 2**31))
def test_move_transpose_random(rows: int, cols: int, seed: int) -> None:
    x = np.random.default_rng(seed).integers(-(2**20), 2**20, (rows, cols)).astype(np.int32)
    out = _move(x, DType.INT32, DType.FP32, transpose=True, scale=0.5)
    assert np.array_equal(out, (x.T.astype(np.float64) * 0.5).astype(np.float32))
