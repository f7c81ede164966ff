"""Vectorized numeric helpers: packed int4, erf/GELU, leading-one approximation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SQRT1_2 = 0.7071067811865476
SQRT_2_OVER_PI = 0.7978845608028654


def unpack_int4(raw: np.ndarray) -> np.ndarray:
    """(rows, b) packed bytes → (rows, 2b) signed int8 nibbles, low nibble first."""
    out = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.int8)
    out[:, 0::2] = (raw << 4).view(np.int8) >> 4
    out[:, 1::2] = raw.view(np.int8) >> 4
    return out


def unpack_nibbles(raw: np.ndarray) -> np.ndarray:
    """(rows, b) packed bytes → (rows, 2b) unsigned nibbles 0..15 (uint8), low nibble first."""
    out = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = raw & 0xF
    out[:, 1::2] = raw >> 4
    return out


def pack_int4(values: np.ndarray) -> np.ndarray:
    """(rows, 2b) integers (two's complement nibbles kept) → (rows, b) packed uint8."""
    v = values.astype(np.uint8)
    return (v[:, 0::2] & 0xF) | ((v[:, 1::2] & 0xF) << 4)


def int4_msb(w: np.ndarray) -> np.ndarray:
    """INT4-MSB of int8 values (FACT's low precision, the MATMUL precision mask): the high nibble
    alone, ``(w >> 4) << 4`` (arithmetic shift: rounds toward −∞; the LOADBP msb plane)."""
    return (np.asarray(w) >> 4) << 4


# element counts from which the vectorized casts below beat numpy's scalar cast loops
F16_FAST_MIN = 6144
F32_FAST_MIN = 8192
_F16_SCALE = np.float32(2.0**112)  # float32 exponent bias 127 - fp16 bias 15
_F16_SPECIAL = np.uint32(0x7C00 << 13)  # fp16 exponent all ones (inf/NaN), shifted into place
_F16_SPECIAL_FIX = np.uint32(224 << 23)  # exponent 31 → 255


def f16_to_f32(h: np.ndarray) -> np.ndarray:
    """float16 values (any strides) → a new float32 array, bit-identical to ``h.astype(float32)``.

    numpy's float16 cast is a scalar loop (~1.3 ns/element here, far slower on subnormals);
    this is a handful of vectorized integer passes. The magnitude bits shifted into a float32
    are scaled by 2^112, which is exact for zeros, subnormals and normals; inf/NaN (payload kept,
    as numpy does) are patched afterwards.
    """
    if h.size < F16_FAST_MIN:  # numpy's per-call overhead is lower
        return h.astype(np.float32)
    x = h.view(np.uint16).astype(np.uint32)
    s = x & 0x8000
    x ^= s
    x <<= 13
    special = bool(x.size) and bool(x.max() >= _F16_SPECIAL)
    big = x >= _F16_SPECIAL if special else x[:0]
    keep = x[big] + _F16_SPECIAL_FIX if special else x[:0]
    f = x.view(np.float32)
    f *= _F16_SCALE
    if special:
        x[big] = keep
    s <<= 16
    x |= s
    return f


_U = np.uint32


def store_f16(dst: np.ndarray, values: np.ndarray) -> None:
    """``dst`` (a float16 view) ← float32 ``values`` rounded as `f32_to_f16_bits`."""
    dst.view(np.uint16)[...] = f32_to_f16_bits(values)


def store_f16_t(dst: np.ndarray, values: np.ndarray, transpose: bool) -> None:
    """``store_f16(dst, values.T if transpose else values)``: converted first, then the 2-byte
    patterns transposed (half the bytes of transposing the float32 values)."""
    if transpose:
        dst.view(np.uint16)[...] = f32_to_f16_bits(values).T
    else:
        dst.view(np.uint16)[...] = f32_to_f16_bits(values)


def f32_to_f16_bits(f: np.ndarray) -> np.ndarray:
    """float32 values → uint16 float16 bit patterns, bit-identical to ``f.astype(float16)``.

    Round to nearest even; overflow → ±inf; subnormal results are rounded by a float32 add at
    the fp16 subnormal quantum (2^-24); NaN keeps the top payload bits (quiet if they are zero),
    as numpy does. Vectorized integer passes, ~1.5x faster than numpy's scalar cast loop.
    """
    if np.size(f) < F32_FAST_MIN:  # numpy's per-call overhead is lower
        return np.asarray(f, dtype=np.float32).astype(np.float16).view(np.uint16)
    x = np.array(f, dtype=np.float32, order="C").view(np.uint32)
    sign = x & _U(0x80000000)
    x ^= sign
    n = x >> _U(13)
    n &= _U(1)  # RNE: mantissa lsb kept
    n += x
    n += _U(0xC8000FFF)  # rebias exponent (-112 << 23), + half ulp - 1
    n >>= _U(13)
    if x.size and x.min() < _U(0x38800000):  # below 2^-14: zero or subnormal result
        small = x < _U(0x38800000)
        with np.errstate(invalid="ignore"):  # NaN inputs are replaced below
            sub = x.view(np.float32) + np.float32(0.5)
        np.copyto(n, sub.view(np.uint32) - _U(0x3F000000), where=small)
    if x.size and x.max() >= _U(0x47800000):  # ≥ 65536: overflow to inf, inf, NaN
        big = x >= _U(0x47800000)
        n[big] = _U(0x7C00)
        nan = x > _U(0x7F800000)
        pay = (x[nan] & _U(0x7FFFFF)) >> _U(13)
        n[nan] = _U(0x7C00) + pay + (pay == 0)
    sign >>= _U(16)
    n |= sign
    return n.astype(np.uint16)


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7).

    Evaluated in place, in the same operation order as
    ``sign(x)·(1 − t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·exp(−a·a))``, ``t = 1/(1 + p·a)``.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    t = a * 0.3275911
    t += 1.0
    np.divide(1.0, t, out=t)
    poly = t * 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += c
        poly *= t
    a *= a
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    np.multiply(np.sign(x), poly, out=poly)  # operand order kept: NaN payloads as before
    return poly


ERF_BLOCK = 8192  # elements per block of `erf_blocked`: temporaries stay in cache
ERF_BLOCKED_MIN = (
    1 << 18
)  # from this many elements on (measured: 2x faster at 605k, slower at 151k)


def _blocked(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``fn`` (elementwise, float64 result) over blocks of ``ERF_BLOCK`` elements when ``x`` is
    large: same bits, but the float64 temporaries stay in cache."""
    x = np.asarray(x)
    if x.size < ERF_BLOCKED_MIN:
        return fn(x)
    flat = x.reshape(-1)
    out = np.empty(flat.size, np.float64)
    for i in range(0, flat.size, ERF_BLOCK):
        out[i : i + ERF_BLOCK] = fn(flat[i : i + ERF_BLOCK])
    return out.reshape(x.shape)


def erf_blocked(x: np.ndarray) -> np.ndarray:
    """`erf` (same bits) computed over blocks of ``ERF_BLOCK`` elements: for large arrays the
    float64 temporaries of the one-shot evaluation cost more than the arithmetic."""
    return _blocked(erf, x)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU with erf: 0.5·x·(1 + erf(x/√2)), float64 (by blocks, as `erf_blocked`)."""
    return _blocked(_gelu, x)


def _gelu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = erf(x * SQRT1_2)
    e += 1.0
    h = x * 0.5
    h *= e
    return h


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation, float64."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def _leading_one_lut() -> np.ndarray:
    lut = np.zeros(256, dtype=np.float32)
    for u in range(256):
        v = u - 256 if u >= 128 else u
        if v:
            lut[u] = np.sign(v) * 2.0 ** (abs(v).bit_length() - 1)
    return lut


LEADING_ONE_LUT = _leading_one_lut()


def leading_one(x: np.ndarray) -> np.ndarray:
    """int8 → float32 sign·2^⌊log2|x|⌋ (0 stays 0)."""
    return LEADING_ONE_LUT[x.view(np.uint8)]


def sp24_compress(b: np.ndarray, tb: bool = False) -> tuple[np.ndarray, bytes]:
    """2:4-compress B[K, N] along K into MATMUL ``sp24`` (int8 B) or ``sp24h`` (fp16 B) operands
    (docs/hardware.md).

    Returns the values in B's dtype — [K/2, N], or [N, K/2] with ``tb`` — and the metadata bytes: one nibble
    ``pos0 | pos1 << 2`` per group of 4 along K, pos0 < pos1, dense [K/4, N] (``tb``: [N, K/4]),
    packed two per byte, low nibble first. Groups with fewer than two non-zeros are padded with
    their lowest zero positions. Raises ValueError unless K % 4 == 0 and every group is 2:4.
    """
    k, n = b.shape
    if k % 4:
        raise ValueError(f"sp24 needs K divisible by 4 (K={k})")
    g = b.reshape(k // 4, 4, n)
    nz = g != 0
    if np.any(nz.sum(axis=1) > 2):
        raise ValueError("B is not 2:4 sparse along K")
    key = (~nz).astype(np.int8) * 4 + np.arange(4, dtype=np.int8)[None, :, None]
    pos = np.sort(np.argsort(key, axis=1, kind="stable")[:, :2, :], axis=1)  # (K/4, 2, N)
    vals = np.take_along_axis(g, pos, axis=1).reshape(k // 2, n)
    nib = (pos[:, 0, :] | (pos[:, 1, :] << 2)).astype(np.int8)  # (K/4, N)
    if tb:
        vals, nib = np.ascontiguousarray(vals.T), np.ascontiguousarray(nib.T)
    flat = nib.reshape(1, -1)
    if flat.shape[1] % 2:
        flat = np.concatenate([flat, np.zeros((1, 1), np.int8)], axis=1)
    return vals, pack_int4(flat).tobytes()


def split_bitplanes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 [R, C] (C even) → the packed int4 planes LOADBP reads: (msb, lsb), each [R, C/2] uint8.

    msb holds ``v >> 4`` (signed high nibble), lsb ``v & 0xF`` (unsigned low nibble), so
    ``(msb << 4) + lsb == v``.
    """
    x = np.asarray(v, dtype=np.int8)
    if x.ndim != 2 or x.shape[1] % 2:
        raise ValueError(f"bit planes need a 2-D tensor with even columns, got shape {x.shape}")
    return pack_int4(x >> 4), pack_int4(x & 0xF)
