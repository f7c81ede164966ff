"""eager-predict: FACT eager prediction of the attention pattern before Q/K/V generation.

    eager-predict{topk=16 margin=3.0 start=0}

For each attention from layer `start` on whose q and k are linears of one input x with constant
weights, the pass inserts `tokens.predict %x, %wq, %wk` (leading-one log-domain Q̃·K̃ᵀ, row-wise
top-`topk` mask, one-hot rows where top-1 beats top-2 by more than `margin` after scaling) and
replaces the attention by `tokens.masked_attention`, the softmax over the predicted entries only.
Keys no row selects and one-hot query rows need no Q/K work on hardware that exploits the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from dialects import nn, tokens
from dialects.nn_base import shape_of
from passes.context import PassError, add_report
from passes.token_blocks import find_blocks


@dataclass(frozen=True)
class EagerPredictPass(ModulePass):
    """FACT eager attention prediction: row-wise top-k mask from leading-one Q̃·K̃ᵀ, one-hot rows."""

    name = "eager-predict"

    topk: int = 16
    margin: float = 3.0
    start: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.margin < 0:
            raise PassError(f"margin={self.margin}: must be >= 0")
        blocks = find_blocks(op, self.name)
        if not 0 <= self.start < len(blocks):
            raise PassError(
                f"start={self.start}: the model has {len(blocks)} attention layers"
                f" (0..{len(blocks) - 1})"
            )
        notes = []
        for b in blocks[self.start :]:
            a = b.attn
            q, k = a.query.owner, a.key.owner
            if not (
                isinstance(q, nn.LinearOp)
                and isinstance(k, nn.LinearOp)
                and q.input == k.input
                and isinstance(q.weight.owner, nn.WeightOp)
                and isinstance(k.weight.owner, nn.WeightOp)
            ):
                raise PassError(
                    f"{b.where}: q and k must be linears of one input with constant weights"
                )
            n = shape_of(a.query.type)[0]
            if not 0 < self.topk <= n:
                raise PassError(f"topk={self.topk}: {b.where} has {n} tokens (1..{n})")
            props = {p: a.prop(p) for p in tokens.ATTN_PROPS}
            pred = tokens.PredictOp.make(
                [q.input, q.weight, k.weight],
                heads=props["heads"],
                qk_dim=props["qk_dim"],
                scale=props["scale"],
                causal=props["causal"],
                topk=self.topk,
                margin=self.margin,
            )
            new_attn = tokens.MaskedAttentionOp.make(
                [a.query, a.key, a.value, pred.results[0]], **props
            )
            block = a.parent_block()
            assert block is not None
            block.insert_ops_before([pred, new_attn], a)
            a.result.replace_all_uses_with(new_attn.results[0])
            block.erase_op(a)
            notes.append(f"{b.name}: top-{self.topk} of {n} keys per query")
        add_report(ctx, self.name, {"notes": notes})
