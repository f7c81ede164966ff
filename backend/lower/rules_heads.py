"""Lowering of SpAtten cascade head pruning (head-prune): importance by IMPACC, heads by predicate.

- `tokens.head_importance`: normally IMPACC headmag on the attention's own fp32 output tiles
  (backend/lower/head_sink.py); standalone, row tiles of O (fp16) into vec, IMPACC headmag into
  fp32 accumulators in idx. The accumulation `nn.add` the pass puts after it (prior + this
  layer) is absorbed: the accumulators start from the prior.
- `tokens.head_attention`: the kept heads' indices (TOPK of `tokens.select`) GATHER one-hot rows
  of an identity table; per head one CMP (sum of column h > 0.5) sets a predicate and every
  instruction of that head (K/V/Q loads, MATMULs, softmax, output MOVE) runs under it. The
  output is assembled in vec (zeroed by one MOVE int8→fp16 scale=0) and stored once, so a skipped
  head costs one issue cycle per instruction and no bytes, MACs or energy. (If the output does
  not fit vec, each head stores its tiles and a skipped head stores zeros, under `@!p`.)
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx, predicate_since
from backend.lower.dma import load, row_tiles, store
from backend.lower.env import Env
from backend.lower.head_sink import prior_add
from backend.lower.importance_sink import zeros_row
from backend.lower.key_mask import key_mask_bias
from backend.lower.registry import rule
from backend.lower.rules_dense import attention_head, per_head_plan
from backend.lower.values import DTensor
from dialects import tokens
from dialects.nn_base import shape_of

A, V, IX = Buf.ACT, Buf.VEC, Buf.IDX
F32 = DType.FP32
N_PRED = 15  # heads rotate over p1..p15


@rule(tokens.HeadImportanceOp)
def lower_head_importance(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """s[h] (+ prior) = Σ_i Σ_c |O[i, h·d + c]|, IMPACC headmag over row tiles of O (when the
    attention could not do it on its output tiles, backend/lower/head_sink.py)."""
    assert isinstance(op, tokens.HeadImportanceOp)
    if op.results[0] in env.vals:
        return env.raw(op.results[0])  # type: ignore[return-value]
    o = env.tensor(op.operands[0]).as2d()
    heads = op.int_prop("heads")
    n, cols = o.shape
    acc = ctx.hold(IX, 4 * heads)
    prior = prior_add(ctx, op, env) or zeros_row(ctx, heads)
    load(ctx, DTensor.contiguous(prior.addr, (1, heads), F32), IX, acc)
    rt = row_tiles(n, 2 * cols, ctx.cap(V), "head_importance", ctx)
    for r0 in range(0, n, rt):
        rl = min(rt, n - r0)
        off = ctx.take(V, 2 * rt * cols)
        load(ctx, o.block(r0, rl, 0, cols), V, off)
        ctx.emit(
            "IMPACC", mode="headmag", src_dtype=DType.FP16, src_buf=V, src_off=off,
            src_stride=cols, rows=rl, cols=cols, heads=heads, dst_buf=IX, dst_off=acc,
        )  # fmt: skip
    out = ctx.activation((heads,), F32)
    store(ctx, DTensor.contiguous(out.addr, (1, heads), F32), IX, acc)
    return out


def kept_rows(ctx: LowerCtx, kept: DTensor, heads: int) -> int:
    """idx offset of [keep, heads] fp32: row i is the one-hot row of kept head i (GATHER of
    identity rows), so column h sums to 1 exactly when head h is kept."""
    keep = kept.shape[0]
    g_off = ctx.hold(IX, 4 * keep * heads)
    i_off = ctx.take(IX, 4 * keep)
    load(ctx, DTensor.contiguous(kept.addr, (1, keep), DType.INT32), IX, i_off)
    eye = ctx.add_data(("tokens.eye32", str(heads)), np.eye(heads, dtype=np.float32), F32)
    ctx.emit(
        "GATHER", dtype=F32, dst_buf=IX, dst_off=g_off, dst_stride=heads, src_addr=eye.addr,
        src_stride=4 * heads, idx_buf=IX, idx_off=i_off, rows=keep, cols=heads,
    )  # fmt: skip
    return g_off


def head_pred(ctx: LowerCtx, g_off: int, keep: int, heads: int, h: int) -> int:
    """CMP sum of column h of the one-hot rows > 0.5: predicate (p1..p15, rotating) ← h kept."""
    p = 1 + h % N_PRED
    ctx.emit(
        "CMP", reduce="sum", cmp="gt", dtype=F32, src_buf=IX, src_off=g_off + 4 * h,
        src_stride=heads, rows=keep, cols=1, imm=0.5, pdst=p,
    )  # fmt: skip
    return p


@rule(tokens.HeadAttentionOp)
def lower_head_attention(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Per-head attention with each head under its own run-time predicate; zeros when skipped."""
    assert isinstance(op, tokens.HeadAttentionOp)
    q, k, v = (env.tensor(x).as2d() for x in op.operands[:3])
    kept = env.tensor(op.operands[3])
    if not kept.is_contiguous or kept.dtype is not DType.INT32:
        raise BackendError(f"{op.name}: the kept heads must be a contiguous int32 vector")
    heads, d, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
    scale, causal = to_f32(op.float_prop("scale")), op.bool_prop("causal")
    sq, sk = q.shape[0], k.shape[0]
    # nn.attention's key mask: the bias row, built once before the predicated heads
    bias = key_mask_bias(ctx, env.tensor(op.mask), sk) if op.mask is not None else None
    out = ctx.activation(tuple(shape_of(op.results[0].type))).as2d()
    vd = heads * dv
    held = None
    if 2 * sq * vd <= ctx.cap(V, 2):  # the whole output in vec, zeroed in SRAM, one STORE
        held = (V, ctx.hold(V, 2 * sq * vd))
        ctx.emit(
            "MOVE",
            src_dtype=DType.INT8,
            dst_dtype=DType.FP16,
            dst_buf=V,
            dst_off=held[1],
            dst_stride=vd,
            src_buf=V,
            src_off=held[1],
            src_stride=vd,
            rows=sq,
            cols=vd,
            scale=0.0,
        )  # fmt: skip  (int × 0.0: zeros whatever the bytes held)
    qt, split = per_head_plan(ctx, sq, sk, d, dv)
    g_off = kept_rows(ctx, kept, heads)
    zeros = None
    for h in range(heads):
        p = head_pred(ctx, g_off, kept.shape[0], heads, h)
        start = len(ctx.instrs)
        attention_head(
            ctx, h, q, k, v, out, (d, dv, qt), scale, causal, split, bias=bias, held=held
        )
        predicate_since(ctx, start, p)
        if held is not None:
            continue
        zeros = zeros or ctx.add_data(
            ("tokens.zeros16", f"{qt}x{dv}"), np.zeros((qt, dv), np.float16), DType.FP16
        )
        start = len(ctx.instrs)
        z = ctx.take(A, 2 * qt * dv)
        load(ctx, zeros, A, z)
        for q0 in range(0, sq, qt):
            store(ctx, out.block(q0, min(qt, sq - q0), h * dv, dv), A, z)
        predicate_since(ctx, start, p, neg=True)
    if held is not None:
        store(ctx, out, V, held[1])
    return out
