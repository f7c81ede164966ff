"""Quantization arithmetic shared by the quantize and mixed-precision passes: weight quantization
(symmetric, per tensor / channel / group along K), activation scale calibration, fixed-point
multipliers and error figures. The rounding itself is the quant dialect's (dialects/quant.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dialects.quant import int_range

CALIB_METHODS = ("minmax", "percentile", "mse")


def qmax(bits: int) -> int:
    return int_range(bits)[1]


@dataclass(frozen=True)
class Granularity:
    """ "tensor", "channel" or "group" (with its size along K)."""

    kind: str
    group: int = 0

    @staticmethod
    def parse(text: str) -> Granularity:
        if text in ("tensor", "channel"):
            return Granularity(text)
        if text.startswith("group:"):
            size = text.removeprefix("group:")
            if size.isdigit() and int(size) > 0:
                return Granularity("group", int(size))
        raise ValueError(
            f"granularity must be channel, tensor or group:G (G a positive integer), got '{text}'"
        )

    def groups(self, k: int) -> int:
        """How many K groups a weight with `k` in-features has (1 unless grouped)."""
        if self.kind != "group":
            return 1
        if k % self.group:
            raise ValueError(f"group size {self.group} does not divide K = {k}")
        return k // self.group


def quantize_values(x: np.ndarray, scale: object, bits: int) -> np.ndarray:
    """quant.quantize: clamp(rne(f32(x) ⊗ (1 ⊘ f32(s)))) to the signed `bits` range, int8 storage
    (±inf saturates, NaN → 0). The one implementation, used by the reference executor and the
    passes that simulate quantization."""
    inv = np.float32(1.0) / np.float32(np.asarray(scale, np.float32).reshape(-1)[0])
    lo, hi = int_range(bits)
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.rint(np.asarray(x, np.float32) * inv)
    return np.clip(np.nan_to_num(v, nan=0.0), lo, hi).astype(np.int8)


def weight_scales(w: np.ndarray, bits: int, gran: Granularity) -> np.ndarray:
    """Symmetric scales max|W| / qmax: [1] (tensor), [N] (channel) or [N, G] (group). A zero row
    gets scale 1 (any scale represents it exactly)."""
    a = np.abs(np.asarray(w, np.float64))
    if gran.kind == "tensor":
        m = np.array([a.max(initial=0.0)])
    elif gran.kind == "channel":
        m = a.max(axis=1, initial=0.0)
    else:
        n, k = a.shape
        m = a.reshape(n, gran.groups(k), -1).max(axis=2, initial=0.0)
    s = (m / qmax(bits)).astype(np.float32)
    return np.where(s > 0, s, np.float32(1.0)).astype(np.float32)


def expand_scales(s: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-element scales [N, K] of weight scales [1], [N] or [N, G]."""
    n, k = shape
    s = np.asarray(s, np.float64)
    if s.ndim == 2:
        return np.repeat(s, k // s.shape[1], axis=1)
    return np.broadcast_to(s.reshape(-1, 1) if s.size == n else s.reshape(1, 1), (n, k))


def quantize_rtn(w: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    """Round to nearest (half to even) and clamp: the integer weight, int8 storage."""
    lo, hi = int_range(bits)
    full = expand_scales(scales, w.shape)
    return np.clip(np.rint(np.asarray(w, np.float64) / full), lo, hi).astype(np.int8)


def dequantize_weight(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return q.astype(np.float64) * expand_scales(scales, q.shape)


def activation_scale(x: np.ndarray, bits: int, method: str, percentile: float = 99.99) -> float:
    """Per-tensor symmetric scale of calibration values `x` by min-max, percentile of |x| or the
    clipping bound that minimises the mean squared quantization error (grid of 100)."""
    a = np.abs(np.asarray(x, np.float64).reshape(-1))
    top = float(a.max(initial=0.0))
    if top == 0.0:
        return 1.0
    q = qmax(bits)
    if method == "minmax":
        bound = top
    elif method == "percentile":
        bound = float(np.percentile(a, percentile)) or top
    elif method == "mse":
        sample = a if a.size <= 65536 else a[:: a.size // 65536 + 1]
        best, bound = np.inf, top
        for frac in np.linspace(0.05, 1.0, 100):
            s = top * frac / q
            err = float(np.mean((np.minimum(np.rint(sample / s), q) * s - sample) ** 2))
            if err < best:
                best, bound = err, top * frac
    else:
        raise ValueError(f"calib must be one of {', '.join(CALIB_METHODS)}, got '{method}'")
    return float(np.float32(bound / q))


def clip_fraction(x: np.ndarray, scale: float, bits: int) -> float:
    """Fraction of values that quantization with `scale` saturates (rounds outside [qmin, qmax],
    with quant.quantize's own rounding)."""
    lo, hi = int_range(bits)
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.rint(np.asarray(x, np.float32).reshape(-1) * (np.float32(1.0) / np.float32(scale)))
    return float(np.mean((v > hi) | (v < lo))) if v.size else 0.0


def fixed_point(real: np.ndarray, max_shift: int = 63) -> tuple[np.ndarray, int]:
    """Integer multipliers M (int32) and one right shift s with M / 2^s ≈ real (per element), the
    largest multiplier using 31 bits. Used by quant.requantize."""
    r = np.asarray(real, np.float64).reshape(-1)
    top = float(r.max(initial=0.0))
    if not top > 0.0:
        raise ValueError("requantization scales must be positive")
    shift = min(max_shift, 30 - int(np.floor(np.log2(top))))
    shift = max(shift, 0)
    m = np.rint(r * 2.0**shift)
    return np.clip(m, 0, 2**31 - 1).astype(np.int32), shift


def sqnr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when exact)."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(approx, np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")
