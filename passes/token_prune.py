"""token-prune: cascade token pruning between attention and FFN (SpAtten, TPS, EViT, top-k drop).

    token-prune{method=tps keep=0.7}
    token-prune{method=spatten keep=0.5 schedule=ramp start=1}
    token-prune{method=topk keep=1.0,0.8,0.6,0.5}

After the attention sublayer of each pruned layer (passes/token_blocks.py) the pass inserts:
a score (`tokens.importance`), `tokens.select` of the layer's static keep count, and the kept rows
(`nn.gather`, or `tokens.squeeze` / `tokens.fuse`); every later shape shrinks. Methods:

- `spatten`: SpAtten's received attention Σ_h Σ_i P[h,i,j], accumulated over layers (the scores
  of the kept tokens are carried along), pruned tokens dropped;
- `topk`: the layer's CLS attention, pruned tokens dropped;
- `tps`: CLS attention (eTPS), pruned tokens squeezed into their most similar kept token;
- `evit`: CLS attention, pruned tokens fused into one extra token (counted in the keep count).

`keep`, `schedule` and `start`: passes/token_schedule.py. `protect`: token positions always kept
(default: 0, the CLS token; -1, the last token, for causal models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from dialects import nn, quant, tokens
from dialects.nn_base import shape_of
from passes.context import PassError, add_report
from passes.metrics import measure
from passes.search_decl import Knob, Stage, grid
from passes.token_blocks import AttnBlock, find_blocks, main_of, retype_after
from passes.token_schedule import counts, fractions

METHODS = ("spatten", "tps", "evit", "topk")
CLS_METHODS = ("tps", "evit", "topk")


@dataclass(frozen=True)
class TokenPrunePass(ModulePass):
    """Prune tokens in cascade after the attention of chosen layers (spatten, tps, evit, topk)."""

    name = "token-prune"
    search_stage: ClassVar[Stage] = Stage(40, "tokens")

    method: str = field(
        default="spatten",
        metadata={
            "search": Knob(METHODS),
            "help": "scores and fate of pruned tokens: spatten | topk | tps | evit",
        },
    )
    keep: tuple[float, ...] = field(
        default=(0.7,),
        metadata={
            "search": Knob(tuple((k,) for k in grid(0.2, 0.9, 0.1))),
            "help": "one keep ratio in (0, 1], or one fraction per attention layer",
        },
    )
    schedule: str = field(
        default="ramp",
        metadata={
            "search": Knob(("ramp", "step")),
            "help": "how one ratio is used: ramp | step | each",
        },
    )
    start: int = field(
        default=-1,
        metadata={"search": Knob((1, 2)), "help": "first pruned layer (-1: ~15% of the layers)"},
    )
    protect: tuple[int, ...] = field(
        default=(),
        metadata={"help": "token positions always kept (default 0, the CLS; -1 for causal models)"},
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.method not in METHODS:
            raise PassError(f"method={self.method}: unknown (known: {', '.join(METHODS)})")
        blocks = find_blocks(op, self.name, int8_attention=True)
        causal = [b for b in blocks if b.attn.bool_prop("causal")]
        if causal and self.method in CLS_METHODS:
            raise PassError(
                f"method={self.method} scores tokens by their CLS attention, but"
                f" {causal[0].where} is causal (no token sees the whole sequence); use method=spatten"
            )
        protect = self.protect or ((-1,) if causal else (0,))
        n0 = shape_of(blocks[0].mid.type)[0]
        fracs = fractions(self.keep, self.schedule, self.start, len(blocks))
        floor = len(protect) + (2 if self.method == "evit" else 1)
        kept = counts(fracs, n0, min(floor, n0))
        before = measure(op).macs
        func = main_of(op)
        acc: SSAValue | None = None
        last = max((i for i, k in enumerate(kept) if k < (kept[i - 1] if i else n0)), default=-1)
        rows = n0
        for b in blocks:
            if b.index > last:
                break
            acc, rows = self._layer(func, b, kept[b.index], rows, protect, acc)
        add_report(
            ctx,
            self.name,
            {
                "before": {"macs": before, "tokens": n0},
                "after": {"macs": measure(op).macs, "tokens": kept[-1] if last >= 0 else n0},
                "tokens_per_layer": [
                    {"layer": b.name, "tokens": k} for b, k in zip(blocks, kept, strict=True)
                ],
                "notes": [
                    f"method {self.method}, tokens kept per layer "
                    + " → ".join(str(k) for k in [n0, *kept])
                ],
            },
        )

    def _layer(
        self,
        func: Operation,
        b: AttnBlock,
        k: int,
        n: int,
        protect: tuple[int, ...],
        acc: SSAValue | None,
    ) -> tuple[SSAValue | None, int]:
        """Insert layer b's scoring and selection after its `mid`; returns the accumulated scores
        (spatten) and the rows after the layer."""
        for p in protect:
            if not -n <= p < n:
                raise PassError(
                    f"protect={p}: {b.where} has {n} tokens, so token {p} does not exist"
                )
        if k >= n and self.method != "spatten":
            return acc, n
        attn = b.attn
        props = {p: attn.prop(p) for p in tokens.ATTN_PROPS}
        kind = "received" if self.method == "spatten" else "cls"
        new: list[Operation] = []
        rows: Operation | None = None  # the kept rows' op, made only when k < n
        prior = [acc] if self.method == "spatten" and acc is not None else []
        if isinstance(attn, quant.AttentionOp):  # int8 attention: score its own fp32 P
            qk = [attn.query, attn.key, attn.q_scale, attn.k_scale]
            score = tokens.QuantImportanceOp.make([*qk, *prior], None, **props, kind=kind)
        else:
            score = tokens.ImportanceOp.make(
                [attn.query, attn.key, *prior], None, **props, kind=kind
            )
        new.append(score)
        # the int8 stream (quantize{stream=int8}): dropped rows are gathered in int8
        mid = b.mid_int8 if b.mid_int8 is not None and self.method in ("spatten", "topk") else b.mid
        s: SSAValue = score.results[0]
        acc = s
        if k < n:
            pick = k - 1 if self.method == "evit" else k
            sel = tokens.SelectOp.make([s], k=pick, protect=protect)
            idx = sel.results[0]
            new.append(sel)
            if self.method == "tps":
                rows = tokens.SqueezeOp.make([mid, idx], protect=protect)
            elif self.method == "evit":
                rows = tokens.FuseOp.make([mid, idx, s])
            else:
                rows = nn.GatherOp.make([mid, idx])
            new.append(rows)
            if self.method == "spatten":
                new.append(nn.GatherOp.make([s, idx]))
                acc = new[-1].results[0]
        anchor = mid.owner
        assert isinstance(anchor, Operation)
        anchor.parent_block().insert_ops_after(new, anchor)  # type: ignore[union-attr]
        if rows is not None:  # k < n
            ours = set(new)
            mid.replace_uses_with_if(rows.results[0], lambda use: use.operation not in ours)
            retype_after(func, new[-1])  # type: ignore[arg-type]
        return acc, min(k, n)
