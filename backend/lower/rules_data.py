"""Lowering of data movement: weight, reshape, transpose, slice, concat, gather.

Reshape and slice are views (no instructions) when the data allows; transpose of a 2-D tensor
goes through SRAM (MOVE transpose=1); concat copies each input into its block of the result."""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, row_tiles, store
from backend.lower.env import Env, Value, WeightRef
from backend.lower.registry import rule
from backend.lower.sparse import sparsity
from backend.lower.values import DTensor
from dialects import nn
from dialects.nn_base import shape_of

A, W, C, V, IX = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC, Buf.IDX


@rule(nn.WeightOp)
def lower_weight(ctx: LowerCtx, op: Operation, env: Env) -> Value:
    """No code: the consumer places the array in the data section in the layout it needs."""
    assert isinstance(op, nn.WeightOp)
    if op.symbol not in ctx.weights:
        raise BackendError(f"nn.weight @{op.symbol}: no such entry in the weights")
    return WeightRef(op.symbol, np.asarray(ctx.weights[op.symbol]), sparsity(op))


def copy(ctx: LowerCtx, src: DTensor, dst: DTensor, what: str) -> None:
    """DRAM → SRAM → DRAM copy of a 2-D block, tiled by rows."""
    src, dst = src.as2d(), dst.as2d()
    rows, cols = src.shape
    rt = row_tiles(rows, src.esize * cols, ctx.cap(V), what, ctx)
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        off = ctx.take(V, src.esize * rt * cols)
        load(ctx, src.block(r0, rl, 0, cols), V, off)
        store(ctx, dst.block(r0, rl, 0, cols), V, off)


def materialize(ctx: LowerCtx, t: DTensor, what: str) -> DTensor:
    """A contiguous copy of a strided view."""
    out = ctx.activation(t.shape, t.dtype)
    if len(t.shape) <= 2 or _is_2d(t):
        copy(ctx, t, out.as2d(), what)
        return out
    lead = t.shape[0]
    for i in range(lead):
        sub = DTensor(t.addr + i * t.strides[0], t.shape[1:], t.strides[1:], t.dtype)
        dsub = DTensor(out.addr + i * out.strides[0], out.shape[1:], out.strides[1:], t.dtype)
        if len(sub.shape) > 2:
            raise BackendError(f"{what}: copies of rank-{len(t.shape)} views are not supported")
        copy(ctx, sub, dsub, what)
    return out


def _is_2d(t: DTensor) -> bool:
    try:
        t.as2d()
    except BackendError:
        return False
    return True


@rule(nn.ReshapeOp)
def lower_reshape(ctx: LowerCtx, op: Operation, env: Env) -> Value:
    """A view of contiguous data (weights: the array reshaped)."""
    x = env.raw(op.operands[0])
    shape = shape_of(op.results[0].type)
    if isinstance(x, WeightRef):
        return WeightRef(f"{x.sym}@reshape{list(shape)}", x.array.reshape(shape))
    v = x.reshape(tuple(shape))
    if v is None:
        v = materialize(ctx, x, op.name).reshape(tuple(shape))
        assert v is not None
    return v


@rule(nn.SliceOp)
def lower_slice(ctx: LowerCtx, op: Operation, env: Env) -> Value:
    """A strided view (weights: the array sliced)."""
    assert isinstance(op, nn.SliceOp)
    offs = op.ints_prop("offsets")
    sizes = shape_of(op.results[0].type)
    x = env.raw(op.input)
    if isinstance(x, WeightRef):
        idx = tuple(slice(o, o + n) for o, n in zip(offs, sizes, strict=True))
        return WeightRef(f"{x.sym}@slice{list(offs)}{list(sizes)}", x.array[idx])
    return x.slice(tuple(offs), tuple(sizes))


@rule(nn.TransposeOp)
def lower_transpose(ctx: LowerCtx, op: Operation, env: Env) -> Value:
    """Leading-dim permutations are views; swapping the last two dims goes through MOVE."""
    assert isinstance(op, nn.TransposeOp)
    perm = op.ints_prop("perm")
    x = env.raw(op.input)
    if isinstance(x, WeightRef):
        return WeightRef(f"{x.sym}@T{list(perm)}", np.ascontiguousarray(x.array.transpose(perm)))
    n = len(perm)
    if n < 2 or perm[-1] == n - 1:
        return x.transpose(tuple(perm))
    if n != 2:
        raise BackendError(
            f"{op.name}: permutation {list(perm)} moving the last dim is only supported for 2-D tensors"
        )
    src = x.as2d()
    rows, cols = src.shape
    out = ctx.activation((cols, rows))
    ct = max(1, min(cols, int((ctx.cap(A) // 2) ** 0.5)))
    rt = max(1, min(rows, ct))
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        for c0 in range(0, cols, ct):
            cl = min(ct, cols - c0)
            a_off = ctx.take(A, 2 * rt * ct)
            load(ctx, src.block(r0, rl, c0, cl), A, a_off)
            v_off = ctx.take(V, 2 * rt * ct)
            ctx.emit(
                "MOVE", src_dtype=DType.FP16, dst_dtype=DType.FP16, transpose=1, dst_buf=V,
                dst_off=v_off, dst_stride=rl, src_buf=A, src_off=a_off, src_stride=cl,
                rows=rl, cols=cl,
            )  # fmt: skip
            store(ctx, out.block(c0, cl, r0, rl), V, v_off)
    return out


@rule(nn.ConcatOp)
def lower_concat(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Each input copied into its block of the result (axis 0 = rows, last axis = cols)."""
    assert isinstance(op, nn.ConcatOp)
    shape = shape_of(op.results[0].type)
    axis = op.int_prop("axis") % len(shape)
    out = ctx.concat_out.get(op) or ctx.activation(shape)
    o2 = out.as2d()
    pos = 0
    for x in op.inputs:
        if x in ctx.dest:  # its producer already wrote it into this block
            pos += shape_of(x.type)[axis]
            continue
        t = env.tensor(x)
        n = shape_of(x.type)[axis]
        if pos == 0 and axis == 0 and t.is_contiguous and t.addr == out.addr:
            pos += n  # an input placed in this block already (lower_module: an appended cache)
            continue
        if t.as2d().strides[1] != t.esize or not _is_2d(t):
            t = materialize(ctx, t, op.name)
        if axis == len(shape) - 1:
            copy(ctx, t, o2.block(0, o2.shape[0], pos, n), op.name)
        elif axis == 0:
            per = t.as2d().shape[0] // max(n, 1)
            copy(ctx, t, o2.block(pos * per, n * per, 0, o2.shape[1]), op.name)
        else:
            raise BackendError(
                f"{op.name}: concat along axis {axis} of a rank-{len(shape)} tensor is not supported"
            )
        pos += n
    return out


@rule(nn.GatherOp)
def lower_gather(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Index rows into idx (LOAD int32), GATHER the table rows by DMA, STORE."""
    assert isinstance(op, nn.GatherOp)
    src = env.tensor(op.table)
    if len(src.shape) == 1 and src.is_contiguous:  # a vector: rows of one element
        table = DTensor.contiguous(src.addr, (src.shape[0], 1), src.dtype)
    else:
        table = src.as2d()
    es = table.esize
    ids = env.tensor(op.indices)
    if ids.dtype is not DType.INT32:
        raise BackendError(f"{op.name}: indices must be int32")
    n = int(np.prod(ids.shape))
    ids = DTensor.contiguous(ids.addr, (1, n), DType.INT32) if ids.is_contiguous else ids
    out = ctx.activation(shape_of(op.results[0].type), table.dtype)
    o2 = out.as2d() if len(out.shape) != 1 else DTensor.contiguous(out.addr, (n, 1), out.dtype)
    cols = table.shape[1]
    ct = min(cols, max(2, ctx.cap(V) // es))
    rt = row_tiles(n, es * ct, ctx.cap(V), op.name, ctx)
    rt = min(rt, ctx.cap(IX) // 4)
    for r0 in range(0, n, rt):
        rl = min(rt, n - r0)
        i_off = ctx.take(IX, 4 * rt)
        load(ctx, ids.block(0, 1, r0, rl), IX, i_off)
        for c0 in range(0, cols, ct):
            cl = min(ct, cols - c0)
            v_off = ctx.take(V, es * rt * ct)
            ctx.emit(
                "GATHER", dtype=table.dtype, dst_buf=V, dst_off=v_off, dst_stride=cl,
                src_addr=table.at(0, c0), src_stride=table.strides[0], idx_buf=IX,
                idx_off=i_off, rows=rl, cols=cl,
            )  # fmt: skip
            store(ctx, o2.block(r0, rl, c0, cl), V, v_off)
    return out


def plan_concat_dest(ctx: LowerCtx, ops: list[Operation]) -> None:
    """Row concats (ViT's [CLS; patches]) whose patch-embed operand is read only by the concat:
    the concat's result is allocated up front and the patch embedding's GEMM stores straight
    into its block, so the patches are not copied through SRAM again."""
    for op in ops:
        if not isinstance(op, nn.ConcatOp):
            continue
        shape = shape_of(op.results[0].type)
        if len(shape) != 2 or op.int_prop("axis") % 2 != 0:
            continue
        out, pos = None, 0
        for x in op.inputs:
            n = shape_of(x.type)[0]
            if isinstance(x.owner, nn.PatchEmbedOp) and len(list(x.uses)) == 1:
                out = out or ctx.activation(shape)
                ctx.dest[x] = out.block(pos, n, 0, shape[1])
            pos += n
        if out is not None:
            ctx.concat_out[op] = out
