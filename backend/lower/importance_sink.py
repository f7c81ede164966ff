"""Token importance computed inside the attention it scores (SpAtten's IMPACC on the softmax tiles).

When a `tokens.importance` (or a `tokens.masked_importance` with the attention's own key mask)
reads the same q and k as an `nn.attention` with the same properties (or a
`tokens.quant_importance` the same int8 q, k and scales as a `quant.attention`) (and its prior, if any, is
already lowered), the attention's lowering creates a `ScoreSink`:
fp32 accumulators held in idx (loaded with the prior or zeros), an IMPACC colsum after every
softmax tile, and the scores stored once at the end. The importance op then costs no MATMUL or
softmax of its own.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.values import DTensor
from dialects import nn, quant, tokens

C, IX = Buf.ACC, Buf.IDX
F32 = DType.FP32


def sunk_scores(op: Operation, env: Env, inside: str) -> DTensor:
    """An importance op's scores, computed by the attention it was sunk into (`inside` says which
    attention, for the error when no such attention was lowered before it)."""
    done = env.vals.get(op.results[0])
    if not isinstance(done, DTensor):
        raise BackendError(
            f"{op.name}: lowered only inside the {inside} (and its prior computed before it);"
            " no such attention precedes it"
        )
    return done


def zeros_row(ctx: LowerCtx, n: int) -> DTensor:
    return ctx.add_data(("tokens.zeros32", str(n)), np.zeros((1, n), np.float32), F32)


class ScoreSink:
    """Accumulates one importance op's scores from fp32 probability tiles in acc."""

    def __init__(
        self,
        ctx: LowerCtx,
        op: tokens.ImportanceOp | tokens.MaskedImportanceOp | tokens.QuantImportanceOp,
        env: Env,
        sk: int,
    ) -> None:
        self.op, self.sk = op, sk
        self.cls = (
            "kind" in op.properties and op.prop("kind") == "cls"
        )  # masked/KV scores: all rows
        self.heads = op.int_prop("heads")
        self.acc = ctx.hold(IX, 4 * sk)
        prior = env.tensor(op.prior) if op.prior is not None else zeros_row(ctx, sk)
        load(ctx, DTensor.contiguous(prior.addr, (1, sk), F32), IX, self.acc)

    def _impacc(self, ctx: LowerCtx, off: int, rows: int, stride: int) -> None:
        ctx.emit(
            "IMPACC", mode="colsum", src_dtype=F32, src_buf=C, src_off=off, src_stride=stride,
            rows=rows, cols=self.sk, dst_buf=IX, dst_off=self.acc,
        )  # fmt: skip

    def tile(self, ctx: LowerCtx, off: int, rows: int, q0: int) -> None:
        """One head's probabilities for query rows q0.. (rows × sk at `off` in acc)."""
        if not self.cls:
            self._impacc(ctx, off, rows, self.sk)
        elif q0 == 0:
            self._impacc(ctx, off, 1, self.sk)

    def stacked(self, ctx: LowerCtx, off: int, rows: int, q0: int) -> None:
        """Every head's probabilities stacked as [heads·rows, sk] at `off`."""
        if not self.cls:
            self._impacc(ctx, off, self.heads * rows, self.sk)
        elif q0 == 0:
            self._impacc(ctx, off, self.heads, rows * self.sk)

    def finish(self, ctx: LowerCtx) -> DTensor:
        if self.cls:
            ctx.emit(
                "VEC", op="mul", bcast="scalar", dtype=F32, dst_buf=IX, dst_off=self.acc,
                dst_stride=self.sk, a_buf=IX, a_off=self.acc, a_stride=self.sk, rows=1,
                cols=self.sk, imm=to_f32(1.0 / self.heads),
            )  # fmt: skip
        out = ctx.activation((self.sk,), F32)
        store(ctx, DTensor.contiguous(out.addr, (1, self.sk), F32), IX, self.acc)
        return out


def score_sink(ctx: LowerCtx, attn: Operation, env: Env) -> ScoreSink | None:
    """The sink of an importance op that can be fused into ``attn``, if there is one."""
    assert isinstance(attn, nn.AttentionOp)
    for use in attn.query.uses:
        imp = use.operation
        if (
            isinstance(imp, tokens.ImportanceOp)
            and imp.query == attn.query
            and imp.key == attn.key
            and all(imp.prop(p) == attn.prop(p) for p in tokens.ATTN_PROPS)
            and imp.results[0] not in env.vals
            and (imp.prior is None or imp.prior in env.vals)
            and not (imp.prop("kind") == "cls" and imp.prior is not None)
        ):
            return ScoreSink(ctx, imp, env, attn.key.type.get_shape()[0])  # type: ignore[attr-defined]
        if (  # the key mask's probabilities are exactly 0 for a masked key, as the op defines
            isinstance(imp, tokens.MaskedImportanceOp)
            and attn.mask is not None
            and (imp.query, imp.key, imp.mask) == (attn.query, attn.key, attn.mask)
            and all(imp.prop(p) == attn.prop(p) for p in tokens.ATTN_PROPS)
            and imp.results[0] not in env.vals
            and (imp.prior is None or imp.prior in env.vals)
        ):
            return ScoreSink(ctx, imp, env, attn.key.type.get_shape()[0])  # type: ignore[attr-defined]
    return None


def quant_score_sink(ctx: LowerCtx, attn: quant.AttentionOp, env: Env) -> ScoreSink | None:
    """The sink of a tokens.quant_importance reading the same int8 q, k and scales as ``attn``."""
    for use in attn.query.uses:
        imp = use.operation
        if (
            isinstance(imp, tokens.QuantImportanceOp)
            and (imp.query, imp.key, imp.q_scale, imp.k_scale)
            == (attn.query, attn.key, attn.q_scale, attn.k_scale)
            and all(imp.prop(p) == attn.prop(p) for p in tokens.ATTN_PROPS)
            and imp.results[0] not in env.vals
            and (imp.prior is None or imp.prior in env.vals)
            and not (imp.prop("kind") == "cls" and imp.prior is not None)
        ):
            return ScoreSink(ctx, imp, env, attn.key.type.get_shape()[0])  # type: ignore[attr-defined]
    return None
