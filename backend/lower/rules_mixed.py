"""Lowering of FACT's mixed-precision FFN: `tokens.row_precision` (`tokens.mixed_linear` is
`rules_quant.lower_qlinear` with the row mask as MATMUL's per-row precision mask).

`tokens.row_precision`: the int8 mask's column counts (IMPACC colsum, fp32 in idx, exact), +inf
at the protected positions (VEC add), TOPK k=int8_rows mask=1 (the kept positions as an int8 0/1
row; ties to the lower index, backend/topk.py), then 1 − keep in int8 (VEC sub 1, VEC mul −1)
and one STORE: 1 marks a row MATMUL runs at INT4-MSB. Bit-identical to the reference.
"""

from __future__ import annotations

from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import store
from backend.lower.env import Env
from backend.lower.registry import rule
from backend.lower.rules_fact import mask_colsum
from backend.lower.rules_predict import _vec
from backend.lower.rules_tokens import protect_scores
from backend.lower.values import DTensor
from dialects import tokens_mixed

IX, I8 = Buf.IDX, DType.INT8


@rule(tokens_mixed.RowPrecisionOp)
def lower_row_precision(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """IMPACC colsum → +inf protected → TOPK mask → 1 − keep → int8 [n]."""
    assert isinstance(op, tokens_mixed.RowPrecisionOp)
    mask = env.tensor(op.mask)
    if mask.dtype is not I8 or not mask.is_contiguous:
        raise BackendError(f"{op.name}: the mask must come from tokens.predict (int8)")
    m2 = mask.as2d()
    n = m2.shape[1]
    if 5 * n > ctx.cap(IX, 1):
        raise ctx.too_big(f"row_precision: {n} token counts do not fit idx")
    s_off = ctx.hold(IX, 4 * n)
    k_off = ctx.hold(IX, n)
    mask_colsum(ctx, m2, s_off, op.name)
    protect_scores(ctx, s_off, n, [p % n for p in op.ints_prop("protect")])
    ctx.emit(
        "TOPK", src_buf=IX, src_off=s_off, src_stride=n, rows=1, n=n,
        k=op.int_prop("int8_rows"), dst_buf=IX, dst_off=k_off, mask=1,
    )  # fmt: skip
    row = (IX, k_off, n)
    _vec(ctx, "sub", I8, row, row, 1, n, bcast="scalar", imm=1.0)
    _vec(ctx, "mul", I8, row, row, 1, n, bcast="scalar", imm=-1.0)
    out = ctx.activation((n,), I8)
    store(ctx, DTensor.contiguous(out.addr, (1, n), I8), IX, k_off)
    return out
