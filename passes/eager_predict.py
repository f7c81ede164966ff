"""eager-predict: FACT eager prediction of the attention pattern before Q/K/V generation.

    eager-predict{topk=16 onehot=false margin=3.0 kv_tile=0 start=0 samples=8}

For each attention from layer `start` on whose q and k are linears of one input x with constant
weights, the pass inserts `quant.quantize %x` (int8, power-of-two scale from the calibration
split), int8 copies of Wq and Wk (per-tensor power-of-two scales) and `tokens.predict` on them
(leading-one log-domain Q̃·K̃ᵀ, row-wise top-`topk` mask; with `onehot=true`, FACT's one-hot rows
where top-1 beats top-2 by more than `margin` in the float attention's units: off by default, it
is the prediction's largest cost on the NPU and never fires on digits-vit), and replaces the attention by
`tokens.masked_attention`, the softmax over the predicted entries only. The intermediate shifts
(Q̃, K̃ → int8) are calibrated so the largest |Q̃| seen maps to 127. Everything the prediction
computes is integer-exact, so the NPU's PREDICT/TOPK give the reference's mask bit for bit.
With `kv_tile=T` > 0 the k and v linears become `tokens.key_linear` on the mask: a row tile of T
keys no (head, query) selects is not generated (zeros; decided at run time). The report gives,
per layer, the rows predicted and, on the calibration samples, the mean one-hot rows (one key
kept: the NPU skips Q·Kᵀ and the softmax of query tiles made only of them) and K/V rows skipped.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerType, ModuleOp, f32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from compiler.reference_tokens import key_rows, leading_one
from dialects import nn, quant, tokens
from dialects.nn_base import shape_of, tensor
from dialects.tokens_fact import KeyLinearOp
from passes.context import PassError, add_report, calibration_of, weights_of
from passes.token_blocks import find_blocks


def pow2_scale(amax: float, qmax: int = 127) -> float:
    """The smallest power of two s with amax / s ≤ qmax (1.0 for an all-zero tensor)."""
    return 2.0 ** math.ceil(math.log2(amax / qmax)) if amax > 0 else 1.0


def quant8(v: np.ndarray, s: float) -> np.ndarray:
    return np.clip(np.rint(np.asarray(v, np.float64) / s), -128, 127).astype(np.int8)


def shift_for(q: np.ndarray) -> int:
    """Right shift taking the largest |Q̃| (an integer) into int8 range (≥ 0)."""
    amax = float(np.abs(q).max()) if q.size else 0.0
    return max(0, int(math.log2(pow2_scale(amax)))) if amax > 0 else 0


@dataclass(frozen=True)
class EagerPredictPass(ModulePass):
    """FACT eager attention prediction on int8 operands: row-wise top-k mask, one-hot rows."""

    name = "eager-predict"

    topk: int = field(
        default=16, metadata={"help": "keys kept per query row in the predicted mask"}
    )
    onehot: bool = field(
        default=False,
        metadata={"help": "FACT one-hot rows where top-1 beats top-2 by more than margin"},
    )
    margin: float = field(
        default=3.0, metadata={"help": "one-hot margin, in the float attention's units (>= 0)"}
    )
    kv_tile: int = field(
        default=0, metadata={"help": "rows per K/V tile skipped when no query selects it (0: off)"}
    )
    start: int = field(default=0, metadata={"help": "first attention layer predicted (0-based)"})
    samples: int = field(
        default=8, metadata={"help": "calibration samples for the int8 scales and the report"}
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.margin < 0:
            raise PassError(f"margin={self.margin}: must be >= 0")
        if self.kv_tile < 0:
            raise PassError(f"kv_tile={self.kv_tile}: must be >= 0 (0: K/V rows not skipped)")
        if self.samples < 1:
            raise PassError(f"samples={self.samples}: must be >= 1")
        blocks = find_blocks(op, self.name)
        if not 0 <= self.start < len(blocks):
            raise PassError(
                f"start={self.start}: the model has {len(blocks)} attention layers"
                f" (0..{len(blocks) - 1})"
            )
        todo = []
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
                    f"{b.where}: q and k must be float linears of one input with constant weights"
                    " (run eager-predict before quantize)"
                )
            n = shape_of(a.query.type)[0]
            if not 0 < self.topk <= n:
                raise PassError(f"topk={self.topk}: {b.where} has {n} tokens (1..{n})")
            todo.append((b, q, k))
        weights = weights_of(ctx, self.name)
        calib = calibration_of(ctx, self.name)
        xs: dict[SSAValue, list[np.ndarray]] = {q.input: [] for _, q, _ in todo}
        for smp in calib.inputs[: self.samples]:
            vals = calib.executor.values(op, weights, smp)
            for x, acc in xs.items():
                acc.append(np.asarray(vals[x], np.float64))
        layers, preds = [], []
        for b, q, k in todo:
            r, pred = self._rewrite(b, q, k, np.stack(xs[q.input]), weights)
            layers.append(r)
            preds.append(pred)
        skipped = [0.0] * len(preds)
        one_hot = [0.0] * len(preds)
        if self.kv_tile or self.onehot or self.topk == 1:
            count = min(self.samples, len(calib.inputs))
            for smp in calib.inputs[: self.samples]:
                vals = calib.executor.values(op, weights, smp)
                for i, p in enumerate(preds):
                    mask = np.asarray(vals[p.results[0]])
                    one_hot[i] += float(((mask != 0).sum(-1) == 1).sum()) / count
                    if self.kv_tile:
                        used = key_rows(mask, self.kv_tile)
                        skipped[i] += float((~used).sum()) / count
        for r, s, o in zip(layers, skipped, one_hot, strict=True):
            r["kv_rows_skipped"] = round(s, 2)
            r["one_hot_rows"] = round(o, 2)
        notes = [
            f"{r['layer']}: top-{self.topk} of {r['tokens']} keys per query,"
            f" {r['rows_predicted']} rows predicted, {r['one_hot_rows']} one-hot,"
            f" K/V rows skipped {r['kv_rows_skipped']} (calibration means),"
            f" x scale 2^{int(math.log2(r['x_scale']))}"
            for r in layers
        ]
        add_report(ctx, self.name, {"notes": notes, "predict_per_layer": layers})

    def _rewrite(
        self,
        b,  # noqa: ANN001  (passes.token_blocks.Block)
        q: nn.LinearOp,
        k: nn.LinearOp,
        xcal: np.ndarray,
        weights: MutableMapping[str, np.ndarray],
    ) -> tuple[dict[str, object], tokens.PredictOp]:
        """Insert quantize(x), the int8 weights and tokens.predict; swap in masked attention
        (and key_linear for k and v when kv_tile > 0)."""
        a = b.attn
        props = {p: a.prop(p) for p in tokens.ATTN_PROPS}
        x = q.input
        n, d = shape_of(x.type)
        sx = pow2_scale(float(np.abs(xcal).max()))
        lx = leading_one(quant8(xcal, sx).astype(np.float64))
        ops, shifts, ws = [], [], []
        for what, lin in (("wq", q), ("wk", k)):
            w = np.asarray(weights[lin.weight.owner.symbol], np.float64)  # type: ignore[union-attr]
            sw = pow2_scale(float(np.abs(w).max()))
            w8 = quant8(w, sw)
            shifts.append(shift_for(lx @ leading_one(w8.astype(np.float64)).T))
            ws.append(sw)
            sym = f"{b.name}.fact.{what}"
            weights[sym] = w8
            ops.append(nn.WeightOp.of(sym, tensor(w8.shape, IntegerType(8))))
        s_sym = f"{b.name}.fact.x_scale"
        weights[s_sym] = np.array([sx], np.float32)
        s_op = nn.WeightOp.of(s_sym, tensor((1,), f32))
        xq = quant.QuantizeOp.make([x, s_op.result], tensor((n, d), IntegerType(8)))
        unit = sx * sx * ws[0] * ws[1] * 2.0 ** (shifts[0] + shifts[1])
        pred = tokens.PredictOp.make(
            [xq.results[0], ops[0].result, ops[1].result],
            heads=props["heads"],
            qk_dim=props["qk_dim"],
            scale=props["scale"],
            causal=props["causal"],
            topk=self.topk,
            margin=self.margin if self.onehot else -1.0,
            q_shift=shifts[0],
            k_shift=shifts[1],
            unit=unit,
        )
        assert isinstance(pred, tokens.PredictOp)
        kv = [self._key_linear(v, x, a, pred) for v in (a.key, a.value)]
        kv_vals = [o.results[0] if o else v for o, v in zip(kv, (a.key, a.value), strict=True)]
        new_attn = tokens.MaskedAttentionOp.make([a.query, *kv_vals, pred.results[0]], **props)
        extra = [o for o in kv if o is not None]
        for o in (s_op, xq, *ops, pred, *extra):
            o.attributes.update(dict(a.attributes))
        block = a.parent_block()
        assert block is not None
        block.insert_ops_before([s_op, xq, *ops, pred, *extra, new_attn], a)
        a.result.replace_all_uses_with(new_attn.results[0])
        block.erase_op(a)
        for o, v in zip(kv, (a.key, a.value), strict=True):
            if o is not None and not v.uses:
                block.erase_op(v.owner)  # type: ignore[arg-type]
        heads = int(props["heads"])  # type: ignore[arg-type]
        return {
            "layer": b.name,
            "tokens": n,
            "topk": self.topk,
            "rows_predicted": heads * n,
            "x_scale": sx,
            "q_shift": shifts[0],
            "k_shift": shifts[1],
        }, pred

    def _key_linear(
        self, v: SSAValue, x: SSAValue, a: Operation, pred: tokens.PredictOp
    ) -> KeyLinearOp | None:
        """k or v as tokens.key_linear on the mask, if it is a constant linear of x used only by
        the attention (else None: left as it is)."""
        lin = v.owner
        if not (
            self.kv_tile
            and isinstance(lin, nn.LinearOp)
            and lin.input == x
            and isinstance(lin.weight.owner, nn.WeightOp)
            and all(u.operation is a for u in v.uses)
        ):
            return None
        bias = [lin.bias] if lin.bias is not None else []
        key_lin = KeyLinearOp.make([x, pred.results[0], lin.weight, *bias], tile=self.kv_tile)
        assert isinstance(key_lin, KeyLinearOp)
        return key_lin
