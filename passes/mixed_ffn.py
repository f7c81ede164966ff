"""mixed-ffn: FACT's mixed-precision FFN — tokens the eager prediction marks unimportant run the
FFN at INT4-MSB, the rest at int8.

    eager-predict{topk=32},quantize{weights=int8},mixed-ffn{int8=0.5 protect=0}

For each `tokens.predict` (eager-predict), the layer's FFN linears — the `quant.linear`s of the same
layer after its attention's output projection (quantize must have run; int8 weights, one group) —
become `tokens.mixed_linear` on one `tokens.row_precision` of the predicted mask: token j's
importance is how many (head, query) pairs the prediction selects it for; the round(int8·n) most
important tokens (and the `protect`ed ones, default the CLS token 0) keep int8 weights, the others
use the weights' high nibble only, (w >> 4) << 4 (the MATMUL precision mask; decided at run time).
Activations stay int8 on every row. `int8=1.0` changes nothing. The report gives, per layer, the
rows at int8 / INT4-MSB and the FFN MACs moved to INT4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from dialects import nn, quant, tokens
from dialects.nn_base import shape_of
from passes.context import PassError, add_report

_LAYER = re.compile(r"^((?:blocks|layers|h)\.\d+)\.")


def _layer_of(op: Operation) -> str | None:
    """The layer prefix ("blocks.3") of a linear's weight symbol, if it has one."""
    w = op.operands[1].owner
    m = _LAYER.match(w.symbol) if isinstance(w, nn.WeightOp) else None
    return m.group(1) if m else None


def _is_projection(lin: Operation, attn: Operation) -> bool:
    """lin reads the attention's output (directly, or through its quant.quantize)."""
    src = lin.operands[0].owner
    if isinstance(src, quant.QuantizeOp):
        src = src.input.owner
    return src is attn


@dataclass(frozen=True)
class MixedFfnPass(ModulePass):
    """FACT mixed-precision FFN: predicted-unimportant tokens at INT4-MSB (per-row precision mask)."""

    name = "mixed-ffn"

    int8: float = field(
        default=0.5,
        metadata={"help": "fraction of tokens (most selected first) kept at int8, in [0, 1]"},
    )
    protect: tuple[int, ...] = field(
        default=(0,), metadata={"help": "token positions always at int8 (default 0, the CLS)"}
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not 0.0 <= self.int8 <= 1.0:
            raise PassError(f"int8={self.int8}: the fraction of int8 tokens must be in [0, 1]")
        ops = list(op.walk())
        index = {o: i for i, o in enumerate(ops)}
        preds = [o for o in ops if isinstance(o, tokens.PredictOp)]
        if not preds:
            raise PassError("the module has no tokens.predict (run eager-predict first)")
        layers = []
        for pred in preds:
            wq = pred.wq.owner
            assert isinstance(wq, nn.WeightOp)
            name = wq.symbol.removesuffix(".fact.wq")
            attn = next(
                (u.operation for u in pred.results[0].uses
                 if isinstance(u.operation, tokens.MaskedAttentionOp)),
                None,
            )  # fmt: skip
            if attn is None:
                raise PassError(f"{name}: tokens.predict has no tokens.masked_attention user")
            n = shape_of(pred.results[0].type)[-1]
            ffn = [
                o for o in ops[index[attn] + 1 :]
                if isinstance(o, nn.LinearOp | quant.LinearOp) and _layer_of(o) == name
                and not _is_projection(o, attn)
            ]  # fmt: skip
            if not ffn:
                raise PassError(f"{name}: no FFN linear found after the attention")
            for lin in ffn:
                lname = lin.operands[1].owner.symbol  # type: ignore[union-attr]
                if not isinstance(lin, quant.LinearOp):
                    raise PassError(f"{name}: {lname} is a float linear (run quantize first)")
                if quant.int_width(lin.weight.type) != 8 or lin.int_prop("groups") != 1:
                    raise PassError(
                        f"{name}: {lname} needs int8 weights in one group (INT4-MSB drops the"
                        " low nibble of an int8 weight)"
                    )
                rows = shape_of(lin.input.type)
                if len(rows) != 2 or rows[0] != n:
                    raise PassError(
                        f"{name}: {lname} runs on {list(rows)} rows, the prediction on {n} tokens"
                    )
            if self.int8 >= 1.0:
                continue
            layers.append(self._rewrite(pred, ffn, name, n))  # type: ignore[arg-type]
        notes = [
            f"{r['layer']}: {r['int8_rows']} of {r['tokens']} token rows int8,"
            f" {r['int4_rows']} INT4-MSB in {', '.join(r['linears'])}"
            f" ({r['int4_macs']:,} of {r['ffn_macs']:,} FFN MACs at INT4)"
            for r in layers
        ]
        add_report(ctx, self.name, {"notes": notes, "mixed_per_layer": layers})

    def _rewrite(
        self, pred: tokens.PredictOp, ffn: list[quant.LinearOp], name: str, n: int
    ) -> dict[str, object]:
        """One tokens.row_precision after the prediction; each FFN linear → tokens.mixed_linear."""
        bad = [p for p in self.protect if not -n <= p < n]
        if bad:
            raise PassError(
                f"protect={list(self.protect)}: {name} has no token {bad[0]} ({n} tokens)"
            )
        prot = tuple(dict.fromkeys(p % n for p in self.protect))
        k = min(n, max(len(prot), 1, round(self.int8 * n)))
        low = tokens.RowPrecisionOp.make([pred.results[0]], int8_rows=k, protect=prot)
        low.attributes.update(dict(pred.attributes))
        block = pred.parent_block()
        assert block is not None
        block.insert_op_after(low, pred)
        macs = 0
        names = []
        for lin in ffn:
            bias = [lin.bias] if lin.bias is not None else []
            new = tokens.MixedLinearOp.make(
                [lin.input, lin.weight, low.results[0], *bias], groups=1
            )
            new.attributes.update(dict(lin.attributes))
            lb = lin.parent_block()
            assert lb is not None
            lb.insert_op_before(new, lin)
            lin.result.replace_all_uses_with(new.results[0])
            lb.erase_op(lin)
            nw, kw = shape_of(lin.weight.type)
            macs += nw * kw
            names.append(lin.weight.owner.symbol.removesuffix(".weight.q"))  # type: ignore[union-attr]
        return {
            "layer": name,
            "tokens": n,
            "int8_rows": k,
            "int4_rows": n - k,
            "linears": names,
            "ffn_macs": n * macs,
            "int4_macs": (n - k) * macs,
        }
