"""Lowering of FACT's mixed-precision FFN: `tokens.row_precision` (`tokens.mixed_linear` is
`rules_quant.lower_qlinear` with the row mask as MATMUL's per-row precision mask).

`tokens.row_precision`: the int8 mask's column counts in fp32 in idx (exact) — fused into
`tokens.predict` (one IMPACC colsum per head's mask while it is still in idx, so the mask is not
read back), or standalone (IMPACC over the mask's rows from DRAM) — then +inf at the protected
positions (VEC add), TOPK k=int8_rows mask=1 (the kept positions as an int8 0/1 row; ties to the
lower index, backend/topk.py), 1 − keep in int8 (VEC sub 1, VEC mul −1) and one STORE: 1 marks a
row MATMUL runs at INT4-MSB. Bit-identical to the reference.
"""

from __future__ import annotations

from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.importance_sink import zeros_row
from backend.lower.registry import rule
from backend.lower.rules_fact import mask_colsum
from backend.lower.rules_tokens import protect_scores
from backend.lower.values import DTensor
from dialects import tokens_mixed

IX, I8 = Buf.IDX, DType.INT8


def fused_row_precision(
    ctx: LowerCtx, pred: Operation, env: Env, n: int
) -> tuple[tokens_mixed.RowPrecisionOp, int] | None:
    """A tokens.row_precision of ``pred``'s mask to fuse into its lowering: (op, the fp32 [n]
    column counts held in idx, zeroed), or None."""
    for use in pred.results[0].uses:
        rp = use.operation
        if isinstance(rp, tokens_mixed.RowPrecisionOp) and rp.results[0] not in env.vals:
            s_off = ctx.hold(IX, 4 * n)
            load(ctx, zeros_row(ctx, n), IX, s_off)
            return rp, s_off
    return None


def finish(ctx: LowerCtx, op: tokens_mixed.RowPrecisionOp, s_off: int, n: int) -> DTensor:
    """From the counts at idx[s_off]: protect, TOPK mask, 1 − keep, store int8 [n]."""
    protect_scores(ctx, s_off, n, [p % n for p in op.ints_prop("protect")])
    k_off = ctx.take(IX, n)
    ctx.emit(
        "TOPK", src_buf=IX, src_off=s_off, src_stride=n, rows=1, n=n,
        k=op.int_prop("int8_rows"), dst_buf=IX, dst_off=k_off, mask=1,
    )  # fmt: skip
    for vop, imm in (("sub", 1.0), ("mul", -1.0)):
        ctx.emit(
            "VEC", op=vop, bcast="scalar", dtype=I8, dst_buf=IX, dst_off=k_off, dst_stride=n,
            a_buf=IX, a_off=k_off, a_stride=n, rows=1, cols=n, imm=imm,
        )  # fmt: skip
    out = ctx.activation((n,), I8)
    store(ctx, DTensor.contiguous(out.addr, (1, n), I8), IX, k_off)
    return out


@rule(tokens_mixed.RowPrecisionOp)
def lower_row_precision(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """IMPACC colsum → +inf protected → TOPK mask → 1 − keep → int8 [n]."""
    assert isinstance(op, tokens_mixed.RowPrecisionOp)
    if op.results[0] in env.vals:  # computed by the tokens.predict it reads
        return env.tensor(op.results[0])
    mask = env.tensor(op.mask)
    if mask.dtype is not I8 or not mask.is_contiguous:
        raise BackendError(f"{op.name}: the mask must come from tokens.predict (int8)")
    m2 = mask.as2d()
    n = m2.shape[1]
    if 5 * n > ctx.cap(IX, 1):
        raise ctx.too_big(f"row_precision: {n} token counts do not fit idx")
    s_off = ctx.hold(IX, 4 * n)
    mask_colsum(ctx, m2, s_off, op.name)
    return finish(ctx, op, s_off, n)
