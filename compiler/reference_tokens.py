"""Reference semantics of the tokens dialect (token/head pruning, TPS, EViT, FACT), in numpy.

Formulas: docs/tokens.md. Top-k ties follow backend/topk.py, the rule the TOPK instruction uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from xdsl.ir import Operation

from backend.interpreter.numerics import int4_msb
from backend.topk import topk_indices
from compiler.errors import WispError
from compiler.reference_qattention import quant_importance as qimp
from compiler.reference_quant import linear
from dialects import tokens as T
from dialects.nn_base import shape_of
from dialects.tokens_kv import KV_EVICT_BIG

Array = np.ndarray


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention_probs(q: Array, k: Array, heads: int, scale: float, causal: bool) -> Array:
    """P [heads, Sq, Sk] = softmax(scale · q_h k_hᵀ), causal-masked as nn.attention."""
    sq, sk = q.shape[0], k.shape[0]
    qh = q.reshape(sq, heads, -1).transpose(1, 0, 2)
    kh = k.reshape(sk, heads, -1).transpose(1, 0, 2)
    s = (qh @ kh.transpose(0, 2, 1)) * np.asarray(scale, q.dtype)
    if causal:
        s = np.where(_causal_mask(sq, sk)[None], np.asarray(-np.inf, q.dtype), s)
    return _softmax(s)


def _causal_mask(sq: int, sk: int) -> Array:
    """True where query i (the last sq of sk positions) may not see key j."""
    return np.arange(sk)[None, :] > (np.arange(sq)[:, None] + (sk - sq))


def _attn(op: Operation) -> tuple[int, float, bool]:
    return op.int_prop("heads"), op.float_prop("scale"), op.bool_prop("causal")  # type: ignore[attr-defined]


def importance(op: T.ImportanceOp, a: list[Array], c: Any) -> Array:
    heads, scale, causal = _attn(op)
    if op.prop("kind") == "received":
        # the same P as the nn.attention of these q, k computed (same arrays, same operations)
        cached = None if causal else getattr(c, "probs", {}).get((id(a[0]), id(a[1]), heads, scale))
        p = cached if cached is not None else attention_probs(a[0], a[1], heads, scale, causal)
        s = p.sum(axis=(0, 1))
    else:  # only query row 0 is needed (kind "cls" is never causal)
        s = attention_probs(a[0][:1], a[1], heads, scale, False)[:, 0, :].mean(axis=0)
    return s + a[2] if len(a) == 3 else s


def quant_importance(op: T.QuantImportanceOp, a: list[Array], c: Any) -> Array:
    """tokens.quant_importance: quant.attention's fp32 probabilities summed (or CLS row), + prior."""
    heads, scale, causal = _attn(op)
    s = qimp(a[0], a[1], a[2], a[3], heads, scale, causal, op.prop("kind") == "cls")
    return s + a[4] if len(a) == 5 else s


def masked_importance(op: T.MaskedImportanceOp, a: list[Array], c: Any) -> Array:
    """Received attention under the key mask (the same masked P as nn.attention's), plus the prior."""
    from compiler.reference import attention_scores, softmax  # reference.py imports this module

    heads, scale, causal = _attn(op)
    q, k = a[0], a[1]
    qh = q.reshape(q.shape[0], heads, -1).transpose(1, 0, 2)
    kh = k.reshape(k.shape[0], heads, -1).transpose(1, 0, 2)
    s = (qh @ kh.transpose(0, 2, 1)) * np.asarray(scale, q.dtype)
    s = softmax(attention_scores(s, causal, a[2])).sum(axis=(0, 1))
    return s + a[3] if len(a) == 4 else s


def head_importance(op: T.HeadImportanceOp, a: list[Array], c: Any) -> Array:
    x = a[0]
    return np.abs(x).reshape(x.shape[0], op.int_prop("heads"), -1).sum(axis=(0, 2))


def protected(op: Operation, n: int) -> list[int]:
    return [p % n for p in op.ints_prop("protect")]  # type: ignore[attr-defined]


def select(op: T.SelectOp, a: list[Array], c: Any) -> Array:
    s = a[0].astype(np.float32).copy()
    s[protected(op, s.shape[0])] = np.inf
    return topk_indices(s[None], op.int_prop("k"))[0].astype(np.int32)


def kv_accumulate(op: T.KvAccumulateOp, a: list[Array], c: Any) -> Array:
    """Carried + step per slot; the new token's slot starts with its own score."""
    out = (a[0].astype(np.float32) + a[1].astype(np.float32)).astype(np.float32)
    slot = int(a[2][0])
    out[slot] = np.float32(a[1][slot])
    return out


def kv_evict(op: T.KvEvictOp, a: list[Array], c: Any) -> Array:
    """argmin_j s[j] + BIG·[j not eligible] in fp32, ties to the lower slot (TOPK k=1 of the
    negation): the eligible slot of lowest score whenever there is one."""
    s, mask, positions, pos = a[0].astype(np.float32), a[1], a[2], int(a[3][0])
    eligible = (mask != 0) & (positions <= pos - op.int_prop("recent"))
    e = (s + np.where(eligible, np.float32(0), np.float32(KV_EVICT_BIG))).astype(np.float32)
    return topk_indices(-e[None], 1)[0].astype(np.int32)


def _check_indices(name: str, idx: Array, n: int) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n or np.unique(idx).size != idx.size):
        raise WispError(f"{name}: indices must be distinct and in [0, {n}), got {idx.tolist()}")


def pruned_of(idx: Array, n: int) -> Array:
    """The rows not in ``idx``, ascending."""
    keep = np.zeros(n, bool)
    keep[idx] = True
    return np.flatnonzero(~keep)


def cosine(a: Array, b: Array) -> Array:
    """cos(a_i, b_j) [len(a), len(b)] (a zero row has cosine 0 with everything)."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    tiny = np.asarray(np.finfo(a.dtype).tiny, a.dtype)
    return (a / np.maximum(na, tiny)) @ (b / np.maximum(nb, tiny)).T


def squeeze(op: T.SqueezeOp, a: list[Array], c: Any) -> Array:
    x, idx = a[0], a[1].astype(np.int64)
    n = x.shape[0]
    _check_indices(op.name, idx, n)
    out = x[idx].copy()
    pruned = pruned_of(idx, n)
    prot = set(protected(op, n))
    hosts = [r for r, i in enumerate(idx) if int(i) not in prot]  # rows of `out` that can host
    if pruned.size == 0 or not hosts:
        return out
    cos = cosine(x[pruned], out[hosts])
    pick = cos.argmax(axis=1)  # first maximum: ties to the lower index
    w_match = np.exp(cos[np.arange(pruned.size), pick])
    e1 = np.exp(np.asarray(1.0, x.dtype))
    num = out[hosts] * e1
    den = np.full(len(hosts), e1, x.dtype)
    np.add.at(num, pick, w_match[:, None] * x[pruned])
    np.add.at(den, pick, w_match)
    out[hosts] = num / den[:, None]
    return out


def fuse(op: T.FuseOp, a: list[Array], c: Any) -> Array:
    x, idx, att = a[0], a[1].astype(np.int64), a[2]
    n = x.shape[0]
    _check_indices(op.name, idx, n)
    pruned = pruned_of(idx, n)
    w = att[pruned]
    fused = (w[:, None] * x[pruned]).sum(axis=0) / w.sum()
    return np.concatenate([x[idx], fused[None]], axis=0)


def leading_one(x: Array) -> Array:
    """sign(x)·2^⌊log2|x|⌋ (0 stays 0), exact for any float."""
    _, e = np.frexp(np.abs(x))
    return (np.sign(x) * np.ldexp(np.ones_like(x), e - 1)).astype(x.dtype)


def requant_pow2(v: Array, shift: int) -> Array:
    """int8 clamp(rne(v · 2^-shift)): the MOVE fp32 → int8 with scale 2^-shift (exact on integers)."""
    r = np.rint(v.astype(np.float32) * np.float32(2.0**-shift))
    return np.clip(r, -128, 127).astype(np.int8)


def predict_scores(op: T.PredictOp, x: Array, wq: Array, wk: Array) -> Array:
    """FACT's approximate scores S [heads, n, n] in fp32 from int8 x, Wq, Wk (causal entries −inf).

    Every step is integer-exact (leading-one products, sums below 2^24) except the final fp32
    multiply by f32(scale·unit), which the NPU performs identically (VEC mul)."""
    heads = op.int_prop("heads")
    lx = leading_one(np.asarray(x, np.float64))
    qt = lx @ leading_one(np.asarray(wq, np.float64)).T
    kt = lx @ leading_one(np.asarray(wk, np.float64)).T
    q8 = leading_one(requant_pow2(qt, op.int_prop("q_shift")).astype(np.float64))
    k8 = leading_one(requant_pow2(kt, op.int_prop("k_shift")).astype(np.float64))
    n = x.shape[0]
    qh = q8.reshape(n, heads, -1).transpose(1, 0, 2)
    kh = k8.reshape(n, heads, -1).transpose(1, 0, 2)
    c = np.float32(op.float_prop("scale") * op.float_prop("unit"))
    s = (qh @ kh.transpose(0, 2, 1)).astype(np.float32) * c
    if op.bool_prop("causal"):
        s = np.where(_causal_mask(n, n)[None], np.float32(-np.inf), s)
    return s


def predict_mask(s: Array, topk: int, margin: float) -> Array:
    """Row-wise top-k 0/1 mask of fp32 scores [rows, n]; one-hot (top-1 only) where
    f32(max) − f32(max of the rest) > f32(margin), the rest = the row without its top-1 index
    (margin < 0: no one-hot rule)."""
    rows, n = s.shape
    r = np.arange(rows)[:, None]
    mask = np.zeros(s.shape, np.float32)
    mask[r, topk_indices(s, topk)] = 1.0
    if n >= 2 and topk >= 2 and margin >= 0:
        best = topk_indices(s, 1)
        rest = s.copy()
        rest[r, best] = -np.inf
        d = s.max(axis=1) - rest.max(axis=1)
        one_hot = np.flatnonzero(d > np.float32(margin))
        mask[one_hot] = 0.0
        mask[one_hot, best[one_hot, 0]] = 1.0
    mask[np.isneginf(s)] = 0.0  # causal: a row with fewer than k visible keys keeps those
    return mask


def predict(op: T.PredictOp, a: list[Array], c: Any) -> Array:
    s = predict_scores(op, a[0], a[1], a[2])
    heads, n, _ = s.shape
    mask = predict_mask(s.reshape(heads * n, n), op.int_prop("topk"), op.float_prop("margin"))
    return mask.reshape(heads, n, n)


def _masked_softmax_attention(
    q: Array, k: Array, v: Array, heads: int, scale: float, causal: bool, keep: Array
) -> Array:
    sq, sk = q.shape[0], k.shape[0]
    qh = q.reshape(sq, heads, -1).transpose(1, 0, 2)
    kh = k.reshape(sk, heads, -1).transpose(1, 0, 2)
    vh = v.reshape(sk, heads, -1).transpose(1, 0, 2)
    s = (qh @ kh.transpose(0, 2, 1)) * np.asarray(scale, q.dtype)
    if causal:
        keep = keep & ~_causal_mask(sq, sk)[None]
    s = np.where(keep, s, np.asarray(-np.inf, q.dtype))
    return (_softmax(s) @ vh).transpose(1, 0, 2).reshape(sq, -1)


def masked_attention(op: T.MaskedAttentionOp, a: list[Array], c: Any) -> Array:
    heads, scale, causal = _attn(op)
    return _masked_softmax_attention(a[0], a[1], a[2], heads, scale, causal, a[3] != 0)


def head_attention(op: T.HeadAttentionOp, a: list[Array], c: Any) -> Array:
    heads, scale, causal = _attn(op)
    q, k, v, kept = a[:4]
    if kept.min() < 0 or kept.max() >= heads:
        raise WispError(f"{op.name}: head indices must be in [0, {heads}), got {kept.tolist()}")
    on = np.zeros(heads, bool)
    on[kept] = True
    if len(a) == 5:  # nn.attention's key mask, with its semantics
        from compiler.reference import attention  # reference.py imports this module

        out = attention(q, k, v, heads, scale, causal, a[4])
    else:
        full = np.ones((heads, q.shape[0], k.shape[0]), bool)
        out = _masked_softmax_attention(q, k, v, heads, scale, causal, full)
    dv = shape_of(op.results[0].type)[1] // heads
    out = out.reshape(q.shape[0], heads, dv)
    out[:, ~on] = 0
    return out.reshape(q.shape[0], -1)


def key_rows(mask: Array, tile: int) -> Array:
    """bool [n]: key rows in a row tile of `tile` that some (head, query) selects."""
    n = mask.shape[-1]
    used = (np.asarray(mask).reshape(-1, n) != 0).any(axis=0)
    pad = np.zeros(-n % tile, bool)
    tiles = np.concatenate([used, pad]).reshape(-1, tile).any(axis=1)
    return np.repeat(tiles, tile)[:n]


def key_linear(op: T.KeyLinearOp, a: list[Array], c: Any) -> Array:
    y = a[0] @ a[2].T + (a[3] if len(a) == 4 else 0)
    return np.where(key_rows(a[1], op.int_prop("tile"))[:, None], y, np.zeros((), y.dtype))


def row_precision(op: T.RowPrecisionOp, a: list[Array], c: Any) -> Array:
    """1 (INT4-MSB) for all but the int8_rows tokens the predicted mask selects most often."""
    m = np.asarray(a[0])
    n = m.shape[-1]
    score = (m != 0).reshape(-1, n).sum(axis=0).astype(np.float32)
    score[protected(op, n)] = np.inf
    low = np.ones(n, np.int8)
    low[topk_indices(score[None], op.int_prop("int8_rows"))[0]] = 0
    return low


def mixed_linear(op: T.MixedLinearOp, a: list[Array], c: Any) -> Array:
    """quant.linear's int32 x·wᵀ + b, with INT4-MSB(w) on the rows where low ≠ 0."""
    x, w, low = a[0], a[1], np.asarray(a[2]) != 0
    b = a[3] if len(a) == 4 else None
    acc = linear(x, w, b, 1)
    if low.any():
        acc[low] = linear(x[low], int4_msb(w), b, 1)
    return acc


IMPLS: dict[type[Operation], Callable[[Any, list[Array], Any], Array]] = {
    T.ImportanceOp: importance,
    T.MaskedImportanceOp: masked_importance,
    T.QuantImportanceOp: quant_importance,
    T.HeadImportanceOp: head_importance,
    T.SelectOp: select,
    T.KvAccumulateOp: kv_accumulate,
    T.KvEvictOp: kv_evict,
    T.SqueezeOp: squeeze,
    T.FuseOp: fuse,
    T.PredictOp: predict,
    T.MaskedAttentionOp: masked_attention,
    T.HeadAttentionOp: head_attention,
    T.KeyLinearOp: key_linear,
    T.RowPrecisionOp: row_precision,
    T.MixedLinearOp: mixed_linear,
}
