"""Reference semantics of the quant dialect (the formulas are defined once, in dialects/quant.py and
docs/quantization.md). Integer work is done in int64 and wrapped or clamped as the op says."""

from __future__ import annotations

from typing import Any

import numpy as np

from dialects import quant
from passes.quant_math import quantize_values

Array = np.ndarray


def _bits(t: Any) -> int:
    width = quant.int_width(t)
    assert width is not None
    return width


quantize = quantize_values  # clamp(rne(f32(x) · (1 / f32(s)))), defined in passes/quant_math.py


def dequantize(q: Array, scale: Array) -> Array:
    """f32(q) · f32(s) with s broadcast along the last dim; grouped [G, …, N] × [G, N] sums over g
    in order, in fp32."""
    s = np.asarray(scale, np.float32)
    if s.ndim == 2:
        lead = (1,) * (q.ndim - 2)
        out = q[0].astype(np.float32) * s[0].reshape(*lead, -1)
        for g in range(1, s.shape[0]):
            out = out + q[g].astype(np.float32) * s[g].reshape(*lead, -1)
        return out
    return q.astype(np.float32) * s


def wrap_int32(v: Array) -> Array:
    return v.astype(np.int64).astype(np.int32)


def linear(x: Array, w: Array, b: Array | None, groups: int) -> Array:
    """int32 x · wᵀ (+ b). The products are summed in float64, which is exact while
    K · 2^14 < 2^53; the result wraps to int32 as the hardware accumulator does."""
    xf, wf = x.astype(np.float64), w.astype(np.float64)
    if groups == 1:
        acc = (xf @ wf.T).astype(np.int64)
        if b is not None:
            acc = acc + b.astype(np.int64)
        return wrap_int32(acc)
    kg = w.shape[1] // groups
    parts = [xf[..., g * kg : (g + 1) * kg] @ wf[:, g * kg : (g + 1) * kg].T for g in range(groups)]
    return wrap_int32(np.stack(parts).astype(np.int64))


def round_shift(p: Array, shift: int) -> Array:
    """(p + 2^(shift−1)) >> shift on int64 without overflow (round half toward +∞)."""
    if shift == 0:
        return p
    return (p >> shift) + ((p >> (shift - 1)) & 1)


def requantize(acc: Array, mult: Array, shift: int, bits: int) -> Array:
    lo, hi = quant.int_range(bits)
    p = acc.astype(np.int64) * mult.astype(np.int64).reshape(-1)
    return np.clip(round_shift(p, shift), lo, hi).astype(np.int8)


IMPLS: dict[type, Any] = {
    quant.QuantizeOp: lambda op, a, c: quantize(a[0], a[1], _bits(op.result.type)),
    quant.DequantizeOp: lambda op, a, c: dequantize(a[0], a[1]),
    quant.LinearOp: lambda op, a, c: linear(
        a[0], a[1], a[2] if len(a) == 3 else None, op.int_prop("groups")
    ),
    quant.RequantizeOp: lambda op, a, c: requantize(
        a[0], a[1], op.int_prop("shift"), _bits(op.result.type)
    ),
}
