"""Lowering of quant.progressive_attention (SpAtten progressive quantization; docs/quantization.md).

K arrives as an int8 activation (quant.quantize's rule). Prologue: K is split into two packed
int4 planes in DRAM with vector instructions (the ISA has no shift or mask, so REQUANT does it):

    msb = (k − 8 + 8) >> 4 = ⌊k / 16⌋            REQUANT int4 (m = 1, shift 4) of k − 8
    lsb = k − 16·((k + 8) >> 4) ∈ [−8, 7]          the low nibble's bits, REQUANT int4 (shift 0)

Per head: LOADBP msb of K_h (resident, `kb`), V_h; per block of `block` query rows:
MATMUL int8 (Q_b · kbᵀ) → MOVE int32→fp32 ·(sq·sk) → ROW softmax → ROW rowmax → CMP min < thr.
The LSB plane is fetched at most once per head, by the first block that needs it, into a second
tile `kf` (MOVE kb → kf, LOADBP lsb; predicate p1 remembers it): `SETP p2 = 0; @!p1 CMP → p2;
@p2 {MOVE, LOADBP lsb, SETP p1 = 1}`. Each block's own decision `pN` predicates the recompute
(MATMUL with kf, MOVE, ROW softmax). Then P → fp16, P·V_h, STORE. Skipped instructions cost one
issue cycle and no DRAM bytes, so the LSB DMA is charged only for heads with a refetching block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load, row_tiles, store
from backend.lower.env import Env
from backend.lower.importance_sink import ScoreSink
from backend.lower.registry import rule
from backend.lower.values import DTensor
from dialects.nn_base import shape_of
from dialects.quant_attention import ProgressiveAttentionOp

A, W, C, V, X = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC, Buf.IDX
P_LOADED, P_FETCH, P_FIRST, P_COUNT = 1, 2, 3, 13  # block decisions rotate over p3..p15


def _scalar(env: Env, v) -> np.float32:
    return np.float32(np.asarray(env.weight(v, "progressive_attention scale").array).reshape(-1)[0])


def split_planes(
    ctx: LowerCtx,
    k: DTensor,
    dest: tuple[DTensor, DTensor] | None = None,
    sink: Callable[[int, int, int, int], None] | None = None,
) -> tuple[int, int]:
    """Store int8 K [Sk, N] as MSB and LSB packed-int4 planes [Sk, N/2 bytes] (fresh regions, or
    the given `dest` blocks); their addresses. With `sink`, nothing is stored: sink(plane (0 MSB,
    1 LSB), vec offset of its packed rows, r0, rows) writes each row tile (returns (0, 0))."""
    sk, n = k.shape
    if sink is not None:
        msb = lsb = DTensor.contiguous(0, (sk, n // 2), DType.INT8)  # not used
    else:
        msb, lsb = dest or (
            ctx.activation((sk, n // 2), DType.INT8),
            ctx.activation((sk, n // 2), DType.INT8),
        )
    kr = row_tiles(sk, 11 * n, ctx.cap(V), "progressive_attention K planes", ctx)
    i32 = {"src_dtype": DType.INT8, "dst_dtype": DType.INT32}
    for r0 in range(0, sk, kr):
        rl = min(kr, sk - r0)
        e = rl * n
        x8 = ctx.take(V, 11 * e)
        x32, t32, hi, r8, lo = x8 + e, x8 + 5 * e, x8 + 9 * e, x8 + 9 * e + e // 2, x8 + 10 * e
        rc = {"rows": rl, "cols": n}
        vv = {"dst_buf": V, "a_buf": V, "dtype": DType.INT32, "dst_stride": n, "a_stride": n}
        load(ctx, k.block(r0, rl, 0, n), V, x8)
        ctx.emit("MOVE", **i32, dst_buf=V, dst_off=x32, dst_stride=n, src_buf=V, src_off=x8,
                 src_stride=n, **rc)  # fmt: skip
        ctx.emit("VEC", op="sub", bcast="scalar", dst_off=t32, a_off=x32, imm=8.0, **vv, **rc)
        ctx.emit("REQUANT", out_dtype="int4", dst_buf=V, dst_off=hi, dst_stride=n, src_buf=V,
                 src_off=t32, src_stride=n, mult=1, shift=4, **rc)  # fmt: skip
        ctx.emit("REQUANT", out_dtype="int8", dst_buf=V, dst_off=r8, dst_stride=n, src_buf=V,
                 src_off=x32, src_stride=n, mult=1, shift=4, **rc)  # fmt: skip
        ctx.emit("MOVE", **i32, dst_buf=V, dst_off=t32, dst_stride=n, src_buf=V, src_off=r8,
                 src_stride=n, **rc)  # fmt: skip
        ctx.emit("VEC", op="mul", bcast="scalar", dst_off=t32, a_off=t32, imm=16.0, **vv, **rc)
        ctx.emit("VEC", op="sub", dst_off=t32, a_off=x32, b_buf=V, b_off=t32, b_stride=n,
                 **vv, **rc)  # fmt: skip
        ctx.emit("REQUANT", out_dtype="int4", dst_buf=V, dst_off=lo, dst_stride=n, src_buf=V,
                 src_off=t32, src_stride=n, mult=1, shift=0, **rc)  # fmt: skip
        for which, (plane, off) in enumerate(((msb, hi), (lsb, lo))):
            if sink is not None:
                sink(which, off, r0, rl)
                continue
            ctx.emit("STORE", dtype=DType.INT4, src_buf=V, src_off=off, src_stride=n,
                     dst_addr=plane.at(r0, 0), dst_stride=n // 2, **rc)  # fmt: skip
    return (0, 0) if sink is not None else (msb.addr, lsb.addr)


@rule(ProgressiveAttentionOp)
def lower_progressive_attention(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """MSB-plane int8 attention per block of rows, LSB refetch and recompute under predicates."""
    assert isinstance(op, ProgressiveAttentionOp)
    q, k = env.tensor(op.query).as2d(), env.tensor(op.key).as2d()
    if q.dtype is not DType.INT8 or k.dtype is not DType.INT8:
        raise BackendError(f"{op.name}: q and k must be int8 activations (quant.quantize)")
    v = env.tensor(op.value).as2d()
    heads, d, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
    scale, thr = to_f32(op.float_prop("scale")), to_f32(op.float_prop("threshold"))
    causal, block = op.bool_prop("causal"), op.int_prop("block")
    deq = float(np.float32(_scalar(env, op.q_scale) * _scalar(env, op.k_scale)))
    sq, sk = q.shape[0], k.shape[0]
    out = ctx.activation(tuple(shape_of(op.result.type))).as2d()
    msb, lsb = split_planes(ctx, k)
    dims = Dims(heads, d, dv, sq, sk, block)
    progressive_heads(ctx, q, (msb, lsb), v, out, dims, deq, scale, thr, causal)
    return out


@dataclass(frozen=True)
class Dims:
    """Heads, q/k and v head widths, query rows, keys and rows per refetch decision."""

    heads: int
    d: int
    dv: int
    sq: int
    sk: int
    block: int


def progressive_heads(
    ctx: LowerCtx,
    q: DTensor,
    planes: tuple[int, int],
    v: DTensor,
    out: DTensor,
    dims: Dims,
    deq: float,
    scale: float,
    thr: float,
    causal: bool,
    bias: Callable[[int, int, int | None], None] | None = None,
    sink: ScoreSink | None = None,
    head_major: bool = False,
    phead: int | None = None,
) -> None:
    """Per head and block: MSB-plane scores, the refetch decision, the predicated LSB fetch and
    recompute, P·V. `bias(s_off, rows, pred)` edits the fp32 scores before each softmax (a key
    mask); `sink` accumulates the final probabilities (kv-prune's importance). The planes are
    [Sk, H·d/2] bytes, or with `head_major` [H, Sk, d/2] (each head's plane one contiguous run)."""
    heads, d, dv, sq, sk, block = (
        dims.heads, dims.d, dims.dv, dims.sq, dims.sk, dims.block
    )  # fmt: skip
    msb, lsb = planes
    pstride = d // 2 if head_major else heads * d // 2  # bytes per plane row
    if phead is None:  # bytes from one head's plane to the next
        phead = sk * d // 2 if head_major else d // 2
    kv_bytes = 2 * sk * d + 2 * sk * dv
    split = kv_bytes > ctx.cap(W, 1)
    if split and (2 * sk * d > ctx.cap(W, 1) or 2 * sk * dv > ctx.cap(V, 1)):
        raise ctx.too_big(f"progressive_attention: K and V of one head ({sk} keys) do not fit")
    bl = min(block, sq)
    if 4 * bl * (2 * sk + dv) > ctx.cap(C) or bl * (d + 2 * sk + 2 * dv) > ctx.cap(A):
        raise ctx.too_big(f"progressive_attention: a block of {bl} rows × {sk} keys")
    n_block = 0
    for h in range(heads):
        kb = ctx.take(W, 2 * sk * d if split else kv_bytes)
        kf = kb + sk * d
        v_buf, v_off = (V, ctx.take(V, 2 * sk * dv)) if split else (W, kb + 2 * sk * d)
        kw = {"dst_buf": W, "dst_stride": d, "src_stride": pstride, "rows": sk, "cols": d}
        ctx.emit("LOADBP", plane="msb", dst_off=kb, src_addr=msb + h * phead, **kw)
        load(ctx, v.block(0, sk, h * dv, dv), v_buf, v_off)
        ctx.emit("SETP", pdst=P_LOADED, value=0)
        for r0 in range(0, sq, block):
            rl = min(block, sq - r0)
            pn = P_FIRST + n_block % P_COUNT
            n_block += 1
            qa = ctx.take(A, bl * (d + 2 * sk + 2 * dv))
            p16, o16 = qa + bl * d, qa + bl * (d + 2 * sk)
            acc = ctx.take(C, 4 * bl * (2 * sk + dv))
            sf, o32 = acc + 4 * bl * sk, acc + 8 * bl * sk
            rm = ctx.take(X, 4 * bl)
            load(ctx, q.block(r0, rl, h * d, d), A, qa)
            mm = {"mode": "int8", "tb": 1, "a_buf": A, "a_off": qa, "a_stride": d, "b_buf": W,
                  "b_stride": d, "c_buf": C, "c_off": acc, "c_stride": sk, "m": rl, "n": sk, "k": d}  # fmt: skip
            mv = {"src_dtype": DType.INT32, "dst_dtype": DType.FP32, "dst_buf": C, "dst_off": sf,
                  "dst_stride": sk, "src_buf": C, "src_off": acc, "src_stride": sk, "rows": rl,
                  "cols": sk, "scale": deq}  # fmt: skip
            sm = {"op": "softmax", "dtype": DType.FP32, "dst_buf": C, "dst_off": sf,
                  "dst_stride": sk, "src_buf": C, "src_off": sf, "src_stride": sk, "rows": rl,
                  "cols": sk, "scale": scale, "causal": int(causal),
                  "row0": r0 + sk - sq if causal else 0}  # fmt: skip
            cmp = {"reduce": "min", "cmp": "lt", "dtype": DType.FP32, "src_buf": X, "src_off": rm,
                   "src_stride": 1, "rows": rl, "cols": 1, "imm": thr}  # fmt: skip
            ctx.emit("MATMUL", b_off=kb, **mm)
            ctx.emit("MOVE", **mv)
            if bias is not None:
                bias(sf, rl, None)
            ctx.emit("ROW", **sm)
            ctx.emit("ROW", op="rowmax", dtype=DType.FP32, dst_buf=X, dst_off=rm, dst_stride=1,
                     src_buf=C, src_off=sf, src_stride=sk, rows=rl, cols=sk)  # fmt: skip
            ctx.emit("SETP", pdst=P_FETCH, value=0)
            ctx.emit("CMP", pdst=P_FETCH, pred=P_LOADED, pneg=True, **cmp)
            ctx.emit("CMP", pdst=pn, **cmp)
            ctx.emit("MOVE", pred=P_FETCH, src_dtype=DType.INT8, dst_dtype=DType.INT8, dst_buf=W,
                   dst_off=kf, dst_stride=d, src_buf=W, src_off=kb, src_stride=d, rows=sk,
                   cols=d)  # fmt: skip
            ctx.emit(
                "LOADBP", pred=P_FETCH, plane="lsb", dst_off=kf, src_addr=lsb + h * phead, **kw
            )
            ctx.emit("SETP", pred=P_FETCH, pdst=P_LOADED, value=1)
            ctx.emit("MATMUL", pred=pn, b_off=kf, **mm)
            ctx.emit("MOVE", pred=pn, **mv)
            if bias is not None:
                bias(sf, rl, pn)
            ctx.emit("ROW", pred=pn, **sm)
            if sink is not None:
                sink.tile(ctx, sf, rl, r0)
            ctx.emit("MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=A, dst_off=p16,
                     dst_stride=sk, src_buf=C, src_off=sf, src_stride=sk, rows=rl, cols=sk)  # fmt: skip
            ctx.emit("MATMUL", mode="fp16", a_buf=A, a_off=p16, a_stride=sk, b_buf=v_buf,
                     b_off=v_off, b_stride=dv, c_buf=C, c_off=o32, c_stride=dv, m=rl, n=dv,
                     k=sk)  # fmt: skip
            ctx.emit("MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=A, dst_off=o16,
                     dst_stride=dv, src_buf=C, src_off=o32, src_stride=dv, rows=rl, cols=dv)  # fmt: skip
            store(ctx, out.block(r0, rl, h * dv, dv), A, o16)
