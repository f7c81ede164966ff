"""Reference semantics of quant.progressive_attention (dialects/quant_attention.py) and of the
decode step's quant.progressive_kv_attention / quant.progressive_kv_importance (dialects/
quant_kv.py); the arithmetic is passes/progressive_math.py, which the progressive-quant pass also
uses for its report."""

from __future__ import annotations

from typing import Any

import numpy as np

from dialects.quant_attention import ProgressiveAttentionOp
from dialects.quant_kv import ProgressiveKvAttentionOp, ProgressiveKvImportanceOp
from passes.progressive_math import kv_keys, progressive_attention


def _impl(op: ProgressiveAttentionOp, a: list[np.ndarray], ctx: Any) -> np.ndarray:
    return progressive_attention(
        a[0], a[1], a[2], a[3], a[4],
        op.int_prop("heads"), op.float_prop("scale"), op.bool_prop("causal"),
        op.float_prop("threshold"), op.int_prop("block"),
    )[0]  # fmt: skip


def _kv(
    op: ProgressiveKvAttentionOp | ProgressiveKvImportanceOp,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    sq: np.ndarray,
    sk: np.ndarray,
    mask: np.ndarray,
    msb: np.ndarray,
    lsb: np.ndarray,
    probs: list[np.ndarray] | None = None,
    slot: np.ndarray | None = None,
) -> np.ndarray:
    return progressive_attention(
        q, kv_keys(msb, lsb, k, slot), v, sq, sk,
        op.int_prop("heads"), op.float_prop("scale"), False,
        op.float_prop("threshold"), op.int_prop("block"), mask, probs,
    )[0]  # fmt: skip


def _kv_attention(op: ProgressiveKvAttentionOp, a: list[np.ndarray], ctx: Any) -> np.ndarray:
    q, k, v, sq, sk, mask, msb, lsb = a[:8]
    return _kv(op, q, k, v, sq, sk, mask, msb, lsb, None, a[8] if len(a) == 9 else None)


def _kv_importance(op: ProgressiveKvImportanceOp, a: list[np.ndarray], ctx: Any) -> np.ndarray:
    q, k, sq, sk, mask, msb, lsb = a[:7]
    keys = msb.shape[1]
    v = np.zeros((keys, op.int_prop("heads") * op.int_prop("v_dim")), np.float32)
    extra = dict(zip(op.extra, a[7:], strict=True))
    prior = None if op.prior is None else extra[op.prior]
    slot = None if op.slot is None else extra[op.slot]
    probs: list[np.ndarray] = []
    _kv(op, q, k, v, sq, sk, mask, msb, lsb, probs, slot)
    # the NPU's order: the prior (or 0), then each head's column sums added in fp32 (IMPACC)
    s = np.asarray(prior, np.float32).copy() if prior is not None else np.zeros(keys, np.float32)
    for p in probs[0]:
        s += p.sum(axis=0, dtype=np.float32)
    return s


IMPLS: dict[type, Any] = {
    ProgressiveAttentionOp: _impl,
    ProgressiveKvAttentionOp: _kv_attention,
    ProgressiveKvImportanceOp: _kv_importance,
}
