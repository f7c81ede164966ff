"""kv-prune: SpAtten cascade KV-cache pruning across decode steps (the program's half).

    kv-prune{keep=64 recent=1}

After every `nn.attention` the pass inserts its token importance, SpAtten's received attention
Σ_h Σ_i P[h,i,j] (`tokens.importance` kind "received", or `tokens.masked_importance` when the
attention has a key mask, as the decode form's does: a masked key receives exactly 0; or
`quant.progressive_kv_importance` of a decode attention progressive-quant rewrote before it),
accumulated over the layers (each layer's score takes the previous one as its prior), and returns
the sum as one more output of `main`: one fp32 score per key of the attention.

On a resident decode form (arguments `kv_scores`, `positions`, `slot`, `mask` and `pos`:
`LanguageModel.decode(..., scores=True)`) the keep-k across steps is in the program too (slot
reuse): `tokens.kv_accumulate` adds the step's scores to the carried ones (the resident
`kv_scores`, the new token's slot starting with its own score) and `tokens.kv_evict` picks the
slot that leaves when the K + 1 occupied slots are pruned to K (the newest `recent` protected);
`main` returns the updated `kv_scores` and that slot instead of the step's scores, and the
host writes the next token there. Elsewhere (the prefill, host-carried forms, progressive-quant)
the host carries the scores, keeps the `keep` highest (ties as backend/topk.py) and drops the
other rows from its cache (docs/generation.md). On the NPU the scores cost no MATMUL or softmax of their own: IMPACC on the
attention's softmax tiles (backend/lower/importance_sink.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import FunctionType, IntegerType, ModuleOp
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from dialects import nn, quant, tokens
from dialects.nn_base import shape_of, tensor
from passes.context import PassError, add_report
from passes.token_blocks import main_of


@dataclass(frozen=True)
class KvPrunePass(ModulePass):
    """SpAtten KV-cache pruning for generation: per-key importance out, keep-k by the host."""

    name = "kv-prune"

    keep: int = field(default=64, metadata={"help": "cached tokens kept per step (keep-k)"})
    recent: int = field(
        default=1, metadata={"help": "the newest tokens always kept (1 <= recent <= keep)"}
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.keep < 1 or not 1 <= self.recent <= self.keep:
            raise PassError(
                f"keep={self.keep} recent={self.recent}: need keep ≥ 1 and 1 ≤ recent ≤ keep"
                " (recent = newest cached tokens always kept)"
            )
        func = main_of(op)
        attns = [
            o for o in func.walk() if isinstance(o, nn.AttentionOp | quant.ProgressiveKvAttentionOp)
        ]
        if not attns:
            raise PassError("the model has no nn.attention to score")
        keys = {
            shape_of((a.mask if isinstance(a, quant.ProgressiveKvAttentionOp) else a.key).type)[0]
            for a in attns
        }
        if len(keys) != 1:
            raise PassError(
                f"the attentions have different key counts {sorted(keys)}; kv-prune scores one"
                " KV cache shared by every layer"
            )
        acc: SSAValue | None = None
        for a in attns:
            props = {p: a.prop(p) for p in tokens.ATTN_PROPS}
            prior = [acc] if acc is not None else []
            score: Operation
            if isinstance(a, quant.ProgressiveKvAttentionOp):  # progressive-quant ran first
                q, k, _, sq, sk, mask, msb, lsb = a.operands[:8]
                slot = [] if a.slot is None else [a.slot]  # resident planes
                score = quant.ProgressiveKvImportanceOp.make(
                    [q, k, sq, sk, mask, msb, lsb, *prior, *slot], None, **a.props_dict()
                )
            elif a.mask is not None:
                score = tokens.MaskedImportanceOp.make(
                    [a.query, a.key, a.mask, *prior], None, **props
                )
            else:
                score = tokens.ImportanceOp.make(
                    [a.query, a.key, *prior], None, **props, kind="received"
                )
            a.parent_block().insert_ops_after([score], a)  # type: ignore[union-attr]
            acc = score.results[0]
        assert acc is not None
        ret = func.body.block.last_op
        if not isinstance(ret, ReturnOp):
            raise PassError("func.func @main does not end with func.return")
        args = {a.name_hint: a for a in func.body.block.args}
        outs: list[SSAValue] = [acc]
        where, what = "the host keeps", "the scores"
        if all(n in args for n in ("kv_scores", "positions", "slot", "mask", "pos")):
            carried = tokens.KvAccumulateOp.make([args["kv_scores"], acc, args["slot"]], None)
            placed = _place(args["positions"], args["slot"], args["pos"])
            free = tokens.KvEvictOp.make(
                [carried.results[0], args["mask"], placed[-1].results[0], args["pos"]],
                None,
                recent=self.recent,
            )
            func.body.block.insert_ops_before([carried, *placed, free], ret)
            outs = [carried.results[0], free.results[0]]
            where = "the program accumulates them and picks the evicted slot: it keeps"
            what = "the carried scores and the slot to evict"
        ret.operands = [*ret.operands, *outs]
        func.function_type = FunctionType.from_lists(
            list(func.function_type.inputs.data), [v.type for v in ret.operands]
        )
        add_report(
            ctx,
            self.name,
            {
                "notes": [
                    f"{len(attns)} attention layers scored over {keys.pop()} keys (SpAtten"
                    f" received attention, accumulated); outputs {len(ret.operands) - len(outs)}"
                    f"..{len(ret.operands) - 1} = {what}; {where} {self.keep} cached tokens,"
                    f" the newest {self.recent} protected"
                ]
            },
        )


def _place(positions: SSAValue, slot: SSAValue, pos: SSAValue) -> list[Operation]:
    """`positions` with the new token's position `pos` written at its slot (nn.scatter on the
    [slots, 1] view; in place when `positions` is resident): the keep-k's positions row kept on
    the NPU instead of written by the host every step."""
    n = shape_of(positions.type)[0]
    i32 = IntegerType(32)
    table = nn.ReshapeOp.create(operands=[positions], result_types=[tensor((n, 1), i32)])
    row = nn.ReshapeOp.create(operands=[pos], result_types=[tensor((1, 1), i32)])
    put = nn.ScatterOp.make([table.results[0], slot, row.results[0]], None)
    back = nn.ReshapeOp.create(operands=[put.results[0]], result_types=[positions.type])
    return [table, row, put, back]
