"""GPTQ (passes/gptq.py) against the optimal-brain-quantizer update written directly: after rounding
column i, the remaining columns F move by −δ·[H_F⁻¹]_{:,i} / [H_F⁻¹]_{ii} with H_F⁻¹ re-inverted from H
restricted to F at every step (no Cholesky, no lazy blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from passes.gptq import gptq_quantize
from passes.quant_math import Granularity, dequantize_weight, quantize_rtn, weight_scales


def obq_oracle(
    w: np.ndarray, x: np.ndarray, bits: int, gran: Granularity, damp: float
) -> tuple[np.ndarray, np.ndarray]:
    n, k = w.shape
    qmax = 2 ** (bits - 1) - 1
    h = 2.0 * x.T @ x
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h += damp * np.mean(np.diag(h)) * np.eye(k)
    ww = w.astype(np.float64).copy()
    ww[:, dead] = 0.0
    q = np.zeros((n, k), np.int64)
    if gran.kind == "group":
        scales = np.ones((n, k // gran.group), np.float32)
    else:
        scales = weight_scales(w, bits, gran)
        col_s = np.broadcast_to(scales.astype(np.float64).reshape(-1), (n,))
    for i in range(k):
        if gran.kind == "group" and i % gran.group == 0:
            m = np.abs(ww[:, i : i + gran.group]).max(axis=1) / qmax
            s = np.where(m > 0, m, 1.0).astype(np.float32)
            scales[:, i // gran.group] = s
            col_s = s.astype(np.float64)
        q[:, i] = np.clip(np.rint(ww[:, i] / col_s), -qmax - 1, qmax)
        rest = np.arange(i, k)
        hinv = np.linalg.inv(h[np.ix_(rest, rest)])
        delta = (ww[:, i] - q[:, i] * col_s) / hinv[0, 0]
        ww[:, rest] -= np.outer(delta, hinv[0])
    return q, scales


def _data(n_out: int, k: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((k, k)) / np.sqrt(k) + np.eye(k)  # correlated inputs
    x = rng.standard_normal((rows, k)) @ mix
    w = rng.standard_normal((n_out, k)).astype(np.float32)
    return w, x


def _out_err(x: np.ndarray, w: np.ndarray, q: np.ndarray, s: np.ndarray) -> float:
    return float(np.sum((x @ (dequantize_weight(q, s) - w).T) ** 2))


@pytest.mark.parametrize(
    ("bits", "gran", "k"),
    [(4, "channel", 48), (8, "tensor", 40), (4, "group:16", 48), (4, "group:32", 192)],
)
def test_matches_the_column_by_column_oracle(bits: int, gran: str, k: int) -> None:
    """K = 192 crosses a lazy-batch block boundary (128 columns)."""
    w, x = _data(12, k, 4 * k, seed=k)
    g = Granularity.parse(gran)
    q, s = gptq_quantize(w, x, bits, g, 0.01)
    q_ref, s_ref = obq_oracle(w, x, bits, g, 0.01)
    assert q.dtype == np.int8 and s.dtype == np.float32
    assert s.shape == weight_scales(w, bits, g).shape
    assert np.array_equal(s, s_ref)
    assert np.array_equal(q.astype(np.int64), q_ref)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert q.min() >= lo and q.max() <= hi


@pytest.mark.parametrize("gran", ["channel", "group:32"])
def test_lower_output_error_than_round_to_nearest(gran: str) -> None:
    w, x = _data(64, 128, 1024, seed=3)
    g = Granularity.parse(gran)
    q, s = gptq_quantize(w, x, 4, g, 0.01)
    s_rtn = weight_scales(w, 4, g)
    rtn = _out_err(x, w, quantize_rtn(w, s_rtn, 4), s_rtn)
    assert _out_err(x, w, q, s) < 0.8 * rtn


def test_dead_inputs_and_determinism() -> None:
    w, x = _data(8, 32, 200, seed=5)
    x[:, [3, 17]] = 0.0  # inputs that never fire
    g = Granularity.parse("group:8")
    q, s = gptq_quantize(w, x, 4, g, 0.01)
    assert np.all(q[:, [3, 17]] == 0) and np.all(np.isfinite(s))
    q2, s2 = gptq_quantize(w, x, 4, g, 0.01)
    assert np.array_equal(q, q2) and np.array_equal(s, s2)
    q_ref, s_ref = obq_oracle(w, x, 4, g, 0.01)
    assert np.array_equal(q.astype(np.int64), q_ref) and np.array_equal(s, s_ref)


def test_rank_deficient_inputs_without_damping() -> None:
    """damp = 0 and fewer samples than inputs: H is singular, GPTQ still returns finite weights."""
    w, x = _data(6, 24, 10, seed=9)
    q, s = gptq_quantize(w, x, 8, Granularity("channel"), 0.0)
    assert np.all(np.isfinite(s)) and q.shape == w.shape
    assert _out_err(x, w, q, s) <= _out_err(x, w, quantize_rtn(w, s, 8), s) * 1.01


def test_a_sparsity_mask_survives_the_error_compensation() -> None:
    w, x = _data(16, 64, 400, seed=11)
    keep = np.zeros(w.shape, bool)
    order = np.argsort(-np.abs(w).reshape(16, 16, 4), axis=2)[:, :, :2]
    np.put_along_axis(keep.reshape(16, 16, 4), order, True, axis=2)  # 2 of every 4
    w = np.where(keep, w, 0).astype(np.float32)
    g = Granularity("channel")
    q, s = gptq_quantize(w, x, 8, g, 0.01, keep=keep)
    assert np.all(q[~keep] == 0)
    free, _ = gptq_quantize(w, x, 8, g, 0.01)
    assert np.any(free[~keep] != 0)  # without the mask, compensation fills the pruned weights
    rtn = quantize_rtn(w, weight_scales(w, 8, g), 8)
    assert _out_err(x, w, q, s) < _out_err(x, w, rtn, s)
