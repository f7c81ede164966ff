"""Masked least-squares refit of a linear layer's weights on calibration activations.

Shared by structured pruning and 2:4 sparsity: after a mask removes weights, the kept weights of each
output row are re-solved so the layer reproduces `target` (usually the dense layer's output) as well as
it can from its allowed input columns.
"""

from __future__ import annotations

import numpy as np

# Largest number of float64 elements one batched solve may stack (keeps memory to ~256 MiB).
_CHUNK_ELEMENTS = 32 * 1024 * 1024


def add_damping(gram: np.ndarray, damp: float) -> float:
    """Add λ = damp · mean(diag(gram)) (damp alone when the diagonal is zero) to the diagonal of the
    Gram/Hessian matrix `gram` in place, so a least-squares solve is well posed; return λ. Shared by
    the refit below and GPTQ (passes/gptq.py)."""
    d = gram.shape[0]
    mean_diag = float(np.mean(np.diag(gram))) if d else 0.0
    lam = damp * (mean_diag if mean_diag > 0.0 else 1.0)
    gram[np.diag_indices(d)] += lam
    return lam


def refit_linear(
    x: np.ndarray, target: np.ndarray, mask: np.ndarray, *, damp: float = 1e-3
) -> np.ndarray:
    """Weights W [out, in], zero where `mask` is False, minimising ‖x·Wᵀ − target‖² + λ‖W‖² per row.

    x: [n, in] activations; target: [n, out]; mask: [out, in] bool (True: the weight may be nonzero).
    λ = damp · mean(diag(xᵀx)) keeps the solve well posed when columns are (nearly) dependent.
    Rows with identical masks share one factorisation; rows with the same number of allowed columns
    are solved in batches, so 2:4 masks (in/2 allowed columns per row) stay fast.
    """
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if x.ndim != 2 or target.ndim != 2 or mask.ndim != 2:
        raise ValueError("refit_linear: x [n, in], target [n, out] and mask [out, in] must be 2-D")
    n, d_in = x.shape
    d_out = mask.shape[0]
    if target.shape != (n, d_out) or mask.shape[1] != d_in:
        raise ValueError(
            f"refit_linear: shapes disagree: x {x.shape}, target {target.shape}, mask {mask.shape}"
        )
    gram = x.T @ x
    add_damping(gram, damp)
    rhs = target.T @ x  # [out, in]: row o holds xᵀ·target[:, o]
    out = np.zeros((d_out, d_in), dtype=np.float64)

    if d_out and bool(np.all(mask == mask[0])):  # one mask for every row: one solve, many RHS
        cols = np.flatnonzero(mask[0])
        if cols.size:
            out[:, cols] = np.linalg.solve(gram[np.ix_(cols, cols)], rhs[:, cols].T).T
        return out.astype(np.float32)

    unique, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    members = np.bincount(inverse, minlength=len(unique))
    owner = np.full(len(unique), -1)
    owner[inverse] = np.arange(d_out)  # the row of a mask used by exactly one row
    counts = unique.sum(axis=1)
    for k in np.unique(counts[counts > 0]):
        shared = np.flatnonzero((counts == k) & (members > 1))
        for g in shared:  # several rows share this mask: one factorisation, many right-hand sides
            rows, cols = np.flatnonzero(inverse == g), np.flatnonzero(unique[g])
            out[np.ix_(rows, cols)] = np.linalg.solve(
                gram[np.ix_(cols, cols)], rhs[np.ix_(rows, cols)].T
            ).T
        single = np.flatnonzero((counts == k) & (members == 1))
        step = max(1, _CHUNK_ELEMENTS // (int(k) * int(k)))
        for start in range(0, len(single), step):  # one row per mask: batched k×k solves
            chunk = single[start : start + step]
            rows = owner[chunk]
            cols = np.nonzero(unique[chunk])[1].reshape(len(chunk), int(k))
            systems = gram[cols[:, :, None], cols[:, None, :]]
            b = np.take_along_axis(rhs[rows], cols, axis=1)[:, :, None]
            out[rows[:, None], cols] = np.linalg.solve(systems, b)[:, :, 0]
    return out.astype(np.float32)
