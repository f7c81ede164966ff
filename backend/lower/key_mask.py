"""The key-padding mask of `nn.attention` on the NPU: an fp32 bias row added to the scores.

mask (int32 [Sk], 1 = keep, 0 = masked) is loaded once per attention and turned into
bias[j] = (clamp(mask[j], 0, 1) − 1) · 2^100, i.e. 0 for a kept key and −2^100 for a masked one.
The ROW softmax multiplies (score + bias) by the scale, so a masked key's exponent underflows to exactly
0 whenever its row keeps some key; a row whose keys are all masked sees equal scores (−2^100 in fp32
swallows q·k) and becomes uniform, as the reference executor defines.
"""

from __future__ import annotations

from collections.abc import Callable

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load
from backend.lower.values import DTensor

HUGE = 2.0**100
V, C = Buf.VEC, Buf.ACC
I32, F32 = DType.INT32, DType.FP32


def _vec(ctx: LowerCtx, op: str, dt: DType, dst: int, a: int, cols: int, imm: float) -> None:
    ctx.emit(
        "VEC", op=op, bcast="scalar", dtype=dt, rows=1, cols=cols, imm=imm,
        dst_buf=V, dst_off=dst, dst_stride=cols, a_buf=V, a_off=a, a_stride=cols,
    )  # fmt: skip


def key_mask_bias(ctx: LowerCtx, mask: DTensor, sk: int) -> Callable[[int, int, int], None]:
    """Emit the bias row (op-lifetime in vec) and return the `attention_head` bias hook that adds it
    to each query tile's fp32 scores in acc."""
    if mask.dtype is not I32 or not mask.is_contiguous or mask.shape != (sk,):
        raise BackendError(f"nn.attention: the mask must be a contiguous int32 [{sk}] tensor")
    m_off = ctx.hold(V, 4 * sk)
    b_off = ctx.hold(V, 4 * sk)
    load(ctx, DTensor.contiguous(mask.addr, (1, sk), I32), V, m_off)
    _vec(ctx, "max", I32, m_off, m_off, sk, 0.0)
    _vec(ctx, "min", I32, m_off, m_off, sk, 1.0)
    _vec(ctx, "sub", I32, m_off, m_off, sk, 1.0)
    ctx.emit(
        "MOVE", src_dtype=I32, dst_dtype=F32, dst_buf=V, dst_off=b_off, dst_stride=sk,
        src_buf=V, src_off=m_off, src_stride=sk, rows=1, cols=sk, scale=HUGE,
    )  # fmt: skip

    def bias(s_off: int, q0: int, rows: int) -> None:
        ctx.emit(
            "VEC", op="add", bcast="row", dtype=F32, rows=rows, cols=sk, imm=0.0,
            dst_buf=C, dst_off=s_off, dst_stride=sk, a_buf=C, a_off=s_off, a_stride=sk,
            b_buf=V, b_off=b_off, b_stride=sk,
        )  # fmt: skip

    return bias
