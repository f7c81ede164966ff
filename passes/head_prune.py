"""head-prune: SpAtten cascade head pruning with accumulated head importance.

    head-prune{keep=2 start=2}

Head importance is SpAtten's output magnitude s[h] = Σ_layers Σ_i |O_l[i, h]| (`tokens.head_importance`),
accumulated over the layers before `start` (default: the first ~30% of the layers, at least one).
At `start` the `keep` heads with the highest score are chosen (`tokens.select`, decided at run time)
and every attention from `start` on computes only those heads (`tokens.head_attention`; the others'
output columns are zero): a pruned head stays pruned in all later layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from dialects import nn, tokens
from passes.context import PassError, add_report
from passes.search_decl import Knob, Stage
from passes.token_blocks import find_blocks


@dataclass(frozen=True)
class HeadPrunePass(ModulePass):
    """Cascade head pruning (SpAtten): keep the `keep` most important heads from layer `start` on."""

    name = "head-prune"
    search_stage: ClassVar[Stage] = Stage(50, "heads")

    keep: int = field(
        default=1,
        metadata={"search": Knob((1, 2, 3)), "help": "heads kept from layer start on (1..heads)"},
    )
    start: int = field(
        default=-1,
        metadata={
            "search": Knob((1, 2, 3)),
            "help": "first pruned layer (-1: ~30% of the layers, at least 1)",
        },
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        blocks = find_blocks(op, self.name, heads_only=True)  # a key mask passes through
        heads = {b.attn.int_prop("heads") for b in blocks}
        if len(heads) != 1:
            raise PassError(f"layers have different head counts {sorted(heads)}")
        h = heads.pop()
        if not 0 < self.keep <= h:
            raise PassError(f"keep={self.keep}: the attention layers have {h} heads (1..{h})")
        layers = len(blocks)
        start = max(1, math.ceil(0.3 * layers)) if self.start < 0 else self.start
        if not 1 <= start < layers:
            raise PassError(
                f"start={start}: head importance accumulates over earlier layers, so pruning starts"
                f" at a layer in 1..{layers - 1} (the model has {layers} attention layers)"
            )
        if self.keep == h:
            add_report(ctx, self.name, {"notes": [f"keep={h}: every head kept, nothing to do"]})
            return
        acc: SSAValue | None = None
        anchor: Operation = blocks[0].attn
        for b in blocks[:start]:
            new: list[Operation] = [tokens.HeadImportanceOp.make([b.attn.result], heads=h)]
            if acc is not None:
                new.append(nn.AddOp.make([acc, new[0].results[0]]))
            acc = new[-1].results[0]
            b.attn.parent_block().insert_ops_after(new, b.attn)  # type: ignore[union-attr]
            anchor = new[-1]
        assert acc is not None
        sel = tokens.SelectOp.make([acc], k=self.keep, protect=())
        anchor.parent_block().insert_ops_after([sel], anchor)  # type: ignore[union-attr]
        for b in blocks[start:]:
            a = b.attn
            if not isinstance(a, nn.AttentionOp):  # find_blocks refuses int8 attention for us
                raise PassError(f"{b.where}: head-prune does not take int8 attention")
            if any(isinstance(u.operation, tokens.MaskedImportanceOp) for u in a.query.uses):
                raise PassError(
                    f"{b.where}: kv-prune scores this attention's keys over all heads; run"
                    " head-prune before kv-prune (kv-prune then scores the unpruned layers)"
                )
            props = {p: a.prop(p) for p in tokens.ATTN_PROPS}
            mask = [a.mask] if a.mask is not None else []
            new_attn = tokens.HeadAttentionOp.make(
                [a.query, a.key, a.value, sel.results[0], *mask], None, **props
            )
            a.parent_block().insert_op_before(new_attn, a)  # type: ignore[union-attr]
            a.result.replace_all_uses_with(new_attn.results[0])
            a.parent_block().erase_op(a)  # type: ignore[union-attr]
        add_report(
            ctx,
            self.name,
            {
                "heads_per_layer": [
                    {"layer": b.name, "heads": h if b.index < start else self.keep} for b in blocks
                ],
                "notes": [f"{self.keep} of {h} heads from layer {start} on ({layers} layers)"],
            },
        )
