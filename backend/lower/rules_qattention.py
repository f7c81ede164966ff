"""Lowering of quant.attention (int8 Q·Kᵀ and P·V; semantics in dialects/quant_attention.py).

Per head: int8 K_h and V_h LOADed once into `wgt` (long sequences: V_h in `vec`); per query tile:

    LOAD int8 Q tile → MATMUL int8 tb=1 (S, int32 in acc) → MOVE int32→fp32 scale=c (in place)
    → ROW softmax fp32 (scale 1, causal with row0) → MOVE fp32→int8 scale=127 (Pq in act)
    → MATMUL int8 Pq·V_h (int32 in acc) → MOVE int32→fp32 scale=sv/127 (in place)
    → MOVE fp32→fp16, or →int8 with the next quant.quantize's 1/s when that is fused → STORE.

A `tokens.quant_importance` of the same q, k and scales is fused: an IMPACC colsum of each fp32
softmax tile (backend/lower/importance_sink.py), the scores stored once at the end.

Every step is one instruction computing the op's formula on the same operands, so the integer
intermediates are bit-exact and the fp32 output equals the reference's (the fp16 store rounds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.fuse_quant import QAttnPlan
from backend.lower.gemm import _al
from backend.lower.importance_sink import ScoreSink, quant_score_sink
from backend.lower.registry import rule
from backend.lower.rules_dense import _query_tile
from backend.lower.values import DTensor
from dialects.nn_base import shape_of
from dialects.quant_attention import AttentionOp

A, W, C, V = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC


def _scalar(env: Env, v) -> np.float32:
    return np.float32(np.asarray(env.weight(v, "quant.attention scale").array).reshape(-1)[0])


@rule(AttentionOp)
def lower_qattention(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Per head and query tile: int8 MATMULs with int32 accumulators, fp32 softmax, int8 P."""
    assert isinstance(op, AttentionOp)
    q, k, v = (env.tensor(x).as2d() for x in (op.query, op.key, op.value))
    if any(t.dtype is not DType.INT8 for t in (q, k, v)):
        raise BackendError(f"{op.name}: q, k and v must be int8 activations")
    heads, d, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
    causal = op.bool_prop("causal")
    sq_, sk_, sv_ = (_scalar(env, s) for s in (op.q_scale, op.k_scale, op.v_scale))
    c = np.float32(np.float32(sq_ * sk_) * np.float32(op.float_prop("scale")))  # the op's c, cv
    cv = np.float32(sv_ / np.float32(127.0))
    plan = ctx.qplans.get(op)
    out_inv = plan.out_inv if isinstance(plan, QAttnPlan) else None
    out_dt = DType.INT8 if out_inv is not None else DType.FP16
    ob = 1 if out_inv is not None else 2  # output bytes per element
    sq, sk = q.shape[0], k.shape[0]
    out = ctx.activation(tuple(shape_of(op.result.type)), out_dt).as2d()
    split = sk * (d + dv) > ctx.cap(W, 1)
    if split and (sk * d > ctx.cap(W, 1) or sk * dv > ctx.cap(V, 1)):
        raise ctx.too_big(
            f"quant.attention: int8 K and V of one head ({sk} keys) fit neither wgt "
            f"({ctx.cap(W, 1)} B) nor wgt and vec apart ({ctx.cap(V, 1)} B)"
        )

    def a_bytes(n: int) -> int:
        return _al(n * d) + _al(n * sk) + _al(ob * n * dv)

    def c_bytes(n: int) -> int:
        return _al(4 * n * sk) + _al(4 * n * dv)

    qt = sq
    while qt > 0 and (a_bytes(qt) > ctx.cap(A) or c_bytes(qt) > ctx.cap(C)):
        qt -= 1
    if qt < 1:
        raise ctx.too_big(f"quant.attention: one query row needs {c_bytes(1)} B of acc ({sk} keys)")
    qt = _query_tile(sq, qt, sk, d, dv, ctx.config)
    sink = quant_score_sink(ctx, op, env)  # a tokens.quant_importance fused into this attention
    kd, vd = heads * d, heads * dv
    if _al(sk * kd) + sk * vd <= ctx.cap(W, 1):
        qa = qt
        while qa > 0 and (_al(qa * kd) + _al(ob * qa * vd) + _al(qa * sk) > ctx.cap(A)):
            qa -= 1
        if qa >= 1:
            _all_heads(ctx, q, k, v, out, heads, d, dv, min(qt, qa), causal, c, cv, out_inv, sink)
            return _finish(ctx, env, sink, out)
    for h in range(heads):
        if split:
            k_off, v_buf = ctx.take(W, sk * d), V
            v_off = ctx.take(V, sk * dv)
        else:
            k_off, v_buf = ctx.take(W, _al(sk * d) + sk * dv), W
            v_off = k_off + _al(sk * d)
        load(ctx, k.block(0, sk, h * d, d), W, k_off)
        load(ctx, v.block(0, sk, h * dv, dv), v_buf, v_off)
        for q0 in range(0, sq, qt):
            ql = min(qt, sq - q0)
            a_off = ctx.take(A, a_bytes(qt))
            p_off = a_off + _al(qt * d)
            o_out = p_off + _al(qt * sk)
            s_off = ctx.take(C, c_bytes(qt))
            o_off = s_off + _al(4 * qt * sk)
            load(ctx, q.block(q0, ql, h * d, d), A, a_off)
            row0 = q0 + (sk - sq) if causal else 0
            t = _Tile(ql, sk, d, dv, a_off, d, k_off, d, v_buf, v_off, dv, p_off, s_off, o_off)
            _head(ctx, t, o_out, dv, row0, causal, c, cv, out_dt, out_inv, sink, q0)
            store(ctx, out.block(q0, ql, h * dv, dv), A, o_out)
    return _finish(ctx, env, sink, out)


def _finish(ctx: LowerCtx, env: Env, sink: ScoreSink | None, out: DTensor) -> DTensor:
    """Store the fused importance scores (if any); the attention's output."""
    if sink is not None:
        env[sink.op.results[0]] = sink.finish(ctx)
    return out


def _all_heads(
    ctx: LowerCtx,
    q: DTensor,
    k: DTensor,
    v: DTensor,
    out: DTensor,
    heads: int,
    d: int,
    dv: int,
    qt: int,
    causal: bool,
    c: np.float32,
    cv: np.float32,
    out_inv: float | None,
    sink: ScoreSink | None = None,
) -> None:
    """Every head's K and V loaded at once (whole rows: fewer, fuller DRAM bursts than per-head
    column blocks), one Q tile and one output tile per query tile; per head the same instruction
    sequence as the per-head path, on column slices (strides heads·d, heads·dv)."""
    sq, sk = q.shape[0], k.shape[0]
    kd, vd = heads * d, heads * dv
    out_dt = DType.INT8 if out_inv is not None else DType.FP16
    ob = 1 if out_inv is not None else 2
    k_off = ctx.take(W, _al(sk * kd) + sk * vd)
    v_off = k_off + _al(sk * kd)
    load(ctx, k, W, k_off)
    load(ctx, v, W, v_off)
    for q0 in range(0, sq, qt):
        ql = min(qt, sq - q0)
        a_off = ctx.take(A, _al(qt * kd) + _al(ob * qt * vd))
        o_out = a_off + _al(qt * kd)
        load(ctx, q.block(q0, ql, 0, kd), A, a_off)
        for h in range(heads):
            p_off = ctx.take(A, _al(qt * sk))
            s_off = ctx.take(C, _al(4 * qt * sk) + _al(4 * qt * dv))
            o_off = s_off + _al(4 * qt * sk)
            row0 = q0 + (sk - sq) if causal else 0
            t = _Tile(
                ql, sk, d, dv, a_off + h * d, kd, k_off + h * d, kd, W, v_off + h * dv, vd, p_off,
                s_off, o_off,
            )  # fmt: skip
            _head(ctx, t, o_out + ob * h * dv, vd, row0, causal, c, cv, out_dt, out_inv, sink, q0)
        store(ctx, out.block(q0, ql, 0, vd), A, o_out)


@dataclass(frozen=True)
class _Tile:
    """One head × query tile: ``ql`` queries over ``sk`` keys; SRAM offsets (bytes) and row
    strides (elements) of Q (act), K (wgt), V, Pq (act), the scores S and the output O (acc)."""

    ql: int
    sk: int
    d: int
    dv: int
    q_off: int
    q_stride: int
    k_off: int
    k_stride: int
    v_buf: Buf
    v_off: int
    v_stride: int
    p_off: int
    s_off: int
    o_off: int


def _head(
    ctx: LowerCtx,
    t: _Tile,
    out_off: int,
    out_stride: int,
    row0: int,
    causal: bool,
    c: np.float32,
    cv: np.float32,
    out_dt: DType,
    out_inv: float | None,
    sink: ScoreSink | None = None,
    q0: int = 0,
) -> None:
    """The op's formula for one head and query tile, one instruction a step: S = Q·Kᵀ (int32) →
    f32 ⊗ c → softmax → Pq = rne(P ⊗ 127) → O = Pq·V (int32) → f32 ⊗ cv → fp16 or int8 at
    act[out_off] (row stride ``out_stride``)."""
    ql, sk, d, dv = t.ql, t.sk, t.d, t.dv
    scores = {"dst_buf": C, "dst_off": t.s_off, "dst_stride": sk, "src_buf": C,
              "src_off": t.s_off, "src_stride": sk, "rows": ql, "cols": sk}  # fmt: skip
    ctx.emit(
        "MATMUL", mode="int8", tb=1, a_buf=A, a_off=t.q_off, a_stride=t.q_stride, b_buf=W,
        b_off=t.k_off, b_stride=t.k_stride, c_buf=C, c_off=t.s_off, c_stride=sk, m=ql, n=sk, k=d,
    )  # fmt: skip
    ctx.emit("MOVE", src_dtype=DType.INT32, dst_dtype=DType.FP32, scale=float(c), **scores)
    ctx.emit(
        "ROW", op="softmax", dtype=DType.FP32, scale=1.0, causal=int(causal), row0=row0, **scores
    )  # fmt: skip
    if sink is not None:  # IMPACC of the fp32 P tile (tokens.quant_importance)
        sink.tile(ctx, t.s_off, ql, q0)
    ctx.emit(
        "MOVE", src_dtype=DType.FP32, dst_dtype=DType.INT8, dst_buf=A, dst_off=t.p_off,
        dst_stride=sk, src_buf=C, src_off=t.s_off, src_stride=sk, rows=ql, cols=sk, scale=127.0,
    )  # fmt: skip
    ctx.emit(
        "MATMUL", mode="int8", a_buf=A, a_off=t.p_off, a_stride=sk, b_buf=t.v_buf,
        b_off=t.v_off, b_stride=t.v_stride, c_buf=C, c_off=t.o_off, c_stride=dv, m=ql, n=dv, k=sk,
    )  # fmt: skip
    acc = {"src_buf": C, "src_off": t.o_off, "src_stride": dv, "rows": ql, "cols": dv}
    ctx.emit(
        "MOVE", src_dtype=DType.INT32, dst_dtype=DType.FP32, dst_buf=C, dst_off=t.o_off,
        dst_stride=dv, scale=float(cv), **acc,
    )  # fmt: skip
    ctx.emit(
        "MOVE", src_dtype=DType.FP32, dst_dtype=out_dt, dst_buf=A, dst_off=out_off,
        dst_stride=out_stride, scale=out_inv if out_inv is not None else 1.0, **acc,
    )  # fmt: skip
