"""The arithmetic of quant.progressive_attention (semantics: dialects/quant_attention.py), shared by
the reference executor (compiler/reference_progressive.py) and the progressive-quant pass's report.

Scores and probabilities are computed as the NPU computes them (the same fp32 operations in the same
order, one block of rows at a time), so refetch decisions are bit-exact with the interpreter's.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def msb_plane(k: Array) -> Array:
    """(k >> 4) << 4: the int8 value the MSB plane alone represents."""
    return ((k.astype(np.int16) >> 4) << 4).astype(np.int8)


def block_probs(
    qb: Array, kh: Array, deq: np.float32, scale: np.float32, row0: int | None
) -> Array:
    """fp32 softmax(f32(q·kᵀ) ⊗ deq ⊗ scale) of one block of rows (causal when row0 is given:
    row i sees keys j <= row0 + i)."""
    acc = qb.astype(np.int64) @ kh.astype(np.int64).T
    x = (acc.astype(np.float32) * deq) * scale
    if row0 is not None:
        lim = row0 + np.arange(x.shape[0])[:, None]
        x = np.where(np.arange(x.shape[1])[None, :] > lim, np.float32(-np.inf), x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def progressive_attention(
    q: Array,
    k: Array,
    v: Array,
    q_scale: Array,
    k_scale: Array,
    heads: int,
    scale: float,
    causal: bool,
    threshold: float,
    block: int,
) -> tuple[Array, Array]:
    """(output [Sq, H·dv] in v's dtype, refetch decisions [H, blocks] bool)."""
    sq, sk = q.shape[0], k.shape[0]
    d, dv = q.shape[1] // heads, v.shape[1] // heads
    deq = np.float32(np.float32(q_scale.reshape(-1)[0]) * np.float32(k_scale.reshape(-1)[0]))
    sc, thr = np.float32(scale), np.float32(threshold)
    k_msb = msb_plane(k)
    nblocks = -(-sq // block)
    refetch = np.zeros((heads, nblocks), bool)
    out = np.empty((sq, heads * dv), v.dtype)
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        vh = v[:, h * dv : (h + 1) * dv]
        for b in range(nblocks):
            r0, r1 = b * block, min(sq, (b + 1) * block)
            row0 = r0 + sk - sq if causal else None
            p = block_probs(q[r0:r1, cols], k_msb[:, cols], deq, sc, row0)
            if p.max(axis=1).min() < thr:
                refetch[h, b] = True
                p = block_probs(q[r0:r1, cols], k[:, cols], deq, sc, row0)
            out[r0:r1, h * dv : (h + 1) * dv] = p.astype(v.dtype) @ vh
    return out, refetch
