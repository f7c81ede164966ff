"""Lowering of the tokens dialect: importance (IMPACC) and selection (TOPK) on the select unit.

- `tokens.importance`: per head, K_h resident in wgt; per query tile Q·K_hᵀ (MATMUL tb=1, fp32 in
  acc), ROW softmax (scale, causal), IMPACC colsum into fp32 accumulators in idx (zeroed by a LOAD
  of a zero row); "cls" accumulates only query row 0 and scales by 1/heads. The scores leave as
  one fp32 row. This standalone form runs only when the op could not be fused into the
  attention it scores (backend/lower/importance_sink.py: IMPACC on the attention's own softmax
  tiles, no extra MATMUL or softmax).
- `tokens.select`: the fp32 scores into idx, VEC add of a constant row holding +inf at the
  protected positions, TOPK (SpAtten's engine: ⌈n/16⌉+3 cycles per pass), int32 indices stored.
  The kept rows are then `nn.gather` (GATHER by DMA), so later layers run on fewer rows.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.importance_sink import zeros_row
from backend.lower.registry import rule
from backend.lower.values import DTensor
from dialects import tokens

A, W, C, IX = Buf.ACT, Buf.WGT, Buf.ACC, Buf.IDX
F32 = DType.FP32


@rule(tokens.ImportanceOp)
def lower_importance(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    assert isinstance(op, tokens.ImportanceOp)
    if op.results[0] in env.vals:  # computed by the attention it scores (importance_sink.py)
        return env.raw(op.results[0])
    q, k = env.tensor(op.query).as2d(), env.tensor(op.key).as2d()
    heads, d = op.int_prop("heads"), op.int_prop("qk_dim")
    scale, causal = to_f32(op.float_prop("scale")), op.bool_prop("causal")
    cls = op.prop("kind") == "cls"
    sq, sk = q.shape[0], k.shape[0]
    if 2 * sk * d > ctx.cap(W, 1) or 4 * sk > ctx.cap(IX, 1):
        raise ctx.too_big(f"importance: {sk} keys of one head do not fit wgt/idx")
    qt = 1 if cls else min(sq, ctx.cap(C) // (4 * sk), ctx.cap(A) // (2 * d))
    if qt < 1:
        raise ctx.too_big(f"importance: one query row needs {4 * sk} B of acc")
    acc = ctx.hold(IX, 4 * sk)
    prior = env.tensor(op.prior) if op.prior is not None else zeros_row(ctx, sk)
    if prior.dtype is not F32 or not prior.is_contiguous:
        raise BackendError(f"{op.name}: prior must be a contiguous fp32 vector")
    load(ctx, DTensor.contiguous(prior.addr, (1, sk), F32), IX, acc)
    rows = range(0, 1) if cls else range(0, sq, qt)
    for h in range(heads):
        k_off = ctx.take(W, 2 * sk * d)
        load(ctx, k.block(0, sk, h * d, d), W, k_off)
        for q0 in rows:
            ql = min(qt, sq - q0)
            a_off = ctx.take(A, 2 * qt * d)
            s_off = ctx.take(C, 4 * qt * sk)
            load(ctx, q.block(q0, ql, h * d, d), A, a_off)
            ctx.emit(
                "MATMUL", mode="fp16", tb=1, a_buf=A, a_off=a_off, a_stride=d, b_buf=W,
                b_off=k_off, b_stride=d, c_buf=C, c_off=s_off, c_stride=sk, m=ql, n=sk, k=d,
            )  # fmt: skip
            ctx.emit(
                "ROW", op="softmax", dtype=F32, dst_buf=C, dst_off=s_off, dst_stride=sk,
                src_buf=C, src_off=s_off, src_stride=sk, rows=ql, cols=sk, scale=scale,
                causal=int(causal), row0=q0 + (sk - sq) if causal else 0,
            )  # fmt: skip
            ctx.emit(
                "IMPACC", mode="colsum", src_dtype=F32, src_buf=C, src_off=s_off, src_stride=sk,
                rows=ql, cols=sk, dst_buf=IX, dst_off=acc,
            )  # fmt: skip
    if cls and op.prior is not None:
        raise BackendError(f'{op.name}: kind "cls" with a prior is not lowered')
    if cls:
        ctx.emit(
            "VEC", op="mul", bcast="scalar", dtype=F32, dst_buf=IX, dst_off=acc, dst_stride=sk,
            a_buf=IX, a_off=acc, a_stride=sk, rows=1, cols=sk, imm=to_f32(1.0 / heads),
        )  # fmt: skip
    out = ctx.activation((sk,), F32)
    store(ctx, DTensor.contiguous(out.addr, (1, sk), F32), IX, acc)
    return out


@rule(tokens.SelectOp)
def lower_select(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    assert isinstance(op, tokens.SelectOp)
    s = env.tensor(op.scores)
    if s.dtype is not F32 or not s.is_contiguous:
        raise BackendError(f"{op.name}: scores must be a contiguous fp32 vector")
    n, k = s.shape[0], op.int_prop("k")
    if 4 * (2 * n + k) > ctx.cap(IX, 1):
        raise ctx.too_big(f"select: {n} scores do not fit idx")
    s_off = ctx.take(IX, 4 * n)
    load(ctx, DTensor.contiguous(s.addr, (1, n), F32), IX, s_off)
    protect = [p % n for p in op.ints_prop("protect")]
    if protect:
        bias = np.zeros((1, n), np.float32)
        bias[0, protect] = np.inf
        b = ctx.add_data(("tokens.protect", f"{n}:{protect}"), bias, F32)
        b_off = ctx.take(IX, 4 * n)
        load(ctx, b, IX, b_off)
        ctx.emit(
            "VEC", op="add", dtype=F32, dst_buf=IX, dst_off=s_off, dst_stride=n, a_buf=IX,
            a_off=s_off, a_stride=n, b_buf=IX, b_off=b_off, b_stride=n, rows=1, cols=n,
        )  # fmt: skip
    i_off = ctx.take(IX, 4 * k)
    ctx.emit(
        "TOPK", src_buf=IX, src_off=s_off, src_stride=n, rows=1, n=n, k=k, dst_buf=IX,
        dst_off=i_off,
    )  # fmt: skip
    out = ctx.activation((k,), DType.INT32)
    store(ctx, DTensor.contiguous(out.addr, (1, k), DType.INT32), IX, i_off)
    return out
