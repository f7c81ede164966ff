"""Reference semantics of quant.attention (stated once in dialects/quant_attention.py).

Every step is the fp32/int32 operation the NPU performs (MATMUL int8, MOVE int32→fp32 with a scale,
ROW softmax, MOVE fp32→int8, MATMUL int8, MOVE int32→fp32), in the same order, so the interpreter
agrees with it bit for bit given the same int8 q, k and v."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dialects.quant_attention import AttentionOp

Array = np.ndarray


class QAttention(NamedTuple):
    """The result and the per-head integer intermediates (for tests and reports)."""

    out: Array  # [Sq, H·dv] fp32
    scores: Array  # [H, Sq, Sk] int32: q_h · k_hᵀ
    probs: Array  # [H, Sq, Sk] int8: P quantized with scale 1/127
    acc: Array  # [H, Sq, dv] int32: Pq · v_h


def constants(sq: Array, sk: Array, sv: Array, scale: float) -> tuple[np.float32, np.float32]:
    """c = (f32(sq) ⊗ f32(sk)) ⊗ f32(scale) and cv = f32(sv) ⊘ 127, both fp32."""
    f = [np.float32(np.asarray(s, np.float32).reshape(-1)[0]) for s in (sq, sk, sv)]
    c = np.float32(np.float32(f[0] * f[1]) * np.float32(scale))
    return c, np.float32(f[2] / np.float32(127.0))


def _int_matmul(a: Array, b: Array) -> Array:
    """Exact int8 · int8 products summed in float64 (exact while K · 2^14 < 2^53) → int32."""
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64).astype(np.int32)


def softmax_rows(x: Array) -> Array:
    """The ROW softmax of fp32 rows: e = exp(x − max), e ⊘ Σ e (fp32 throughout)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def head_probs(
    qh: Array, kh: Array, c: np.float32, mask: Array, causal: bool
) -> tuple[Array, Array]:
    """One head's S = q_h · k_hᵀ (int32) and fp32 P = softmax(f32(f64(S) · f64(c))), −inf where
    `mask` if causal."""
    s = _int_matmul(qh, kh.T)
    x = (s.astype(np.float64) * float(c)).astype(np.float32)
    if causal:
        x = np.where(mask, np.float32(-np.inf), x)
    return s, softmax_rows(x)


def quant_importance(
    q: Array, k: Array, sq: Array, sk: Array, heads: int, scale: float, causal: bool, cls: bool
) -> Array:
    """tokens.quant_importance (dialects/tokens_quant.py): Σ_h Σ_i P[h,i,j] of quant.attention's
    fp32 P, or mean_h P[h,0,j] when `cls`."""
    n_q, n_k = q.shape[0], k.shape[0]
    d = q.shape[1] // heads
    c, _ = constants(sq, sk, np.zeros(1, np.float32), scale)
    mask = np.arange(n_k)[None, :] > np.arange(n_q)[:, None] + (n_k - n_q)
    rows = 1 if cls else n_q
    probs = np.stack(
        [
            head_probs(
                q[:rows, h * d : (h + 1) * d], k[:, h * d : (h + 1) * d], c, mask[:rows], causal
            )[1]
            for h in range(heads)
        ]
    )
    return probs[:, 0, :].mean(axis=0) if cls else probs.sum(axis=(0, 1))


def qattention(
    q: Array, k: Array, v: Array, sq: Array, sk: Array, sv: Array,
    heads: int, scale: float, causal: bool,
) -> QAttention:  # fmt: skip
    n_q, n_k = q.shape[0], k.shape[0]
    d, dv = q.shape[1] // heads, v.shape[1] // heads
    c, cv = constants(sq, sk, sv, scale)
    scores = np.empty((heads, n_q, n_k), np.int32)
    probs = np.empty((heads, n_q, n_k), np.int8)
    acc = np.empty((heads, n_q, dv), np.int32)
    out = np.empty((n_q, heads * dv), np.float32)
    mask = np.arange(n_k)[None, :] > np.arange(n_q)[:, None] + (n_k - n_q)
    for h in range(heads):
        s, p = head_probs(q[:, h * d : (h + 1) * d], k[:, h * d : (h + 1) * d], c, mask, causal)
        with np.errstate(invalid="ignore"):
            pq = np.clip(np.nan_to_num(np.rint(p * np.float32(127.0)), nan=0.0), -128, 127)
        pq = pq.astype(np.int8)
        o = _int_matmul(pq, v[:, h * dv : (h + 1) * dv])
        scores[h], probs[h], acc[h] = s, pq, o
        out[:, h * dv : (h + 1) * dv] = (o.astype(np.float64) * float(cv)).astype(np.float32)
    return QAttention(out, scores, probs, acc)


def _impl(op: AttentionOp, a: list[Array], ctx: Any) -> Array:
    q, k, v, sq, sk, sv = a
    heads, scale, causal = op.int_prop("heads"), op.float_prop("scale"), op.bool_prop("causal")
    return qattention(q, k, v, sq, sk, sv, heads, scale, causal).out


IMPLS: dict[type, Any] = {AttentionOp: _impl}
