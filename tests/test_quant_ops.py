"""Reference semantics of the quant ops (compiler/reference_quant.py) against an independent integer
reference written with Python ints and Fractions: IEEE fp32 rounding done by hand, round half to even
for quantize, (x·M + 2^(s−1)) >> s for requantize, exact integer matmuls with int32 wrap-around."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "backend"))
from compile_util import model_from_ir  # noqa: E402

from compiler import reference  # noqa: E402
from compiler import reference_quant as rq  # noqa: E402
from passes.quant_math import clip_fraction, fixed_point  # noqa: E402

INT32 = (-(2**31), 2**31 - 1)


def srange(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def wrap32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


# ---- IEEE binary32 by hand ------------------------------------------------------------------------


def f32(v: Fraction | float) -> Fraction | float:
    """Round an exact value to the nearest binary32 (ties to even); ±inf on overflow."""
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return v
        v = Fraction(v)
    if v == 0:
        return Fraction(0)
    sign, a = (-1 if v < 0 else 1), abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, -126)  # subnormals share the smallest normal exponent
    ulp = Fraction(2) ** (e - 23)
    m = round(a / ulp)  # Fraction.__round__: half to even
    r = m * ulp
    if r >= Fraction(2) ** 128 - Fraction(2) ** 103:  # rounds past the largest finite value
        return sign * float("inf")
    return sign * r


def quantize_oracle(x: float, s: float, bits: int) -> int:
    """clamp(rne(f32(x) ⊗ (1 ⊘ f32(s)))) with each fp32 operation rounded by hand."""
    lo, hi = srange(bits)
    inv = f32(Fraction(1) / Fraction(s))
    if isinstance(x, float) and x in (float("inf"), float("-inf")):
        return hi if x > 0 else lo
    p = f32(Fraction(x) * inv)
    if isinstance(p, float):  # overflowed to ±inf
        return hi if p > 0 else lo
    return clamp(round(p), lo, hi)


def requantize_oracle(acc: int, m: int, shift: int, bits: int) -> int:
    half = (1 << (shift - 1)) if shift else 0
    return clamp((acc * m + half) >> shift, *srange(bits))


# ---- quantize ----------------------------------------------------------------------------------

F32 = st.floats(width=32, allow_nan=False)
SCALES = st.floats(float(np.float32(1e-30)), float(np.float32(1e30)), width=32)


@st.composite
def ties(draw: st.DrawFn) -> tuple[list[float], float]:
    """Values exactly halfway between two integers after scaling (s a power of two)."""
    s = 2.0 ** draw(st.integers(-20, 20))
    ks = draw(st.lists(st.integers(-300, 300), min_size=1, max_size=16))
    return [(k + 0.5) * s for k in ks], s


@settings(max_examples=150, deadline=None)
@given(st.lists(F32, min_size=1, max_size=16), SCALES, st.sampled_from([4, 8]))
@example([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -128.5, -127.5], 1.0, 8)
@example([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0.0], float(np.float32(1e-30)), 8)
@example([7.5, -8.5, -7.5, 6.5], 1.0, 4)
def test_quantize_matches_the_integer_oracle(xs: list[float], s: float, bits: int) -> None:
    got = rq.quantize(np.array(xs, np.float32), np.array([s], np.float32), bits)
    assert got.dtype == np.int8
    assert got.tolist() == [quantize_oracle(x, s, bits) for x in xs]


@settings(max_examples=100, deadline=None)
@given(ties(), st.sampled_from([4, 8]))
def test_quantize_ties_round_to_even(case: tuple[list[float], float], bits: int) -> None:
    xs, s = case
    got = rq.quantize(np.array(xs, np.float32), np.array([s], np.float32), bits)
    assert got.tolist() == [quantize_oracle(x, s, bits) for x in xs]
    lo, hi = srange(bits)
    for x, q in zip(xs, got.tolist(), strict=True):
        n = math.floor(x / s)  # x / s = n + 0.5 exactly (s is a power of two)
        assert q == clamp(n if n % 2 == 0 else n + 1, lo, hi)


def test_quantize_infinities_saturate() -> None:
    got = rq.quantize(np.array([np.inf, -np.inf], np.float32), np.array([0.1], np.float32), 8)
    assert got.tolist() == [127, -128]


# ---- requantize --------------------------------------------------------------------------------

ACC = st.integers(*INT32)
MULT = st.integers(0, 2**31 - 1)


@st.composite
def requant_case(draw: st.DrawFn) -> tuple[list[list[int]], list[int], int, int]:
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    acc = [[draw(ACC) for _ in range(cols)] for _ in range(rows)]
    per_channel = draw(st.booleans())
    m = [draw(MULT) for _ in range(cols if per_channel else 1)]
    return acc, m, draw(st.integers(0, 63)), draw(st.sampled_from([4, 8]))


@st.composite
def requant_ties(draw: st.DrawFn) -> tuple[list[list[int]], list[int], int, int]:
    """acc·M exactly at a .5 boundary: acc = (2k + 1)·2^(s−1), M = 1."""
    shift = draw(st.integers(1, 20))
    ks = draw(st.lists(st.integers(-200, 200), min_size=1, max_size=8))
    acc = [[clamp((2 * k + 1) << (shift - 1), *INT32) for k in ks]]
    return acc, [1], shift, draw(st.sampled_from([4, 8]))


@settings(max_examples=150, deadline=None)
@given(st.one_of(requant_case(), requant_ties()))
@example(([[INT32[1], INT32[0], 0, -1]], [2**31 - 1], 63, 8))
@example(([[INT32[1], INT32[0], 3, -3]], [2**31 - 1], 0, 8))
@example(([[-3, -1, 1, 3, 5, -5]], [1], 1, 8))  # ±0.5, ±1.5, ±2.5: half toward +inf
def test_requantize_matches_the_integer_oracle(
    case: tuple[list[list[int]], list[int], int, int],
) -> None:
    acc, m, shift, bits = case
    got = rq.requantize(np.array(acc, np.int32), np.array(m, np.int32), shift, bits)
    mm = m * len(acc[0]) if len(m) == 1 else m
    want = [
        [requantize_oracle(a, mc, shift, bits) for a, mc in zip(r, mm, strict=True)] for r in acc
    ]
    assert got.dtype == np.int8 and got.tolist() == want


def test_requantize_half_rounds_toward_plus_infinity() -> None:
    got = rq.requantize(np.array([-3, -1, 1, 3], np.int32), np.array([1], np.int32), 1, 8)
    assert got.tolist() == [-1, 0, 1, 2]  # −1.5 → −1, −0.5 → 0, 0.5 → 1, 1.5 → 2


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-9, 1e3), st.lists(st.integers(-(2**20), 2**20), min_size=1, max_size=8))
def test_fixed_point_multiplier_approximates_the_real_scale(real: float, acc: list[int]) -> None:
    m, shift = fixed_point(np.array([real]))
    mi = int(m[0])
    assert 2**30 <= mi < 2**31 and 0 <= shift <= 63  # 31 significant bits
    assert abs(mi - Fraction(real) * 2**shift) <= 1
    q = rq.requantize(np.array(acc, np.int32), m, shift, 8).tolist()
    for a, got in zip(acc, q, strict=True):  # |acc| / 2^shift ≤ 1/2: within one step of rint
        assert abs(got - clamp(round(a * real), -128, 127)) <= 1


# ---- linear and dequantize ----------------------------------------------------------------------


def matmul_oracle(x: list[list[int]], w: list[list[int]], b: list[int] | None, groups: int) -> list:
    k = len(w[0])
    kg = k // groups

    def acc(row: list[int], wr: list[int], g: int) -> int:
        return sum(row[i] * wr[i] for i in range(g * kg, (g + 1) * kg))

    if groups == 1:
        return [[wrap32(acc(r, wr, 0) + (b[o] if b else 0)) for o, wr in enumerate(w)] for r in x]
    return [[[wrap32(acc(r, wr, g)) for wr in w] for r in x] for g in range(groups)]


@st.composite
def linear_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int]:
    bits = draw(st.sampled_from([4, 8]))
    groups = draw(st.sampled_from([1, 2, 4]))
    k = groups * draw(st.integers(1, 6))
    n, rows = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, k)).astype(np.int8)
    extreme = draw(st.booleans())
    if extreme:
        x[:] = -128
    lo, hi = srange(bits)
    w = rng.integers(lo, hi + 1, (n, k)).astype(np.int8)
    if extreme:
        w[:] = lo
    b = None
    if groups == 1 and draw(st.booleans()):
        b = rng.integers(INT32[0], INT32[1], n, endpoint=True).astype(np.int32)
    return x, w, b, groups, bits


@settings(max_examples=150, deadline=None)
@given(linear_case())
def test_linear_is_the_exact_integer_matmul(
    case: tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int],
) -> None:
    x, w, b, groups, _ = case
    got = rq.linear(x, w, b, groups)
    want = matmul_oracle(x.tolist(), w.tolist(), None if b is None else b.tolist(), groups)
    assert got.dtype == np.int32 and got.tolist() == want


def test_linear_bias_wraps_like_an_int32_accumulator() -> None:
    x = np.full((1, 4), 127, np.int8)
    w = np.full((2, 4), 127, np.int8)
    b = np.array([2**31 - 1, -(2**31)], np.int32)
    got = rq.linear(x, w, b, 1).tolist()
    assert got == [[wrap32(4 * 127 * 127 + 2**31 - 1), 4 * 127 * 127 - 2**31]]
    assert got[0][0] < 0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2, 3]))
def test_dequantize_is_fp32_products_summed_in_group_order(seed: int, groups: int) -> None:
    rng = np.random.default_rng(seed)
    n, rows = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    if groups == 0:  # per tensor, from i8
        q = rng.integers(-128, 128, (rows, n)).astype(np.int8)
        s = (rng.random(1) * 0.1).astype(np.float32)
        want = [[f32(Fraction(int(v)) * Fraction(float(s[0]))) for v in r] for r in q.tolist()]
    elif groups == 1:  # per channel, from i32
        q = rng.integers(INT32[0], INT32[1], (rows, n), endpoint=True).astype(np.int32)
        s = (rng.random(n) * 1e-6).astype(np.float32)
        want = [
            [f32(Fraction(f32(Fraction(int(v)))) * Fraction(float(s[c]))) for c, v in enumerate(r)]
            for r in q.tolist()
        ]
    else:  # grouped accumulators [G, rows, n] with scales [G, n]: Σ_g in order, fp32 adds
        q = rng.integers(-(2**20), 2**20, (groups, rows, n)).astype(np.int32)
        s = (rng.random((groups, n)) * 1e-3).astype(np.float32)
        want = []
        for r in range(rows):
            row = []
            for c in range(n):
                total: Fraction | float = Fraction(0)
                for g in range(groups):
                    term = f32(Fraction(int(q[g, r, c])) * Fraction(float(s[g, c])))
                    total = f32(Fraction(total) + Fraction(term))
                row.append(total)
            want.append(row)
    got = rq.dequantize(q, s)
    assert got.dtype == np.float32
    assert [[Fraction(float(v)) for v in r] for r in got.tolist()] == want


# ---- through the reference executor --------------------------------------------------------------


def test_ops_run_through_the_reference_executor() -> None:
    """A quantize → linear → requantize / dequantize program on the reference executor equals the
    integer oracle composed by hand (the IMPLS registration and operand order)."""
    t = "tensor<{}>".format
    body = f"""    %s = nn.weight @s : {t("1xf32")}
    %q = quant.quantize %x, %s : ({t("3x8xf32")}, {t("1xf32")}) -> {t("3x8xi8")}
    %w = nn.weight @w : {t("4x8xi4")}
    %b = nn.weight @b : {t("4xi32")}
    %a = quant.linear %q, %w, %b {{groups = 1}} : ({t("3x8xi8")}, {t("4x8xi4")}, {t("4xi32")}) -> {t("3x4xi32")}
    %g = quant.linear %q, %w {{groups = 2}} : ({t("3x8xi8")}, {t("4x8xi4")}) -> {t("2x3x4xi32")}
    %m = nn.weight @m : {t("4xi32")}
    %r = quant.requantize %a, %m {{shift = 12}} : ({t("3x4xi32")}, {t("4xi32")}) -> {t("3x4xi8")}
    %gs = nn.weight @gs : {t("2x4xf32")}
    %y = quant.dequantize %g, %gs : ({t("2x3x4xi32")}, {t("2x4xf32")}) -> {t("3x4xf32")}
    func.return %r, %y : {t("3x4xi8")}, {t("3x4xf32")}"""
    rng = np.random.default_rng(7)
    weights = {
        "s": np.array([0.02], np.float32),
        "w": rng.integers(-8, 8, (4, 8)).astype(np.int8),
        "b": rng.integers(-5000, 5000, 4).astype(np.int32),
        "m": rng.integers(1, 2**10, 4).astype(np.int32),
        "gs": (rng.random((2, 4)) * 0.01).astype(np.float32),
    }
    model = model_from_ir(body, f"%x: {t('3x8xf32')}", f"({t('3x4xi8')}, {t('3x4xf32')})", weights)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    out = reference.run(model, {"x": x})
    xq = [[quantize_oracle(float(v), 0.02, 8) for v in r] for r in x.tolist()]
    w, m = weights["w"].tolist(), weights["m"].tolist()
    acc = matmul_oracle(xq, w, weights["b"].tolist(), 1)
    want_r = [[requantize_oracle(a, m[c], 12, 8) for c, a in enumerate(r)] for r in acc]
    assert out["out0"].tolist() == want_r
    gacc = matmul_oracle(xq, w, None, 2)
    gs = weights["gs"]
    want_y = rq.dequantize(np.array(gacc, np.int32), gs)
    assert np.array_equal(out["out1"], want_y)
    assert gacc[0][0][0] + gacc[1][0][0] == matmul_oracle(xq, w, None, 1)[0][0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-300, 300, width=32), min_size=1, max_size=20), st.sampled_from([4, 8]))
@example([127.5, -128.5, 126.5, -127.5, -128.0, 128.0], 8)
def test_clip_fraction_counts_saturated_values(xs: list[float], bits: int) -> None:
    lo, hi = srange(bits)
    want = sum(not lo <= round(Fraction(x)) <= hi for x in xs) / len(xs)  # s = 1: no fp32 rounding
    assert clip_fraction(np.array(xs, np.float32), 1.0, bits) == want
