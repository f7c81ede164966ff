"""Lowering of quant.progressive_kv_attention (progressive K over a decode step's KV cache;
dialects/quant_kv.py, docs/generation.md) and of its fused quant.progressive_kv_importance.

The cached keys are two program inputs, the packed int4 MSB and LSB planes, head-major
[heads, S + N, qk_dim / 2 bytes] (each head's plane one contiguous DRAM run, so fetching one
head's plane wastes no part of a DRAM burst), placed by `lower_module` (`plane_region`). The rule:

1. splits the new int8 key rows into their two planes with quant.progressive_attention's
   prologue (`split_planes`) and stores each head's in that head's free slots (the append);
2. builds the key mask's fp32 bias row once (`key_mask.py`: 0 kept, −2^100 masked);
3. runs quant.progressive_attention's per-head loop over all `S + new` rows of the planes:
   LOADBP of the MSB plane, scores + bias, softmax, the refetch decision, the LSB plane's LOADBP
   and the recompute only under the predicate, P·V. So DRAM reads of K are the MSB plane (half of
   int8, a quarter of fp16) plus the LSB plane of the heads that refetch, never more;
4. with a quant.progressive_kv_importance of the same operands (kv-prune), IMPACC colsums of the
   final probabilities into its accumulators (importance_sink.ScoreSink).
"""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load
from backend.lower.env import Env
from backend.lower.importance_sink import ScoreSink, sunk_scores
from backend.lower.key_mask import HUGE
from backend.lower.registry import rule
from backend.lower.resident import resident_planes
from backend.lower.rules_progressive import Dims, _scalar, progressive_heads, split_planes
from backend.lower.values import DTensor
from dialects.nn_base import shape_of
from dialects.quant_kv import ProgressiveKvAttentionOp, ProgressiveKvImportanceOp

V, C = Buf.VEC, Buf.ACC
I32, F32 = DType.INT32, DType.FP32


def plane_uses(arg: SSAValue) -> ProgressiveKvAttentionOp | None:
    """The attention whose k_msb / k_lsb plane this input is (its uses: that attention and at
    most its importance, at the same operand), else None."""
    attn = None
    for use in arg.uses:
        op = use.operation
        if isinstance(op, ProgressiveKvAttentionOp) and use.index in (6, 7):
            attn = op
        elif not (isinstance(op, ProgressiveKvImportanceOp) and use.index in (5, 6)):
            return None
    return attn


def plane_region(ctx: LowerCtx, arg: SSAValue, name: str) -> DTensor | None:
    """A packed-int4 plane input: its region [S + new rows, features / 2] (int8 bytes); for a
    plane in a resident region (meta["resident"]) the head-major view [heads, S + 1, d / 2] of
    that region (backend/lower/resident.py); None if `arg` is not a plane."""
    attn = plane_uses(arg)
    if attn is None:
        return None
    heads, slots, d = shape_of(arg.type)
    kept = resident_planes(ctx, name, heads, slots, d // 2)
    if kept is not None:
        if attn.slot is None:
            raise BackendError(
                f"{attn.name}: resident K planes '{name}' need the slot operand (the new key's"
                " row is written at a run-time slot)"
            )
        return kept
    return ctx.activation((heads * slots, d // 2), DType.INT8)


def _bias(ctx: LowerCtx, mask: DTensor, sk: int):  # noqa: ANN202
    """The key mask's fp32 bias row (key_mask.py), and a hook adding it (optionally predicated)."""
    if mask.dtype is not I32 or not mask.is_contiguous or mask.shape != (sk,):
        raise BackendError(
            f"quant.progressive_kv_attention: the mask must be a contiguous int32 [{sk}] tensor"
        )
    m_off, b_off = ctx.hold(V, 4 * sk), ctx.hold(V, 4 * sk)
    load(ctx, DTensor.contiguous(mask.addr, (1, sk), I32), V, m_off)
    for op, imm in (("max", 0.0), ("min", 1.0), ("sub", 1.0)):
        ctx.emit(
            "VEC", op=op, bcast="scalar", dtype=I32, rows=1, cols=sk, imm=imm, dst_buf=V,
            dst_off=m_off, dst_stride=sk, a_buf=V, a_off=m_off, a_stride=sk,
        )  # fmt: skip
    ctx.emit(
        "MOVE", src_dtype=I32, dst_dtype=F32, dst_buf=V, dst_off=b_off, dst_stride=sk,
        src_buf=V, src_off=m_off, src_stride=sk, rows=1, cols=sk, scale=HUGE,
    )  # fmt: skip

    def add(s_off: int, rows: int, pred: int | None) -> None:
        ctx.emit(
            "VEC", op="add", bcast="row", dtype=F32, rows=rows, cols=sk, imm=0.0,
            dst_buf=C, dst_off=s_off, dst_stride=sk, a_buf=C, a_off=s_off, a_stride=sk,
            b_buf=V, b_off=b_off, b_stride=sk, **({} if pred is None else {"pred": pred}),
        )  # fmt: skip

    return add


def _sink(ctx: LowerCtx, op: ProgressiveKvAttentionOp, env: Env, sk: int) -> ScoreSink | None:
    """kv-prune's importance of this attention (same operands), if its prior is computed."""
    for use in op.query.uses:
        imp = use.operation
        if (
            isinstance(imp, ProgressiveKvImportanceOp)
            and tuple(imp.operands[:7]) == tuple(op.operands[i] for i in (0, 1, 3, 4, 5, 6, 7))
            and imp.slot == op.slot
            and all(imp.prop(p) == op.prop(p) for p in ProgressiveKvAttentionOp.PROPS)
            and imp.results[0] not in env.vals
            and (imp.prior is None or imp.prior in env.vals)
        ):
            return ScoreSink(ctx, imp, env, sk)  # type: ignore[arg-type]
    return None


@rule(ProgressiveKvAttentionOp)
def lower_progressive_kv(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Append the new rows' planes in place, then progressive attention under the key mask."""
    assert isinstance(op, ProgressiveKvAttentionOp)
    q, k = env.tensor(op.query).as2d(), env.tensor(op.key).as2d()
    if q.dtype is not DType.INT8 or k.dtype is not DType.INT8:
        raise BackendError(f"{op.name}: q and k must be int8 activations (quant.quantize)")
    regions = [ctx.planes.get(x) for x in (op.k_msb, op.k_lsb)]
    msb, lsb = regions
    if msb is None or lsb is None:
        raise BackendError(
            f"{op.name}: k_msb and k_lsb must be program inputs used only by this attention"
            " (and its kv-prune importance)"
        )
    sk, new = shape_of(op.k_msb.type)[1], k.shape[0]
    cached = sk - new
    v = env.tensor(op.value).as2d()
    heads, d, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
    deq = float(_scalar(env, op.q_scale) * _scalar(env, op.k_scale))
    out = ctx.activation(tuple(shape_of(op.result.type))).as2d()
    bias = _bias(ctx, env.tensor(op.mask), sk)
    sink = _sink(ctx, op, env, sk)  # (SRAM holds come before any take)
    if op.slot is not None:  # resident planes: the new rows' planes SCATTERed at the slots
        if msb.shape != (heads, sk, d // 2):
            raise BackendError(f"{op.name}: with a slot operand the planes must be resident")
        _scatter_planes(ctx, k, env.tensor(op.slot), (msb, lsb), heads, d)
        phead = msb.strides[0]
    else:
        for h in range(heads):  # the append: each head's new planes into its free slots
            rows = (h * sk + cached, new, 0, d // 2)
            split_planes(ctx, k.block(0, new, h * d, d), (msb.block(*rows), lsb.block(*rows)))
        phead = sk * d // 2
    progressive_heads(
        ctx, q, (msb.addr, lsb.addr), v, out, Dims(heads, d, dv, q.shape[0], sk, op.int_prop("block")),
        deq, to_f32(op.float_prop("scale")), to_f32(op.float_prop("threshold")), False, bias, sink,
        head_major=True, phead=phead,
    )  # fmt: skip
    if sink is not None:
        env[sink.op.results[0]] = sink.finish(ctx)
    return out


def _scatter_planes(
    ctx: LowerCtx, k: DTensor, slot: DTensor, planes: tuple[DTensor, DTensor], heads: int, d: int
) -> None:
    """The new int8 rows k [N, heads·d] split into their MSB and LSB planes in vec (the
    prologue's REQUANTs) and written at rows `slot` of every head of the resident planes
    [heads, rows, d / 2 bytes]: one LOAD of the slots into idx, then per plane and head one
    SCATTER of d packed int4 values per row (d / 2 bytes) at that head's plane."""
    n = k.shape[0]
    if slot.dtype is not I32 or not slot.is_contiguous or slot.shape != (n,):
        raise BackendError(f"quant.progressive_kv_attention: slot must be contiguous int32 [{n}]")
    if 4 * n > ctx.cap(Buf.IDX):
        raise ctx.too_big(f"quant.progressive_kv_attention: {n} slots do not fit idx")
    i_off = ctx.take(Buf.IDX, 4 * n)
    load(ctx, DTensor.contiguous(slot.addr, (1, n), I32), Buf.IDX, i_off)

    def scatter(which: int, off: int, r0: int, rl: int) -> None:
        plane = planes[which]
        for h in range(heads):
            ctx.emit(
                "SCATTER", dtype=DType.INT4, src_buf=V, src_off=off + h * d // 2,
                src_stride=heads * d, dst_addr=plane.addr + h * plane.strides[0],
                dst_stride=plane.strides[1], dst_rows=plane.shape[1], idx_buf=Buf.IDX,
                idx_off=i_off + 4 * r0, rows=rl, cols=d,
            )  # fmt: skip

    split_planes(ctx, k, sink=scatter)


@rule(ProgressiveKvImportanceOp)
def lower_progressive_kv_importance(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Only as IMPACC inside the quant.progressive_kv_attention with the same operands."""
    return sunk_scores(op, env, "quant.progressive_kv_attention with the same operands")
