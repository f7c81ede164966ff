"""The integer side of the tiled GEMM (docs/lowering.md, "Quantized GEMMs").

`gemm(..., quant=QGemm(...))` runs MATMUL int8 (int8 × int8) or int4w (int8 × packed int4) into
int32 accumulators. The A tile is loaded as int8, or as fp16 and quantized in SRAM by one MOVE
fp16 → int8 with the quantize scale (after the layer-norm prologue, if any). The epilogue is one of

- requantize: REQUANT int32 → int8 with per-column multipliers (quant.requantize);
- dequantize: int32 (+ int32 bias) → fp32 (MOVE) · per-column scale (VEC mul) → activation →
  fp16 (+ residual), or → int8 by MOVE with the next quantize's scale (int8 activations in DRAM);
- grouped: each K group's int32 partial tile dequantized with its own scale row and summed in fp32.

Each step is the quant dialect's formula on the same operands, so the integer path is bit-exact
with the reference executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.values import DTensor

if TYPE_CHECKING:
    from backend.lower.gemm import GemmPlan


@dataclass(frozen=True)
class Int4Weight:
    """A packed int4 B [K, N] in DRAM (two values a byte along N, low nibble first)."""

    addr: int
    shape: tuple[int, int]

    def load_block(self, ctx: LowerCtx, k0: int, kl: int, n0: int, nl: int, buf: Buf, off: int):
        k, n = self.shape
        ctx.emit(
            "LOAD", dtype=DType.INT4, dst_buf=buf, dst_off=off, dst_stride=nl,
            src_addr=self.addr + k0 * (n // 2) + n0 // 2, src_stride=n // 2, rows=kl, cols=nl,
        )  # fmt: skip


def pack_int4(q: np.ndarray) -> np.ndarray:
    """[K, N] int4 values (int8 storage, N even) → [K, N/2] bytes, low nibble first."""
    u = (np.asarray(q, np.int16) & 0xF).astype(np.uint8)
    return (u[:, 0::2] | (u[:, 1::2] << 4)).astype(np.uint8)


def int_weight(ctx: LowerCtx, key: str, w: np.ndarray, bits: int) -> DTensor | Int4Weight:
    """A quantized linear weight [N, K] as MATMUL's B [K, N]: int8, or packed int4."""
    wt = np.ascontiguousarray(np.asarray(w).T)
    if bits == 8:
        return ctx.add_data((key, "T8"), wt.astype(np.int8), DType.INT8)
    if wt.shape[1] % 2:  # rows of B cannot be packed: int4 values stored one a byte (MATMUL int8)
        return ctx.add_data((key, "T8"), wt.astype(np.int8), DType.INT8)
    packed = pack_int4(wt).view(np.int8)
    t = ctx.add_data((key, "T4"), packed, DType.INT8)
    return Int4Weight(t.addr, (wt.shape[0], wt.shape[1]))


@dataclass(frozen=True)
class QGemm:
    """What makes a GEMM integer. ``a_inv``: quantize the fp16 A tile in SRAM with this
    reciprocal scale (None: A is int8 in DRAM); ``deq``: fp32 [1, N] dequantize scales, or
    [G, N] for a grouped reduction of ``group`` K each; ``requant``: (int32 [1, N] multipliers,
    shift) instead of dequantizing; ``out_inv``: quantize the fp32 result to int8 with this
    reciprocal scale instead of storing fp16."""

    mode: str
    a_inv: float | None = None
    deq: DTensor | None = None
    requant: tuple[DTensor, int] | None = None
    out_inv: float | None = None
    group: int = 0
    weight_nk: bool = False  # the weight can also be placed [N, K] int8 (swapped orientation)
    a_deq: float | None = None  # A (a layer-norm prologue's input) is int8: dequantize by this
    res_deq: float | None = None  # the residual is int8: dequantize by this before adding
    row_mask: DTensor | None = None  # int8 [M]: rows ≠ 0 run at INT4-MSB (MATMUL precision mask)

    @property
    def swappable(self) -> bool:
        """The swapped orientation (outᵀ = W·Xᵀ) needs an int8 weight as MATMUL's A operand and
        per-row (not per-column) epilogue rows: no int4, requantize or grouped reduction."""
        plain = self.requant is None and not self.group and self.row_mask is None
        return self.weight_nk and self.mode == "int8" and plain

    def mask_args(self, held: int, row: int) -> dict[str, object]:
        """MATMUL fields applying the row mask (held in idx at ``held``) from A row ``row`` on."""
        if self.row_mask is None:
            return {}
        return {"mask": 1, "mask_buf": Buf.IDX, "mask_off": held + row}


def quantize_tile(
    ctx: LowerCtx, buf: Buf, off: int, rows: int, cols: int, inv: float, dst: int | None = None
) -> None:
    """fp16 [rows, cols] at buf[off] → int8 [rows, cols] at buf[dst] (default: in place)."""
    ctx.emit(
        "MOVE", src_dtype=DType.FP16, dst_dtype=DType.INT8, dst_buf=buf,
        dst_off=off if dst is None else dst, dst_stride=cols, src_buf=buf, src_off=off,
        src_stride=cols, rows=rows, cols=cols, scale=inv,
    )  # fmt: skip


def row_at(ctx: LowerCtx, row: DTensor, held: int, n0: int, cols: int, buf: Buf) -> tuple[Buf, int]:
    """Where a 4-byte-per-element row's columns n0..n0+cols are in SRAM: held in idx at ``held``,
    or loaded now into ``buf``."""
    if held >= 0:
        return Buf.IDX, held + 4 * n0
    off = ctx.take(buf, 4 * cols)
    load(ctx, row.block(0, 1, n0, cols), buf, off)
    return buf, off


def dequantize_tile(
    ctx: LowerCtx, cb: Buf, c_off: int, rows: int, cols: int, s_buf: Buf, s_off: int
) -> None:
    """int32 C tile → fp32 in place, times the per-column scale row: one MOVE per_col."""
    ctx.emit(
        "MOVE", src_dtype=DType.INT32, dst_dtype=DType.FP32, dst_buf=cb, dst_off=c_off,
        dst_stride=cols, src_buf=cb, src_off=c_off, src_stride=cols, rows=rows, cols=cols,
        per_col=1, cs_buf=s_buf, cs_off=s_off,
    )  # fmt: skip


def group_sum(
    ctx: LowerCtx, plan: GemmPlan, c_off: int, part_off: int, g: int, rows: int, cols: int,
    scale: DTensor,
) -> None:  # fmt: skip
    """Grouped reduction, after K group ``g``'s MATMUL: group 0 wrote the C tile itself, which is
    dequantized in place; a later group's partial tile is dequantized and added in fp32."""
    cb = plan.c_buf
    s_buf, s_off = row_at(ctx, scale, -1, 0, cols, plan.o_buf)
    at = c_off if g == 0 else part_off
    dequantize_tile(ctx, cb, at, rows, cols, s_buf, s_off)
    if g > 0:
        ctx.emit(
            "VEC", op="add", dtype=DType.FP32, dst_buf=cb, dst_off=c_off, dst_stride=cols,
            a_buf=cb, a_off=c_off, a_stride=cols, b_buf=cb, b_off=part_off, b_stride=cols,
            rows=rows, cols=cols,
        )  # fmt: skip


def epilogue_q(
    ctx: LowerCtx,
    plan: GemmPlan,
    c_off: int,
    rows: int,
    cols: int,
    dst: DTensor,
    bias: DTensor | None,
    n0: int,
    act: str | None,
    bias_off: int,
    residual: DTensor | None,
    q: QGemm,
    row_off: int,
) -> None:
    """The integer GEMM's epilogue (see the module docstring): int32 C tile → DRAM ``dst``
    (int8, or fp16). ``bias`` is int32 (fp32 for a grouped GEMM, added after the sum);
    ``row_off``: the dequantize scales or requantize multipliers held in idx (-1: load per tile)."""
    from backend.lower.gemm import _al, epilogue_rows

    cb, ob, nt = plan.c_buf, plan.o_buf, plan.nt
    grouped = q.group > 0
    if bias is not None:
        b_buf, b_off = row_at(ctx, bias, bias_off, n0, cols, ob)
        ctx.emit(
            "VEC", op="add", bcast="row", dtype=DType.FP32 if grouped else DType.INT32,
            dst_buf=cb, dst_off=c_off, dst_stride=cols, a_buf=cb, a_off=c_off, a_stride=cols,
            b_buf=b_buf, b_off=b_off, b_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    er = epilogue_rows(plan.mt, nt, ctx.sram[ob].ring, residual is not None)
    if q.requant is not None:
        mult, shift = q.requant
        m_buf, m_off = row_at(ctx, mult, row_off, n0, cols, ob)
        for r0 in range(0, rows, er):
            rl = min(er, rows - r0)
            v_off = ctx.take(ob, _al(er * nt))
            ctx.emit(
                "REQUANT", out_dtype="int8", per_col=1, dst_buf=ob, dst_off=v_off,
                dst_stride=cols, src_buf=cb, src_off=c_off + 4 * r0 * cols, src_stride=cols,
                rows=rl, cols=cols, shift=shift, mult_buf=m_buf, mult_off=m_off,
            )  # fmt: skip
            store(ctx, dst.block(r0, rl, 0, cols), ob, v_off)
        return
    if not grouped:
        assert q.deq is not None
        s_buf, s_off = row_at(ctx, q.deq, row_off, n0, cols, ob)
        dequantize_tile(ctx, cb, c_off, rows, cols, s_buf, s_off)
    if act is not None:
        ctx.emit(
            "VEC", op=act, dtype=DType.FP32, dst_buf=cb, dst_off=c_off, dst_stride=cols,
            a_buf=cb, a_off=c_off, a_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    # int8 straight from fp32, unless a residual is added first (in fp16, then quantized)
    direct = q.out_inv is not None and residual is None
    for r0 in range(0, rows, er):
        rl = min(er, rows - r0)
        o_bytes = _al(2 * er * nt)
        v_off = ctx.take(ob, o_bytes * (2 if residual is not None else 1))
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.INT8 if direct else DType.FP16,
            dst_buf=ob, dst_off=v_off, dst_stride=cols, src_buf=cb,
            src_off=c_off + 4 * r0 * cols, src_stride=cols, rows=rl, cols=cols,
            scale=q.out_inv if direct and q.out_inv is not None else 1.0,
        )  # fmt: skip
        res = residual.block(r0, rl, 0, cols) if residual is not None else None
        finish_chunk(ctx, ob, v_off, o_bytes, res, dst.block(r0, rl, 0, cols), q.res_deq, q.out_inv)


def epilogue_qt(
    ctx: LowerCtx,
    plan: GemmPlan,
    c_off: int,
    rows: int,
    cols: int,
    dst: DTensor,
    bias: DTensor | None,
    w0: int,
    act: str | None,
    bias_off: int,
    residual: DTensor | None,
    q: QGemm,
    row_off: int,
) -> None:
    """The swapped orientation's integer epilogue: int32 Cᵀ [features, tokens] (+ int32 bias as a
    column) → fp32 (MOVE) · per-feature scale column (VEC mul, same fp32 product as the plain
    orientation's per_col MOVE) → activation → chunks of tokens transposed by MOVE to fp16 or int8
    (+ residual) → DRAM ``dst`` [tokens, features]."""
    from backend.lower.gemm import _al, epilogue_rows

    cb, ob, ft = plan.c_buf, plan.o_buf, plan.mt
    if bias is not None:
        b_buf, b_off = row_at(ctx, bias, bias_off, w0, rows, ob)
        ctx.emit(
            "VEC", op="add", bcast="col", dtype=DType.INT32, dst_buf=cb, dst_off=c_off,
            dst_stride=cols, a_buf=cb, a_off=c_off, a_stride=cols, b_buf=b_buf, b_off=b_off,
            b_stride=1, rows=rows, cols=cols,
        )  # fmt: skip
    assert q.deq is not None
    s_buf, s_off = row_at(ctx, q.deq, row_off, w0, rows, ob)
    ctx.emit(
        "MOVE", src_dtype=DType.INT32, dst_dtype=DType.FP32, dst_buf=cb, dst_off=c_off,
        dst_stride=cols, src_buf=cb, src_off=c_off, src_stride=cols, rows=rows, cols=cols,
    )  # fmt: skip
    ctx.emit(
        "VEC", op="mul", bcast="col", dtype=DType.FP32, dst_buf=cb, dst_off=c_off,
        dst_stride=cols, a_buf=cb, a_off=c_off, a_stride=cols, b_buf=s_buf, b_off=s_off,
        b_stride=1, rows=rows, cols=cols,
    )  # fmt: skip
    if act is not None:
        ctx.emit(
            "VEC", op=act, dtype=DType.FP32, dst_buf=cb, dst_off=c_off, dst_stride=cols,
            a_buf=cb, a_off=c_off, a_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    direct = q.out_inv is not None and residual is None
    er = epilogue_rows(plan.nt, ft, ctx.sram[ob].ring, residual is not None)
    for t0 in range(0, cols, er):
        tl = min(er, cols - t0)
        o_bytes = _al(2 * er * ft)
        v_off = ctx.take(ob, o_bytes * (2 if residual is not None else 1))
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.INT8 if direct else DType.FP16,
            transpose=1, dst_buf=ob, dst_off=v_off, dst_stride=rows, src_buf=cb,
            src_off=c_off + 4 * t0, src_stride=cols, rows=rows, cols=tl,
            scale=q.out_inv if direct and q.out_inv is not None else 1.0,
        )  # fmt: skip
        res = residual.block(t0, tl, 0, rows) if residual is not None else None
        finish_chunk(ctx, ob, v_off, o_bytes, res, dst.block(t0, tl, 0, rows), q.res_deq, q.out_inv)


def load_residual(ctx: LowerCtx, t: DTensor, buf: Buf, off: int, scale: float | None) -> None:
    """A residual block into an fp16 tile at buf[off]: loaded as is, or (int8 stream) loaded into
    the tile's upper half and dequantized to fp16 by MOVE int8 → fp16 with its scale."""
    if scale is None:
        load(ctx, t, buf, off)
        return
    rows, cols = t.shape
    up = off + rows * cols  # fp16 tile = [int8 half | int8 rows]; the MOVE reads before it writes
    load(ctx, t, buf, up)
    ctx.emit(
        "MOVE", src_dtype=DType.INT8, dst_dtype=DType.FP16, dst_buf=buf, dst_off=off,
        dst_stride=cols, src_buf=buf, src_off=up, src_stride=cols, rows=rows, cols=cols,
        scale=scale,
    )  # fmt: skip


def dequantize_rows(ctx: LowerCtx, t: DTensor, scale: float) -> DTensor:
    """An int8 [rows, cols] DRAM tensor dequantized to a new fp16 one (row tiles through vec)."""
    rows, cols = t.shape
    out = ctx.activation((rows, cols))
    step = max(1, min(rows, ctx.cap(Buf.VEC) // max(3 * cols, 1)))
    for r0 in range(0, rows, step):
        rl = min(step, rows - r0)
        off = ctx.take(Buf.VEC, 3 * step * cols)
        load_residual(ctx, t.block(r0, rl, 0, cols), Buf.VEC, off, scale)
        store(ctx, out.block(r0, rl, 0, cols), Buf.VEC, off)
    return out


def finish_chunk(
    ctx: LowerCtx,
    ob: Buf,
    v_off: int,
    o_bytes: int,
    residual: DTensor | None,
    dst: DTensor,
    res_deq: float | None = None,
    out_inv: float | None = None,
) -> None:
    """A GEMM epilogue's output chunk [tokens, features] at ob[v_off] (fp16, or int8 when already
    quantized): + the residual block (loaded into the next ``o_bytes``; the int8 stream is
    dequantized by ``res_deq``), then quantized by ``out_inv`` if given, then stored to ``dst``.
    Shared by the float and the integer epilogues, both orientations."""
    if residual is not None:
        rl, cols = residual.shape
        r_off = v_off + o_bytes
        load_residual(ctx, residual, ob, r_off, res_deq)
        ctx.emit(
            "VEC", op="add", dtype=DType.FP16, dst_buf=ob, dst_off=v_off, dst_stride=cols,
            a_buf=ob, a_off=v_off, a_stride=cols, b_buf=ob, b_off=r_off, b_stride=cols,
            rows=rl, cols=cols,
        )  # fmt: skip
        if out_inv is not None:
            quantize_tile(ctx, ob, v_off, rl, cols, out_inv)
    store(ctx, dst, ob, v_off)
