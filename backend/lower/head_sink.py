"""SpAtten head importance computed inside the attention it scores (IMPACC headmag on fp32 output).

When a `tokens.head_importance` reads an `nn.attention`'s result, the attention's lowering
creates a `HeadSink`: fp32 accumulators in idx (loaded with the prior of the accumulation
`nn.add` the head-prune pass puts after it, or zeros), one IMPACC headmag per fp32 output tile
(all heads stacked, or one head's slice), and the scores stored once. O is not read back.
"""

from __future__ import annotations

from xdsl.ir import Operation

from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.importance_sink import zeros_row
from backend.lower.values import DTensor
from dialects import nn, tokens
from dialects.nn_base import shape_of

C, IX = Buf.ACC, Buf.IDX
F32 = DType.FP32


def prior_add(ctx: LowerCtx, op: Operation, env: Env) -> DTensor | None:
    """The prior of an accumulation `nn.add(prior, op)` that is op's only use (marked absorbed)."""
    uses = list(op.results[0].uses)
    if len(uses) != 1 or not isinstance(uses[0].operation, nn.AddOp):
        return None
    add = uses[0].operation
    other = add.operands[1 - uses[0].index]
    if other not in env.vals or shape_of(other.type) != shape_of(op.results[0].type):
        return None
    t = env.tensor(other)
    if t.dtype is not F32 or not t.is_contiguous:
        return None
    ctx.fused_away[add] = uses[0].index
    return t


class HeadSink:
    """Accumulates s[h] = Σ_i Σ_c |O[i, h·dv + c]| from fp32 output tiles in acc."""

    def __init__(self, ctx: LowerCtx, op: tokens.HeadImportanceOp, env: Env) -> None:
        self.ctx, self.op = ctx, op
        self.heads = op.int_prop("heads")
        self.acc = ctx.hold(IX, 4 * self.heads)
        prior = prior_add(ctx, op, env) or zeros_row(ctx, self.heads)
        load(ctx, DTensor.contiguous(prior.addr, (1, self.heads), F32), IX, self.acc)

    def tile(self, off: int, rows: int, stride: int, head: int | None) -> None:
        """[rows, stride] fp32 at acc[off]: every head's columns (head None) or head ``head``'s."""
        heads, dst = (self.heads, self.acc) if head is None else (1, self.acc + 4 * head)
        self.ctx.emit(
            "IMPACC", mode="headmag", src_dtype=F32, src_buf=C, src_off=off, src_stride=stride,
            rows=rows, cols=stride, heads=heads, dst_buf=IX, dst_off=dst,
        )  # fmt: skip

    def finish(self, ctx: LowerCtx) -> DTensor:
        out = ctx.activation((self.heads,), F32)
        store(ctx, DTensor.contiguous(out.addr, (1, self.heads), F32), IX, self.acc)
        return out


def head_sink(ctx: LowerCtx, attn: Operation, env: Env) -> HeadSink | None:
    """The sink of a head-importance op reading ``attn``'s result, if there is one."""
    for use in attn.results[0].uses:
        imp = use.operation
        if (
            isinstance(imp, tokens.HeadImportanceOp)
            and imp.int_prop("heads") == attn.int_prop("heads")  # type: ignore[attr-defined]
            and imp.results[0] not in env.vals
        ):
            return HeadSink(ctx, imp, env)
    return None
