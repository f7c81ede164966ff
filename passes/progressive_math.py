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
    qb: Array,
    kh: Array,
    deq: np.float32,
    scale: np.float32,
    row0: int | None,
    keep: Array | None = None,
) -> Array:
    """fp32 softmax(f32(q·kᵀ) ⊗ deq ⊗ scale) of one block of rows (causal when row0 is given:
    row i sees keys j <= row0 + i; `keep` [Sk] bool hides the keys where it is False)."""
    acc = qb.astype(np.int64) @ kh.astype(np.int64).T
    x = (acc.astype(np.float32) * deq) * scale
    if row0 is not None:
        lim = row0 + np.arange(x.shape[0])[:, None]
        x = np.where(np.arange(x.shape[1])[None, :] > lim, np.float32(-np.inf), x)
    if keep is not None:
        x = np.where(keep[None, :], x, np.float32(-np.inf))
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
    mask: Array | None = None,
    probs: list[Array] | None = None,
) -> tuple[Array, Array]:
    """(output [Sq, H·dv] in v's dtype, refetch decisions [H, blocks] bool). `mask` [Sk] (int, > 0
    = keep) hides keys as nn.attention's key mask does (a masked key gets probability 0; a row
    whose keys are all masked is uniform); `probs`, if given, receives the final P [H, Sq, Sk]."""
    sq, sk = q.shape[0], k.shape[0]
    d, dv = q.shape[1] // heads, v.shape[1] // heads
    deq = np.float32(np.float32(q_scale.reshape(-1)[0]) * np.float32(k_scale.reshape(-1)[0]))
    sc, thr = np.float32(scale), np.float32(threshold)
    k_msb = msb_plane(k)
    nblocks = -(-sq // block)
    refetch = np.zeros((heads, nblocks), bool)
    out = np.empty((sq, heads * dv), v.dtype)
    keep = None if mask is None else np.asarray(mask).reshape(-1) > 0
    if keep is not None and not keep.any():
        keep = np.ones(sk, bool)  # all masked: equal scores on the NPU (key_mask.py), uniform P
        k = np.zeros_like(k)
    allp = np.zeros((heads, sq, sk), np.float32) if probs is not None else None
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        vh = v[:, h * dv : (h + 1) * dv]
        for b in range(nblocks):
            r0, r1 = b * block, min(sq, (b + 1) * block)
            row0 = r0 + sk - sq if causal else None
            p = block_probs(q[r0:r1, cols], k_msb[:, cols], deq, sc, row0, keep)
            if p.max(axis=1).min() < thr:
                refetch[h, b] = True
                p = block_probs(q[r0:r1, cols], k[:, cols], deq, sc, row0, keep)
            if allp is not None:
                allp[h, r0:r1] = p
            out[r0:r1, h * dv : (h + 1) * dv] = p.astype(v.dtype) @ vh
    if probs is not None and allp is not None:
        probs.append(allp)
    return out, refetch


def kv_keys(k_msb: Array, k_lsb: Array, k_new: Array, slot: Array | None = None) -> Array:
    """The int8 keys [S + N, H·d] of quant.progressive_kv_attention: the cached rows from their
    head-major 4-bit planes [H, S + N, d] (msb · 16 + the low nibble of lsb; the last N slots of
    each head are the new rows' and are ignored), then the new rows k_new [N, H·d]. With `slot`
    (resident planes) all S + N rows come from the planes, row slot[i] replaced by k_new[i]."""
    if slot is not None:
        heads, slots, d = np.asarray(k_msb).shape
        hi, lo = np.asarray(k_msb, np.int16), np.asarray(k_lsb, np.int16)
        keys = ((hi << 4) + (lo & 15)).transpose(1, 0, 2).reshape(slots, heads * d).astype(np.int8)
        keys[np.asarray(slot, np.int64).reshape(-1)] = np.asarray(k_new, np.int8)
        return keys
    n = np.asarray(k_new).shape[0]
    heads, slots, d = np.asarray(k_msb).shape
    hi = np.asarray(k_msb, np.int16)[:, : slots - n]
    lo = np.asarray(k_lsb, np.int16)[:, : slots - n]
    cached = ((hi << 4) + (lo & 15)).transpose(1, 0, 2).reshape(slots - n, heads * d)
    return np.concatenate([cached.astype(np.int8), np.asarray(k_new, np.int8)], axis=0)


def head_major_planes(k: Array, heads: int, free: int) -> tuple[Array, Array]:
    """int8 K [S, H·d] → the plane inputs of quant.progressive_kv_attention: (msb, lsb) int4
    values [H, S + free, d], head-major, the last `free` slots of each head zero (the new rows')."""
    msb, lsb = planes_of(k)
    s = msb.shape[0]

    def arrange(x: Array) -> Array:
        out = np.zeros((heads, s + free, x.shape[1] // heads), np.int8)
        out[:, :s] = x.reshape(s, heads, -1).transpose(1, 0, 2)
        return out

    return arrange(msb), arrange(lsb)


def planes_of(k: Array) -> tuple[Array, Array]:
    """int8 K → its (msb, lsb) planes as int4 values in [-8, 7] (lsb holds the low nibble's bits)."""
    x = np.asarray(k, np.int8).astype(np.int16)
    return (x >> 4).astype(np.int8), (((x & 15) ^ 8) - 8).astype(np.int8)
