"""2:4-sparse fp16 GEMM: weights marked ``{sparsity = "2:4"}`` run as MATMUL ``sp24h``.

The weight B[K, N] (a linear's wᵀ) is stored compressed in the data section in the layout of
``backend.interpreter.numerics.sp24_compress``: values [K/2, N] fp16 and position nibbles
[K/4, N] packed two per byte (a [K/4, N/2] byte array). A K-chunk × N-tile block of both is a
plain 2-D DMA block when K-chunks are multiples of 4 and N-tiles even, so each B tile is two LOADs
(values, then metadata right after them in ``wgt``) and one MATMUL with half the K-term.
Weights whose N is odd stay dense (their metadata rows would not start on a byte).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from xdsl.dialects.builtin import StringAttr

from backend.config import Config
from backend.cost.formulas import matmul_cycles, vector_cycles, vector_passes
from backend.errors import BackendError
from backend.interpreter.numerics import sp24_compress
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load
from backend.lower.gemm import (
    GemmPlan,
    LoopFit,
    _al,
    _cands,
    epilogue,
    epilogue_rows,
    hold_bias,
    loop_orders,
)
from backend.lower.gemm_quant import QGemm, epilogue_q, load_residual, quantize_tile
from backend.lower.values import DTensor
from dialects import nn

A, W = Buf.ACT, Buf.WGT


@dataclass(frozen=True)
class Sp24Tensor(DTensor):
    """A 2:4-compressed B[K, N]: logically [K, N] fp16; ``values`` [K/2, N] fp16 and ``meta``
    [K/4, N/2] bytes of packed position nibbles in DRAM. Only ``gemm_sp24`` may read it."""

    values: DTensor = field(default=None)  # type: ignore[assignment]
    meta: DTensor = field(default=None)  # type: ignore[assignment]


def sp24_weight(ctx: LowerCtx, key: str, b: np.ndarray, dtype: DType = DType.FP16) -> DTensor:
    """B[K, N] (a 2:4 weight, transposed) placed compressed, values fp16 (MATMUL sp24h) or int8
    (sp24, a quantized weight); uncompressed if N is odd."""
    b16 = np.ascontiguousarray(b, dtype=np.float16 if dtype is DType.FP16 else np.int8)
    k, n = b16.shape
    if n % 2:
        return ctx.add_data((key, "T16" if dtype is DType.FP16 else "T8"), b16, dtype)
    hit = ctx.data_cache.get((key, "sp24v"))
    if hit is None:
        try:
            vals, meta = sp24_compress(b16)
        except ValueError as e:
            raise BackendError(
                f"weight {key} is marked 2:4 but {e} (did a pass change it after sparsify-2-4? "
                "run sparsify-2-4 after pruning)"
            ) from None
        ctx.add_data((key, "sp24v"), vals, dtype)
        nib = np.frombuffer(meta, np.int8).reshape(k // 4, n // 2)
        ctx.add_data((key, "sp24m"), nib, DType.INT8)
    vals_t, meta_t = ctx.data_cache[(key, "sp24v")], ctx.data_cache[(key, "sp24m")]
    logical = DTensor.contiguous(vals_t.addr, (k, n), dtype)
    return Sp24Tensor(logical.addr, logical.shape, logical.strides, dtype, vals_t, meta_t)


def _b_tile(kc: int, nt: int) -> tuple[int, int]:
    """Bytes of one B tile in wgt: (values, values + metadata), each 64-B aligned."""
    v = _al(kc * nt)  # kc/2 rows of nt fp16 values
    return v, v + _al(kc * nt // 8)


@lru_cache(maxsize=1024)
def plan_sp24(
    m: int,
    n: int,
    k: int,
    config: Config,
    rings: tuple[int, int, int, int],
    residual: bool = False,
    act: str | None = None,
    full_k: bool = False,
) -> GemmPlan | None:
    """As ``gemm.plan_gemm``, for a compressed B (K-chunks multiples of 4, even N-tiles) and
    the ``sp24h`` MATMUL cycles."""
    r_act, r_wgt, r_acc, r_vec = rings
    best: GemmPlan | None = None
    a_bytes, b_bytes = 2 * m * k, k * n + k * n // 8
    epi_passes = sum(vector_passes(x) for x in ("add", "move", *((act,) if act else ())))
    for mt in _cands(m, config.matrix.rows):
        for nt in (t for t in _cands(n, config.matrix.cols) if t % 2 == 0):
            c_tile = _al(4 * mt * nt)
            for c_buf, r_c, r_o in ((Buf.ACC, r_acc, r_vec), (Buf.VEC, r_vec, r_acc)):
                if c_tile > r_c or epilogue_rows(mt, nt, r_o, residual) < 1:
                    continue
                c_depth = 2 if 2 * c_tile <= r_c else 1
                for kc in [k] if full_k else [c for c in _cands(k, 16) if c % 4 == 0]:
                    nm, nn, nk = math.ceil(m / mt), math.ceil(n / nt), math.ceil(k / kc)
                    a_tile, b_tile = _al(2 * mt * kc), _b_tile(kc, nt)[1]
                    mm = matmul_cycles(mt, nt, kc, "sp24h", config) * nm * nn * nk
                    if c_depth == 1:
                        mm += vector_cycles(mt * nt, epi_passes, config) * nm * nn
                    fits = LoopFit(a_tile, b_tile, r_act, r_wgt, a_bytes, b_bytes)
                    for order, traffic, est in loop_orders(fits, m, n, nm, nn, nk, mm, 3, config):
                        if best is None or est < best.est_cycles:
                            best = GemmPlan(mt, nt, kc, order, traffic, est, c_buf, c_depth)
    return best


def gemm_sp24(
    ctx: LowerCtx,
    a: DTensor,
    b: Sp24Tensor,
    out: DTensor,
    *,
    tb: bool = False,
    bias: DTensor | None = None,
    act: str | None = None,
    residual: DTensor | None = None,
    prologue: tuple[int, float] | None = None,
    quant: QGemm | None = None,
) -> bool:
    """``gemm.gemm`` with a compressed B (same arguments and result); with ``quant``, MATMUL
    ``sp24`` (int8 A, int8 values) and the integer epilogue."""
    if tb:
        raise BackendError("a 2:4-compressed weight cannot be used transposed")
    a, out = a.as2d(), out.as2d()
    m, k = a.shape
    n = b.shape[1]
    rings = ctx.rings()
    plan = plan_sp24(m, n, k, ctx.config, rings, residual is not None, act, prologue is not None)
    if plan is None and prologue is not None:
        return False
    if plan is None:
        raise ctx.too_big(f"2:4 GEMM {m}x{k}·{k}x{n}: no tiling fits the SRAM rings {rings}")
    bias_off = hold_bias(ctx, bias, n)
    row_off = -1
    if quant is not None:
        row_off = hold_bias(ctx, quant.requant[0] if quant.requant else quant.deq, n)
    _, _, nk = plan.counts(m, n, k)
    mt, nt, kc = plan.mt, plan.nt, plan.kc
    v_bytes, b_bytes = _b_tile(kc, nt)
    held: dict[int, int] = {}
    for later, m0, ml, n0, nl in plan.walk(m, n):
        c_off = ctx.take(plan.c_buf, 4 * mt * nt)
        for ki in range(nk):
            k0 = ki * kc
            kl = min(kc, k - k0)
            if plan.order == "m" and nk == 1 and later:
                a_off = held[0]
            else:
                a_off = ctx.take(A, 2 * mt * kc)
                a_deq = quant.a_deq if quant is not None else None  # an int8 stream input
                load_residual(ctx, a.block(m0, ml, k0, kl), A, a_off, a_deq)
                if prologue is not None:
                    ctx.emit(
                            "ROW", op="layernorm", dtype=DType.FP16, dst_buf=A, dst_off=a_off,
                            dst_stride=kl, src_buf=A, src_off=a_off, src_stride=kl, rows=ml,
                            cols=kl, eps=prologue[1], g_buf=Buf.IDX, g_off=prologue[0],
                        )  # fmt: skip
                if quant is not None and quant.a_inv is not None:
                    quantize_tile(ctx, A, a_off, ml, kl, quant.a_inv)
                held[0] = a_off
            if plan.order == "n" and nk == 1 and later:
                b_off = held[1]
            else:
                b_off = ctx.take(W, b_bytes)
                load(ctx, b.values.block(k0 // 2, kl // 2, n0, nl), W, b_off)
                load(ctx, b.meta.block(k0 // 4, kl // 4, n0 // 2, nl // 2), W, b_off + v_bytes)
                held[1] = b_off
            ctx.emit(
                    "MATMUL", mode="sp24h" if quant is None else "sp24", acc=int(ki > 0), a_buf=A, a_off=a_off, a_stride=kl,
                    b_buf=W, b_off=b_off, b_stride=nl, c_buf=plan.c_buf, c_off=c_off,
                    c_stride=nl, m=ml, n=nl, k=kl, meta_buf=W, meta_off=b_off + v_bytes,
                )  # fmt: skip
        res = residual.block(m0, ml, n0, nl) if residual is not None else None
        dst = out.block(m0, ml, n0, nl)
        if quant is not None:
            epilogue_q(ctx, plan, c_off, ml, nl, dst, bias, n0, act, bias_off, res, quant, row_off)
        else:
            epilogue(ctx, plan, c_off, ml, nl, dst, bias, n0, act, bias_off, res)
    return True


def sparsity(op: object) -> str | None:
    """The ``sparsity`` attribute of an nn.weight op (None if absent or not an nn.weight)."""
    attr = op.attributes.get("sparsity") if isinstance(op, nn.WeightOp) else None
    return attr.data if isinstance(attr, StringAttr) else None


def sp24_merged(
    ctx: LowerCtx, group: list[nn.LinearOp], key: str, ws: list[np.ndarray]
) -> DTensor | None:
    """The concatenated B of merged linears, compressed when every member's weight is 2:4."""
    if not all(sparsity(lin.weight.owner) == "2:4" for lin in group):
        return None
    return sp24_weight(ctx, key, np.concatenate(ws, axis=0).T)
