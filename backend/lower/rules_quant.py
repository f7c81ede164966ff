"""Lowering of the quant dialect: quant.linear as an integer GEMM with its fused prologue and
epilogue (`fuse_quant.QPlan`), and standalone quantize / dequantize / requantize on row tiles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, row_tiles, store
from backend.lower.env import Env
from backend.lower.fuse_quant import QPlan
from backend.lower.gemm import LazyWeight
from backend.lower.gemm_quant import Int4Weight, QGemm, int_weight, quantize_tile
from backend.lower.registry import rule
from backend.lower.rules_dense import _gemm_with_prologue
from backend.lower.sparse import sp24_weight, sparsity
from backend.lower.values import DTensor
from dialects import nn, quant, tokens
from dialects.nn_base import shape_of


def inv_scale(ctx: LowerCtx, scale_op: object) -> float:
    """The fp32 reciprocal 1 ⊘ s of a per-tensor quantize scale (the quant dialect's formula)."""
    assert isinstance(scale_op, nn.WeightOp)
    s = np.float32(np.asarray(ctx.weights[scale_op.symbol], np.float32).reshape(-1)[0])
    return float(np.float32(1.0) / s)


def _array(ctx: LowerCtx, v) -> np.ndarray:
    owner = v.owner
    assert isinstance(owner, nn.WeightOp)
    return np.asarray(ctx.weights[owner.symbol])


def _symbol(v) -> str:
    owner = v.owner
    assert isinstance(owner, nn.WeightOp)
    return owner.symbol


@rule(quant.LinearOp, tokens.MixedLinearOp)
def lower_qlinear(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """The integer GEMM of a (merged) quant.linear with everything its plan absorbed
    (tokens.mixed_linear: the same, with its row mask as MATMUL's precision mask)."""
    assert isinstance(op, quant.LinearOp | tokens.MixedLinearOp)
    if op in ctx.qviews:
        return ctx.qviews[op]
    p: QPlan | None = ctx.qplans.get(op)
    if p is None:
        raise BackendError(
            f"{op.name}: its int32 accumulator must be read by one quant.dequantize or "
            "quant.requantize (as the quantize pass writes it)"
        )
    x = env.tensor(op.input).as2d()
    members = p.members
    ws = [_array(ctx, m.weight) for m in members]
    bits = quant.int_width(members[0].weight.type)
    assert bits is not None
    key = "|".join(_symbol(m.weight) for m in members)
    groups = members[0].int_prop("groups")
    b: DTensor | Int4Weight | LazyWeight
    row_mask = env.tensor(op.low) if isinstance(op, tokens.MixedLinearOp) else None
    if row_mask is not None and (row_mask.dtype is not DType.INT8 or not row_mask.is_contiguous):
        raise BackendError(f"{op.name}: the row mask must be int8 (tokens.row_precision)")
    if row_mask is not None and sparsity(op.weight.owner) == "2:4":
        raise BackendError(f"{op.name}: 2:4-sparse weights with a precision mask are not lowered")
    if bits == 8 and groups == 1 and all(sparsity(m.weight.owner) == "2:4" for m in members):
        b = sp24_weight(ctx, key, np.concatenate(ws, axis=0).T, DType.INT8)  # MATMUL sp24
    elif bits == 8 and groups == 1:  # placed [K, N] or, swapped, [N, K] as the plan picks
        cat = np.concatenate(ws, axis=0).astype(np.int8)
        b = LazyWeight(
            (cat.shape[1], cat.shape[0]),
            lambda: ctx.add_data((key, "T8"), np.ascontiguousarray(cat.T), DType.INT8),
            lambda: ctx.add_data((key, "8"), cat, DType.INT8),
        )
    else:
        b = int_weight(ctx, key, np.concatenate(ws, axis=0), bits)
    n_total = sum(w.shape[0] for w in ws)
    bias: DTensor | None = None
    if groups == 1 and any(m.bias is not None for m in members):
        rows = [
            _array(ctx, m.bias).astype(np.int32)
            if m.bias is not None
            else np.zeros(w.shape[0], np.int32)
            for m, w in zip(members, ws, strict=True)
        ]
        bias = ctx.add_data((key, "bias_i32"), np.concatenate(rows).reshape(1, -1), DType.INT32)
    elif p.bias_add is not None:
        other = [v for v in p.bias_add.operands if isinstance(v.owner, nn.WeightOp)][-1]
        bias = ctx.add_data(
            (_symbol(other), "row32"),
            _array(ctx, other).reshape(1, -1).astype(np.float32),
            DType.FP32,
        )
    mode = "int4w" if isinstance(b, Int4Weight) else "int8"  # odd-N int4 is stored as int8
    a_inv = inv_scale(ctx, p.in_quant.scale.owner) if p.in_quant is not None else None
    if a_inv is None and x.dtype is not DType.INT8:
        raise BackendError(f"{op.name}: expected an int8 input tensor, got {x.dtype.name}")
    out_inv = inv_scale(ctx, p.out_quant.scale.owner) if p.out_quant is not None else None
    q = QGemm(mode, a_inv=a_inv, out_inv=out_inv)
    if p.requant is not None:
        rqs = p.requants or [p.requant]  # merged members: their multipliers side by side
        mult = np.concatenate([
            np.broadcast_to(_array(ctx, r.multiplier).astype(np.int32).reshape(-1), (w.shape[0],))
            for r, w in zip(rqs, ws, strict=True)
        ]).reshape(1, -1)  # fmt: skip
        key_m = "|".join(_symbol(r.multiplier) for r in rqs)
        row = ctx.add_data((key_m, "mult"), mult, DType.INT32)
        q = QGemm(mode, a_inv=a_inv, requant=(row, p.requant.int_prop("shift")))
    elif groups > 1:  # [G, N] scales of every member, side by side
        deq = np.concatenate([_array(ctx, d.scale).astype(np.float32) for d in p.deq], axis=1)
        q = QGemm(
            mode, a_inv=a_inv, out_inv=out_inv, group=ws[0].shape[1] // groups,
            deq=ctx.add_data(("|".join(_symbol(d.scale) for d in p.deq), "deq"), deq, DType.FP32),
        )  # fmt: skip
    else:
        rows = [
            np.broadcast_to(_array(ctx, d.scale).astype(np.float32).reshape(-1), (w.shape[0],))
            for d, w in zip(p.deq, ws, strict=True)
        ]
        deq = ctx.add_data(
            ("|".join(_symbol(d.scale) for d in p.deq), "deq"),
            np.concatenate(rows).reshape(1, -1),
            DType.FP32,
        )
        q = QGemm(mode, a_inv=a_inv, out_inv=out_inv, deq=deq, weight_nk=True)
    q = replace(q, a_deq=p.a_scale, res_deq=p.res_scale, row_mask=row_mask)  # int8 stream reads
    out_dt = DType.INT8 if (p.requant is not None or p.out_quant is not None) else DType.FP16
    out = ctx.activation((x.rows, n_total), out_dt)
    residual = env.tensor(p.residual).as2d() if p.residual is not None else None
    kw = {"bias": bias, "act": p.act, "residual": residual, "quant": q}
    if p.ln is not None:
        ctx.ln_prologue[op] = p.ln
    _gemm_with_prologue(ctx, op, x, b, out, kw)  # type: ignore[arg-type]
    col, first = 0, out
    for m, w in zip(members, ws, strict=True):
        view = out.block(0, x.rows, col, w.shape[0])
        want = tuple(shape_of(m.result.type))[1 if groups > 1 else 0 :]
        if len(want) != 2:
            raise ctx.too_big(f"quant.linear with a rank-{len(want)} result")
        if m is not op:
            ctx.qviews[m] = view
        else:
            first = view
        col += w.shape[0]
    return first


def _row_tiled(ctx: LowerCtx, src: DTensor, dst: DTensor, emit) -> None:
    """Row tiles of a 2-D ``src`` loaded to act, transformed by ``emit(rows, s_off, d_buf,
    d_off)`` and stored from vec to ``dst``."""
    rows, cols = src.shape
    per_row = max(4 * cols, 1)
    step = row_tiles(rows, per_row, ctx.cap(Buf.ACT), ctx.what, ctx)
    step = min(step, row_tiles(rows, per_row, ctx.cap(Buf.VEC), ctx.what, ctx))
    for r0 in range(0, rows, step):
        rl = min(step, rows - r0)
        s_off = ctx.take(Buf.ACT, 4 * rl * cols)
        load(ctx, src.block(r0, rl, 0, cols), Buf.ACT, s_off)
        d_off = ctx.take(Buf.VEC, 4 * rl * cols)
        emit(rl, s_off, d_off)
        store(ctx, dst.block(r0, rl, 0, cols), Buf.VEC, d_off)


@rule(quant.QuantizeOp)
def lower_quantize(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """fp16 tiles → int8 by MOVE with the reciprocal scale."""
    assert isinstance(op, quant.QuantizeOp)
    x = env.tensor(op.input).as2d()
    if quant.int_width(op.result.type) != 8:
        raise BackendError(f"{op.name}: only int8 activations are lowered")
    out = ctx.activation(tuple(shape_of(op.result.type)), DType.INT8)
    inv = inv_scale(ctx, op.scale.owner)
    cols = x.cols

    def emit(rl: int, s_off: int, d_off: int) -> None:
        quantize_tile(ctx, Buf.ACT, s_off, rl, cols, inv)
        ctx.emit(
            "MOVE", src_dtype=DType.INT8, dst_dtype=DType.INT8, dst_buf=Buf.VEC, dst_off=d_off,
            dst_stride=cols, src_buf=Buf.ACT, src_off=s_off, src_stride=cols, rows=rl, cols=cols,
        )  # fmt: skip

    _row_tiled(ctx, x, out.as2d(), emit)
    return out


@rule(quant.DequantizeOp)
def lower_dequantize(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """int8/int32 tiles → fp32 (MOVE) · per-column scales (VEC mul) → fp16."""
    assert isinstance(op, quant.DequantizeOp)
    x = env.tensor(op.input)
    if len(shape_of(op.scale.type)) != 1 or x.dtype not in (DType.INT8, DType.INT32):
        raise BackendError(f"{op.name}: a grouped or non-int8/int32 input is lowered only fused")
    x = x.as2d()
    cols = x.cols
    s = np.broadcast_to(_array(ctx, op.scale).astype(np.float32).reshape(-1), (cols,))
    row = ctx.add_data((_symbol(op.scale), f"deq{cols}"), s.reshape(1, -1), DType.FP32)
    s_off = ctx.hold(Buf.IDX, 4 * cols)
    load(ctx, row, Buf.IDX, s_off)
    out = ctx.activation(tuple(shape_of(op.result.type)))

    def emit(rl: int, a_off: int, d_off: int) -> None:
        ctx.emit(
            "MOVE", src_dtype=x.dtype, dst_dtype=DType.FP32, dst_buf=Buf.VEC, dst_off=d_off,
            dst_stride=cols, src_buf=Buf.ACT, src_off=a_off, src_stride=cols, rows=rl, cols=cols,
        )  # fmt: skip
        ctx.emit(
            "VEC", op="mul", bcast="row", dtype=DType.FP32, dst_buf=Buf.VEC, dst_off=d_off,
            dst_stride=cols, a_buf=Buf.VEC, a_off=d_off, a_stride=cols, b_buf=Buf.IDX,
            b_off=s_off, b_stride=cols, rows=rl, cols=cols,
        )  # fmt: skip
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=Buf.VEC, dst_off=d_off,
            dst_stride=cols, src_buf=Buf.VEC, src_off=d_off, src_stride=cols, rows=rl, cols=cols,
        )  # fmt: skip

    _row_tiled(ctx, x, out.as2d(), emit)
    return out


@rule(quant.RequantizeOp)
def lower_requantize(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """int32 tiles → int8 by REQUANT with per-column multipliers."""
    assert isinstance(op, quant.RequantizeOp)
    x = env.tensor(op.input).as2d()
    cols = x.cols
    m = np.broadcast_to(_array(ctx, op.multiplier).astype(np.int32).reshape(-1), (cols,))
    row = ctx.add_data((_symbol(op.multiplier), f"mult{cols}"), m.reshape(1, -1), DType.INT32)
    m_off = ctx.hold(Buf.IDX, 4 * cols)
    load(ctx, row, Buf.IDX, m_off)
    out = ctx.activation(tuple(shape_of(op.result.type)), DType.INT8)

    def emit(rl: int, a_off: int, d_off: int) -> None:
        ctx.emit(
            "REQUANT", out_dtype="int8", per_col=1, dst_buf=Buf.VEC, dst_off=d_off,
            dst_stride=cols, src_buf=Buf.ACT, src_off=a_off, src_stride=cols, rows=rl,
            cols=cols, shift=op.int_prop("shift"), mult_buf=Buf.IDX, mult_off=m_off,
        )  # fmt: skip

    _row_tiled(ctx, x, out.as2d(), emit)
    return out
