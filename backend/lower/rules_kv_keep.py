"""Lowering of kv-prune's keep-k on the NPU (slot reuse, docs/generation.md): all in idx, fp32.

- `tokens.kv_accumulate` (the carried scores, in place when they are a resident region read by
  nothing else): LOAD carried, step and slot; MOVE slot int32 → fp32; VEC sub of the slot from
  a constant row 0..n-1 (bcast col), mul by itself, min 1: a row that is 0 at the slot and 1
  elsewhere; VEC mul of carried by it, VEC add of step; STORE.
- `tokens.kv_evict`: LOAD scores, mask, positions, pos; MOVE the three int32 rows to fp32;
  protect[j] = min(max(positions[j] − pos + recent, 0), 1) (VEC sub bcast col, add, max, min);
  penalty = max(protect, 1 − mask); e = scores + BIG·penalty; TOPK k=1 of −e (the lowest score,
  ties to the lower slot); STORE the int32 index.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.registry import rule
from backend.lower.resident import in_resident
from backend.lower.values import DTensor
from dialects import tokens
from dialects.tokens_kv import KV_EVICT_BIG

IX = Buf.IDX
F32, I32 = DType.FP32, DType.INT32


def _row(ctx: LowerCtx, t: DTensor, what: str) -> tuple[int, int]:
    """LOAD the contiguous vector ``t`` into idx; (offset, length). An fp16 vector (a float
    input) is widened to fp32 (MOVE)."""
    if not t.is_contiguous or t.dtype not in (F32, I32, DType.FP16):
        raise BackendError(f"{what}: expected a contiguous fp32, fp16 or int32 vector")
    n = t.shape[0]
    off = ctx.take(IX, 4 * max(n, 8))
    load(ctx, DTensor.contiguous(t.addr, (1, n), t.dtype), IX, off)
    return (_to_f32(ctx, off, n, DType.FP16) if t.dtype is DType.FP16 else off), n


def _to_f32(ctx: LowerCtx, off: int, n: int, src: DType = I32) -> int:
    """MOVE an int32 (or fp16) row in idx to a new fp32 row in idx."""
    dst = ctx.take(IX, 4 * max(n, 8))
    ctx.emit(
        "MOVE", src_dtype=src, dst_dtype=F32, dst_buf=IX, dst_off=dst, dst_stride=n,
        src_buf=IX, src_off=off, src_stride=n, rows=1, cols=n,
    )  # fmt: skip
    return dst


def _vec(
    ctx: LowerCtx, op: str, dst: int, a: int, n: int, b: int | None = None,
    bcast: str = "none", imm: float = 0.0,
) -> None:  # fmt: skip
    """``dst = a op b`` (b a row, a scalar in idx with bcast col, or imm with bcast scalar)."""
    args: dict[str, object] = {}
    if b is not None:
        args = {"b_buf": IX, "b_off": b, "b_stride": 1 if bcast == "col" else n}
    ctx.emit(
        "VEC", op=op, bcast=bcast, dtype=F32, dst_buf=IX, dst_off=dst, dst_stride=n, a_buf=IX,
        a_off=a, a_stride=n, rows=1, cols=n, imm=to_f32(imm), **args,
    )  # fmt: skip


@rule(tokens.KvAccumulateOp)
def lower_kv_accumulate(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    assert isinstance(op, tokens.KvAccumulateOp)
    carried = env.tensor(op.carried)
    c_off, n = _row(ctx, carried, op.name)
    s_off, _ = _row(ctx, env.tensor(op.step), op.name)
    slot = _to_f32(ctx, _row(ctx, env.tensor(op.slot), op.name)[0], 1)
    iota = ctx.add_data(("kv.iota", str(n)), np.arange(n, dtype=np.float32)[None], F32)
    keep, _ = _row(ctx, DTensor.contiguous(iota.addr, (n,), F32), op.name)
    _vec(ctx, "sub", keep, keep, n, slot, "col")  # j − slot
    _vec(ctx, "mul", keep, keep, n, keep)  # (j − slot)²
    _vec(ctx, "min", keep, keep, n, bcast="scalar", imm=1.0)  # 0 at the slot, 1 elsewhere
    _vec(ctx, "mul", c_off, c_off, n, keep)
    _vec(ctx, "add", c_off, c_off, n, s_off)
    in_place = (
        len(list(op.carried.uses)) == 1 and carried.dtype is F32 and in_resident(ctx, carried)
    )
    out = carried if in_place else ctx.activation((n,), F32)
    store(ctx, DTensor.contiguous(out.addr, (1, n), F32), IX, c_off)
    return DTensor.contiguous(out.addr, (n,), F32)


@rule(tokens.KvEvictOp)
def lower_kv_evict(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    assert isinstance(op, tokens.KvEvictOp)
    s_off, n = _row(ctx, env.tensor(op.scores), op.name)
    mask = _to_f32(ctx, _row(ctx, env.tensor(op.mask), op.name)[0], n)
    prot = _to_f32(ctx, _row(ctx, env.tensor(op.positions), op.name)[0], n)
    pos = _to_f32(ctx, _row(ctx, env.tensor(op.pos), op.name)[0], 1)
    _vec(ctx, "sub", prot, prot, n, pos, "col")  # positions − pos
    _vec(ctx, "add", prot, prot, n, bcast="scalar", imm=float(op.int_prop("recent")))
    _vec(ctx, "max", prot, prot, n, bcast="scalar", imm=0.0)
    _vec(ctx, "min", prot, prot, n, bcast="scalar", imm=1.0)  # 1: among the newest `recent`
    _vec(ctx, "mul", mask, mask, n, bcast="scalar", imm=-1.0)
    _vec(ctx, "add", mask, mask, n, bcast="scalar", imm=1.0)  # 1: an empty slot
    _vec(ctx, "max", prot, prot, n, mask)  # 1: may not be evicted
    _vec(ctx, "mul", prot, prot, n, bcast="scalar", imm=KV_EVICT_BIG)
    _vec(ctx, "add", s_off, s_off, n, prot)
    _vec(ctx, "mul", s_off, s_off, n, bcast="scalar", imm=-1.0)
    i_off = ctx.take(IX, 32)
    ctx.emit(
        "TOPK", src_buf=IX, src_off=s_off, src_stride=n, rows=1, n=n, k=1, dst_buf=IX,
        dst_off=i_off,
    )  # fmt: skip
    out = ctx.activation((1,), I32)
    store(ctx, DTensor.contiguous(out.addr, (1, 1), I32), IX, i_off)
    return out
