"""GPTQ weight quantization (Frantar et al., ICLR 2023): round the columns of W one at a time and
push each column's rounding error onto the columns not yet rounded, weighted by the inverse Hessian
of the layer's squared output error on calibration inputs, H = 2·XᵀX + λI.

The rounding itself is quant_math's (symmetric, round half to even, clamp), so an RTN and a GPTQ
weight differ only in which values are rounded. Deterministic: float64 throughout, fixed column order.
"""

from __future__ import annotations

import numpy as np

from dialects.quant import int_range
from passes.quant_math import Granularity, weight_scales
from passes.refit import add_damping

BLOCK = 128  # columns per lazy batch (the error reaches later blocks in one matrix product)


def inverse_hessian_factor(x: np.ndarray, damp: float) -> tuple[np.ndarray, np.ndarray]:
    """(U, dead): U the upper Cholesky factor of H⁻¹ for H = 2·XᵀX + λI (λ = damp · mean diag),
    and the mask of dead inputs (diag H == 0), whose diagonal is set to 1 before damping."""
    x = np.asarray(x, np.float64)
    h = 2.0 * (x.T @ x)
    dead = np.diag(h) == 0.0
    h[dead, dead] = 1.0
    add_damping(h, damp)
    for _ in range(8):  # a singular H (damp = 0, dependent inputs): more damping until it factors
        try:
            lower = np.linalg.cholesky(h)
            eye = np.eye(len(h))
            inv_lower = np.linalg.solve(lower, eye)
            h_inv = inv_lower.T @ inv_lower
            return np.linalg.cholesky((h_inv + h_inv.T) / 2).T, dead
        except np.linalg.LinAlgError:
            add_damping(h, max(damp, 1e-6) * 10)
    raise np.linalg.LinAlgError("GPTQ: the calibration Hessian is not positive definite")


def gptq_quantize(
    w: np.ndarray,
    x: np.ndarray,
    bits: int,
    gran: Granularity,
    damp: float,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integer weights [N, K] (int8 storage, signed `bits` range) and their scales ([1], [N] or
    [N, G], as quant_math.weight_scales) for weight `w` [N, K] and calibration inputs `x` [n, K].

    Per-tensor and per-channel scales come from the original weights; a group's scales are taken
    when the group starts, from the error-updated weights of its columns. With `keep` (bool [N, K],
    e.g. a 2:4 mask) weights outside it quantize to 0 and their whole value is the error passed on,
    so a sparsity pattern survives the compensation."""
    w0 = np.asarray(w, np.float32)
    n, k = w0.shape
    if x.ndim != 2 or x.shape[1] != k:
        raise ValueError(f"gptq: inputs must be [n, {k}], got {list(x.shape)}")
    lo, hi = int_range(bits)
    u, dead = inverse_hessian_factor(x, damp)
    ww = w0.astype(np.float64)
    ww[:, dead] = 0.0
    q = np.zeros((n, k), np.int8)
    group = gran.group if gran.kind == "group" else 0
    if group:
        scales = np.ones((n, gran.groups(k)), np.float32)
        block = group * max(1, BLOCK // group)  # a group never straddles two blocks
        col_scale = np.ones(n)
    else:
        scales = weight_scales(w0, bits, gran)
        block = BLOCK
        col_scale = np.broadcast_to(scales.astype(np.float64).reshape(-1), (n,))
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        w1 = ww[:, i1:i2].copy()
        err = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for j in range(i2 - i1):
            col = i1 + j
            if group and col % group == 0:
                s = weight_scales(w1[:, j : j + group], bits, Granularity("channel"))
                scales[:, col // group] = s
                col_scale = s.astype(np.float64)
            qc = np.clip(np.rint(w1[:, j] / col_scale), lo, hi)
            if keep is not None:
                qc = np.where(keep[:, col], qc, 0.0)
            q[:, col] = qc
            e = (w1[:, j] - qc * col_scale) / u1[j, j]
            w1[:, j:] -= np.outer(e, u1[j, j:])
            err[:, j] = e
        ww[:, i2:] -= err @ u[i1:i2, i2:]
    return q, scales
