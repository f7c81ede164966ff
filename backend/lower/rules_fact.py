"""Lowering of FACT work skipping: `tokens.key_linear` (K/V rows no query selects are not made).

The weight ([in, out] fp16) and the bias row are loaded once and stay in SRAM. The mask's column
counts (IMPACC colsum over row chunks of the int8 [heads·n, n] mask into fp32 accumulators in idx)
are taken once; per row tile t of `tile` keys, CMP reduce=max > 0.5 over the tile's counts sets a
predicate (p1..p15, rotating), and the tile's
LOAD x rows → MATMUL → VEC +bias → MOVE fp16 → STORE runs under it (when the weight does not fit,
rules_dense's tiled `gemm` per tile, which reloads it); under
the negated predicate a zero tile (vec, zeroed once by MOVE int8→fp16 ×0, no DRAM read) is
stored instead, so a skipped tile costs one issue cycle per GEMM instruction, no MACs, and its
output bytes only. Which rows are computed equals the reference's `key_rows` exactly.
"""

from __future__ import annotations

from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, row_tiles, store
from backend.lower.env import Env, bias_row, linear_weight, weight_t
from backend.lower.gemm import gemm
from backend.lower.importance_sink import zeros_row
from backend.lower.registry import rule
from backend.lower.rules_heads import N_PRED, predicate_since
from backend.lower.values import DTensor
from dialects import tokens_fact
from dialects.nn_base import shape_of

V, IX = Buf.VEC, Buf.IDX


@rule(tokens_fact.KeyLinearOp)
def lower_key_linear(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Per key tile: CMP over the mask's columns → predicate; GEMM under it, zeros under its negation."""
    assert isinstance(op, tokens_fact.KeyLinearOp)
    x = env.tensor(op.input).as2d()
    mask = env.tensor(op.mask)
    if mask.dtype is not DType.INT8 or not mask.is_contiguous:
        raise BackendError(f"{op.name}: the mask must come from tokens.predict (int8)")
    if x.dtype is not DType.FP16 or not env.is_weight(op.weight):
        raise BackendError(f"{op.name}: only an fp16 input and a constant weight are lowered")
    w = linear_weight(ctx, env.weight(op.weight, op.name))
    bias = bias_row(ctx, env.weight(op.bias, f"{op.name} bias")) if op.bias is not None else None
    m2 = mask.as2d()
    rows, n = m2.shape
    tile = min(op.int_prop("tile"), n)
    out = ctx.activation(tuple(shape_of(op.results[0].type))).as2d()
    cols = out.shape[1]
    m_off = ctx.hold(IX, 4 * n)
    z_off = ctx.hold(V, 2 * tile * cols)
    ctx.emit(
        "MOVE",
        src_dtype=DType.INT8,
        dst_dtype=DType.FP16,
        dst_buf=V,
        dst_off=z_off,
        dst_stride=cols,
        src_buf=V,
        src_off=z_off,
        src_stride=cols,
        rows=tile,
        cols=cols,
        scale=0.0,
    )  # fmt: skip  (int × 0.0: zeros whatever the bytes held)
    d = x.cols
    resident = 2 * d * cols <= ctx.cap(Buf.WGT, 1) and 2 * tile * d <= ctx.cap(Buf.ACT, 1)
    resident = resident and 4 * tile * cols <= ctx.cap(Buf.ACC, 1)
    tile_offs: tuple[int, int, int, int, int] | None = None  # w, a, c, o, b (b < 0: no bias)
    if resident:
        wt = weight_t(ctx, env.weight(op.weight, op.name))
        w_off = ctx.hold(Buf.WGT, 2 * d * cols)
        a_off = ctx.hold(Buf.ACT, 2 * tile * d)
        c_off = ctx.hold(Buf.ACC, 4 * tile * cols)
        b_off = ctx.hold(IX, 4 * cols) if bias is not None else 0
        load(ctx, wt, Buf.WGT, w_off)
        if bias is not None:
            load(ctx, bias, IX, b_off)
        o_off = ctx.hold(V, 2 * tile * cols)
        tile_offs = (w_off, a_off, c_off, o_off, b_off if bias is not None else -1)
    mask_colsum(ctx, m2, m_off, op.name)
    for t, j0 in enumerate(range(0, n, tile)):
        rl = min(tile, n - j0)
        p = 1 + t % N_PRED
        ctx.emit(
            "CMP", reduce="max", cmp="gt", dtype=DType.FP32, src_buf=IX, src_off=m_off + 4 * j0,
            src_stride=rl, rows=1, cols=rl, imm=0.5, pdst=p,
        )  # fmt: skip
        start = len(ctx.instrs)
        if tile_offs is not None:  # resident
            _tile_gemm(ctx, x.block(j0, rl, 0, d), out.block(j0, rl, 0, cols), *tile_offs)
        else:
            gemm(ctx, x.block(j0, rl, 0, d), w, out.block(j0, rl, 0, cols), bias=bias)
        predicate_since(ctx, start, p)
        start = len(ctx.instrs)
        store(ctx, out.block(j0, rl, 0, cols), V, z_off)
        predicate_since(ctx, start, p, neg=True)
    return out


def mask_colsum(ctx: LowerCtx, m2: DTensor, m_off: int, what: str) -> None:
    """fp32 [n] at idx[m_off] = column sums of the int8 mask [rows, n] (how many (head, query)
    rows select each key): a zero row, then one IMPACC colsum per row chunk through vec."""
    rows, n = m2.shape
    load(ctx, zeros_row(ctx, n), IX, m_off)
    rt = row_tiles(rows, n, ctx.cap(V), what, ctx)
    for r0 in range(0, rows, rt):
        rl = min(rt, rows - r0)
        k_off = ctx.take(V, rt * n)
        load(ctx, m2.block(r0, rl, 0, n), V, k_off)
        ctx.emit(
            "IMPACC", mode="colsum", src_dtype=DType.INT8, src_buf=V, src_off=k_off,
            src_stride=n, rows=rl, cols=n, dst_buf=IX, dst_off=m_off,
        )  # fmt: skip


def _tile_gemm(ctx: LowerCtx, x: DTensor, dst: DTensor, w_off: int, a_off: int, c_off: int,
               o_off: int, b_off: int) -> None:  # fmt: skip
    """dst = x·W (+ bias row in idx at b_off ≥ 0), W [in, out] fp16 resident in wgt at w_off."""
    rows, d = x.shape
    cols = dst.shape[1]
    load(ctx, x, Buf.ACT, a_off)
    ctx.emit(
        "MATMUL", mode="fp16", acc=0, tb=0, a_buf=Buf.ACT, a_off=a_off, a_stride=d,
        b_buf=Buf.WGT, b_off=w_off, b_stride=cols, c_buf=Buf.ACC, c_off=c_off, c_stride=cols,
        m=rows, n=cols, k=d,
    )  # fmt: skip
    if b_off >= 0:
        ctx.emit(
            "VEC", op="add", bcast="row", dtype=DType.FP32, dst_buf=Buf.ACC, dst_off=c_off,
            dst_stride=cols, a_buf=Buf.ACC, a_off=c_off, a_stride=cols, b_buf=IX, b_off=b_off,
            b_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    ctx.emit(
        "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=V, dst_off=o_off,
        dst_stride=cols, src_buf=Buf.ACC, src_off=c_off, src_stride=cols, rows=rows, cols=cols,
    )  # fmt: skip
    store(ctx, dst, V, o_off)
