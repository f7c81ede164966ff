"""Lowering of elementwise and row ops: add/sub/mul/div (broadcasting), gelu, tanh, relu,
layer_norm, softmax. All run on fp16 tiles (the vector unit computes in fp32 internally)."""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load, row_tiles, store
from backend.lower.env import Env
from backend.lower.gemm_quant import load_residual
from backend.lower.registry import rule
from backend.lower.values import DTensor
from dialects import nn
from dialects.nn_base import shape_of

A, W, C, V, IX = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC, Buf.IDX
F16 = DType.FP16


def _col_tiles(ctx: LowerCtx, cols: int, cap: int) -> int:
    return max(2, min(cols, cap // 2 // 2 * 2))


_BIN = {nn.AddOp: "add", nn.SubOp: "sub", nn.MulOp: "mul", nn.DivOp: "div"}


def _bcast_kind(b_shape: tuple[int, ...], rows: int, cols: int) -> str:
    bs = tuple(b_shape)
    while len(bs) > 2 and bs[0] == 1:
        bs = bs[1:]
    if len(bs) == 0 or all(d == 1 for d in bs):
        return "scalar"
    if len(bs) == 1:
        bs = (1, bs[0])
    if len(bs) > 2:
        return "none" if int(np.prod(bs[:-1])) == rows and bs[-1] == cols else "?"
    if bs == (rows, cols):
        return "none"
    if bs == (1, cols):
        return "row"
    if bs == (rows, 1):
        return "col"
    return "?"


@rule(nn.AddOp, nn.SubOp, nn.MulOp, nn.DivOp)
def lower_binary(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Elementwise with numpy broadcasting of the second operand (row, column, scalar)."""
    name = _BIN[type(op)]
    lhs, rhs = op.operands[0], op.operands[1]
    out_shape = shape_of(op.results[0].type)
    if tuple(shape_of(lhs.type)) != tuple(out_shape):
        if name in ("add", "mul") and tuple(shape_of(rhs.type)) == tuple(out_shape):
            lhs, rhs = rhs, lhs
        else:
            raise BackendError(
                f"{op.name}: broadcasting the first operand {list(shape_of(lhs.type))} is not supported"
            )
    out = ctx.activation(out_shape)
    a = env.tensor(lhs).as2d()
    rows, cols = a.shape
    kind = _bcast_kind(shape_of(rhs.type), rows, cols)
    if kind == "?":
        raise BackendError(
            f"{op.name}: cannot broadcast {list(shape_of(rhs.type))} to {list(out_shape)}"
        )
    imm = 0.0
    b: DTensor | None = None
    if kind == "scalar" and env.is_weight(rhs):
        imm = to_f32(float(np.asarray(env.weight(rhs, op.name).array).reshape(-1)[0]))
    else:
        b = env.tensor(rhs).as2d() if kind != "scalar" else env.tensor(rhs).as2d()
        if kind == "scalar":
            kind = "col"  # a one-element tensor read with row stride 0
    ct = min(cols, max(2, ctx.cap(A) // 2))
    rt = row_tiles(rows, 2 * ct, min(ctx.cap(A), ctx.cap(W), ctx.cap(V)), op.name, ctx)
    b_held = -1
    if b is not None and kind == "row" and ct == cols:
        b_held = ctx.hold(W, 2 * cols)
        load(ctx, b, W, b_held)
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        for c0 in range(0, cols, ct):
            cl = min(ct, cols - c0)
            a_off = ctx.take(A, 2 * rt * ct)
            load(ctx, a.block(r0, rl, c0, cl), A, a_off)
            b_args: dict[str, object] = {}
            if b is not None:
                if b_held >= 0:
                    b_off, b_stride = b_held, cols
                else:
                    b_off = ctx.take(W, 2 * rt * ct)
                    if kind == "none":
                        load(ctx, b.block(r0, rl, c0, cl), W, b_off)
                        b_stride = cl
                    elif kind == "row":
                        load(ctx, b.block(0, 1, c0, cl), W, b_off)
                        b_stride = cl
                    elif b.shape == (1, 1):
                        load(ctx, b.block(0, 1, 0, 1), W, b_off)
                        b_stride = 0
                    else:
                        load(ctx, b.block(r0, rl, 0, 1), W, b_off)
                        b_stride = 1
                b_args = {"b_buf": W, "b_off": b_off, "b_stride": b_stride}
            v_off = ctx.take(V, 2 * rt * ct)
            ctx.emit(
                "VEC", op=name, bcast=kind, dtype=F16, dst_buf=V, dst_off=v_off, dst_stride=cl,
                a_buf=A, a_off=a_off, a_stride=cl, rows=rl, cols=cl, imm=imm, **b_args,
            )  # fmt: skip
            store(ctx, out.block(r0, rl, c0, cl), V, v_off)
    return out


def add_same_shape(ctx: LowerCtx, a: DTensor, b: DTensor, out: DTensor, what: str) -> None:
    """out = a + b for same-shape fp16 2-D tensors (row tiles)."""
    a, b, out = a.as2d(), b.as2d(), out.as2d()
    rows, cols = a.shape
    rt = row_tiles(rows, 2 * cols, min(ctx.cap(A), ctx.cap(W), ctx.cap(V)), what, ctx)
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        a_off = ctx.take(A, 2 * rt * cols)
        b_off = ctx.take(W, 2 * rt * cols)
        v_off = ctx.take(V, 2 * rt * cols)
        load(ctx, a.block(r0, rl, 0, cols), A, a_off)
        load(ctx, b.block(r0, rl, 0, cols), W, b_off)
        ctx.emit(
            "VEC", op="add", dtype=F16, dst_buf=V, dst_off=v_off, dst_stride=cols, a_buf=A,
            a_off=a_off, a_stride=cols, b_buf=W, b_off=b_off, b_stride=cols, rows=rl, cols=cols,
        )  # fmt: skip
        store(ctx, out.block(r0, rl, 0, cols), V, v_off)


def _unary(ctx: LowerCtx, op: Operation, env: Env, vop: str) -> DTensor:
    x = env.tensor(op.operands[0]).as2d()
    out = ctx.activation(shape_of(op.results[0].type))
    rows, cols = x.shape
    ct = min(cols, max(2, ctx.cap(A) // 2))
    rt = row_tiles(rows, 2 * ct, min(ctx.cap(A), ctx.cap(V)), op.name, ctx)
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        for c0 in range(0, cols, ct):
            cl = min(ct, cols - c0)
            a_off = ctx.take(A, 2 * rt * ct)
            load(ctx, x.block(r0, rl, c0, cl), A, a_off)
            v_off = ctx.take(V, 2 * rt * ct)
            ctx.emit(
                "VEC", op=vop, dtype=F16, dst_buf=V, dst_off=v_off, dst_stride=cl,
                a_buf=A, a_off=a_off, a_stride=cl, rows=rl, cols=cl,
            )  # fmt: skip
            store(ctx, out.block(r0, rl, c0, cl), V, v_off)
    return out


@rule(nn.GeluOp)
def lower_gelu(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """VEC gelu (erf) or gelu_tanh."""
    return _unary(ctx, op, env, "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu")  # type: ignore[attr-defined]


@rule(nn.TanhOp)
def lower_tanh(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """VEC tanh."""
    return _unary(ctx, op, env, "tanh")


@rule(nn.ReluOp)
def lower_relu(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """VEC relu."""
    return _unary(ctx, op, env, "relu")


def row_op(
    ctx: LowerCtx, x: DTensor, out: DTensor, what: str, src_deq: float | None = None, **row: object
) -> None:
    """A ROW op over fp16 row tiles of ``x`` (an int8 ``x`` is dequantized by ``src_deq`` in SRAM)."""
    rows, cols = x.shape
    rt = row_tiles(rows, 2 * cols, min(ctx.cap(A), ctx.cap(V)), what, ctx)
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        a_off = ctx.take(A, 2 * rt * cols)
        load_residual(ctx, x.block(r0, rl, 0, cols), A, a_off, src_deq)
        v_off = ctx.take(V, 2 * rt * cols)
        ctx.emit(
            "ROW", dtype=F16, dst_buf=V, dst_off=v_off, dst_stride=cols, src_buf=A,
            src_off=a_off, src_stride=cols, rows=rl, cols=cols, **row,
        )  # fmt: skip
        store(ctx, out.block(r0, rl, 0, cols), V, v_off)


@rule(nn.LayerNormOp)
def lower_layer_norm(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """ROW layernorm on fp16 rows; gamma and beta as one fp32 [2, D] constant held in idx."""
    assert isinstance(op, nn.LayerNormOp)
    x = env.tensor(op.input).as2d()
    out = ctx.activation(shape_of(op.results[0].type))
    g = env.weight(op.gamma, "nn.layer_norm gamma")
    b = env.weight(op.beta, "nn.layer_norm beta")
    gb = np.stack([g.array, b.array]).astype(np.float32)
    gt = ctx.add_data((f"{g.sym}|{b.sym}", "ln32"), gb, DType.FP32)
    cols = x.shape[1]
    buf = IX if 8 * cols <= ctx.sram[IX].ring // 2 else W
    g_off = ctx.hold(buf, 8 * cols)
    load(ctx, gt, buf, g_off)
    eps = to_f32(op.float_prop("eps"))
    deq = ctx.int8_inputs.get(op)  # the int8 residual stream (fuse_quant._int8_stream)
    row_op(ctx, x, out.as2d(), op.name, deq, op="layernorm", eps=eps, g_buf=buf, g_off=g_off)
    return out


@rule(nn.SoftmaxOp)
def lower_softmax(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """ROW softmax over the last axis."""
    assert isinstance(op, nn.SoftmaxOp)
    shape = shape_of(op.results[0].type)
    if op.int_prop("axis") % len(shape) != len(shape) - 1:
        raise BackendError(f"{op.name}: only softmax over the last axis is supported")
    x = env.tensor(op.input).as2d()
    out = ctx.activation(shape)
    row_op(ctx, x, out.as2d(), op.name, op="softmax")
    return out
