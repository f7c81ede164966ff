"""progressive-quant: SpAtten progressive quantization of attention keys (docs/quantization.md).

Each chosen `nn.attention %q, %k, %v` becomes

    %qq = quant.quantize %q, %sq         (int8, per-tensor scale calibrated by min-max)
    %kq = quant.quantize %k, %sk
    %o  = quant.progressive_attention %qq, %kq, %v, %sq, %sk {…, threshold, block}

K is then stored as two 4-bit planes: attention fetches the MSB plane, and recomputes a block of
`block` query rows with the LSB plane too when its smallest row-max probability is below
`threshold`. The report gives the fraction of (head, block) pairs that refetch on calibration
data and the DRAM bytes of K per attention (MSB plane + refetched LSB planes, vs int8 and fp16).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerType, ModuleOp, f32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from backend.wording import plural
from dialects import nn, quant
from dialects.nn_base import shape_of, tensor
from passes.context import PassError, add_report, calibration_of, weights_of
from passes.progressive_kv import check_decode, rewrite_decode
from passes.progressive_math import kv_keys, progressive_attention
from passes.quant_math import activation_scale
from passes.quantize import collect_inputs
from passes.token_blocks import main_of


def attention_name(op: nn.AttentionOp, n: int) -> str:
    """`blocks.0.attn` from the q projection's weight symbol, else `attention<n>`."""
    owner = op.query.owner
    if isinstance(owner, nn.LinearOp) and isinstance(owner.weight.owner, nn.WeightOp):
        return owner.weight.owner.symbol.rsplit(".", 2)[0]
    return f"attention{n}"


def k_dram_bytes(sk: int, d: int, heads: int, refetched_heads: float) -> dict[str, int]:
    """K bytes one attention reads: the MSB plane once per head, one LSB plane per head with a
    refetch (kept resident for the head's later blocks; mean over samples), vs int8 and fp16."""
    plane = sk * d // 2
    return {
        "progressive": round(heads * plane + refetched_heads * plane),
        "int8": heads * sk * d,
        "fp16": heads * sk * d * 2,
    }


@dataclass(frozen=True)
class ProgressiveQuantPass(ModulePass):
    """SpAtten progressive quantization: int8 Q·Kᵀ from K's MSB plane, LSB refetch below a threshold."""

    name = "progressive-quant"

    k_bits: int = field(default=8, metadata={"help": "K storage bits (two 4-bit planes; only 8)"})
    msb: int = field(
        default=4,
        metadata={"help": "bits of the MSB plane (the ISA's LOADBP planes are 4-bit; only 4)"},
    )
    threshold: float = field(
        default=0.1,
        metadata={
            "help": "refetch a block whose smallest row-max probability is below this, in [0, 1]"
        },
    )
    block: int = field(default=16, metadata={"help": "query rows per refetch decision"})
    layers: str = field(
        default="",
        metadata={"help": "fnmatch patterns of attention names (blocks.0.attn, ...); default all"},
    )
    samples: int = field(default=16, metadata={"help": "calibration samples"})

    def check(self) -> None:
        bad = [
            (self.k_bits != 8, f"k_bits={self.k_bits}: only 8-bit K is supported"),
            (self.msb != 4, f"msb={self.msb}: the ISA's bit planes (LOADBP) are 4-bit"),
            (
                not 0.0 <= self.threshold <= 1.0,
                f"threshold={self.threshold}: must be in [0, 1]",
            ),
            (self.block < 1, f"block={self.block}: must be >= 1"),
            (self.samples < 1, f"samples={self.samples}: must be >= 1"),
        ]
        for cond, msg in bad:
            if cond:
                raise PassError(f"{self.name}: {msg}")

    def chosen(self, module: ModuleOp) -> list[tuple[str, nn.AttentionOp]]:
        ops = [o for o in module.walk() if isinstance(o, nn.AttentionOp)]
        named = [(attention_name(o, n), o) for n, o in enumerate(ops)]
        pats = [p for p in self.layers.replace(",", " ").split() if p]
        for p in pats:
            if not any(fnmatch.fnmatchcase(nm, p) for nm, _ in named):
                names = ", ".join(nm for nm, _ in named[:6]) or "none"
                raise PassError(
                    f"{self.name}: layers={p} matches no nn.attention (attentions: {names})"
                )
        out = [
            (nm, o) for nm, o in named if not pats or any(fnmatch.fnmatchcase(nm, p) for p in pats)
        ]
        for nm, o in out:
            if o.mask is not None:  # only a decode step's KV cache (passes/progressive_kv.py)
                check_decode(nm, o, self.name)
        return out

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self.check()
        weights = weights_of(ctx, self.name)
        chosen = self.chosen(op)
        if not chosen:
            add_report(ctx, self.name, {"notes": ["no nn.attention to rewrite"]})
            return
        calib = calibration_of(ctx, self.name)
        values = [v for _, a in chosen if a.mask is None for v in (a.query, a.key)]
        acts = collect_inputs(op, weights, calib, list(dict.fromkeys(values)), self.samples)
        new: list[tuple[str, quant.ProgressiveAttentionOp | quant.ProgressiveKvAttentionOp]] = []
        for nm, attn in chosen:
            if attn.mask is not None:
                pk = rewrite_decode(
                    main_of(op), nm, attn, weights, calib,
                    lambda vs: collect_inputs(op, weights, calib, vs, self.samples),
                    self.threshold, self.block,
                )  # fmt: skip
                new.append((nm, pk))
                continue
            ops: list[Operation] = []
            ints: list[SSAValue] = []
            scales: list[SSAValue] = []
            for what, x in (("q", attn.query), ("k", attn.key)):
                sym = f"{nm}.{what}_scale"
                weights[sym] = np.array([activation_scale(acts[x], 8, "minmax")], np.float32)
                s_op = nn.WeightOp.of(sym, tensor((1,), f32))
                q_op = quant.QuantizeOp.make(
                    [x, s_op.result], tensor(shape_of(x.type), IntegerType(8))
                )
                ops += [s_op, q_op]
                ints.append(q_op.results[0])
                scales.append(s_op.result)
            pa = quant.ProgressiveAttentionOp.make(
                [*ints, attn.value, *scales],
                None,
                threshold=self.threshold,
                block=self.block,
                **attn.props_dict(),
            )
            assert isinstance(pa, quant.ProgressiveAttentionOp)
            ops.append(pa)
            for o in ops:
                o.attributes.update(dict(attn.attributes))
            Rewriter.insert_op(ops, InsertPoint.before(attn))
            attn.results[0].replace_all_uses_with(pa.results[0])
            Rewriter.erase_op(attn)
            new.append((nm, pa))
        add_report(
            ctx, self.name, self.report(op, weights, calib.inputs[: self.samples], calib, new)
        )

    def report(self, module, weights, samples: Sequence, calib, new) -> dict:
        """Refetch fraction and K bytes per attention, from the reference on calibration data."""
        per: dict[str, dict[str, float | int]] = {}
        counts = {nm: [0, 0, 0] for nm, _ in new}  # blocks refetched, blocks, heads refetched
        for s in samples:
            vals = calib.executor.values(module, weights, s)
            for nm, pa in new:
                a = [np.asarray(vals[x]) for x in pa.operands]
                mask = None
                if isinstance(pa, quant.ProgressiveKvAttentionOp):  # decode: K from the planes
                    a, mask = [a[0], kv_keys(*a[6:8], a[1], *a[8:]), *a[2:5]], a[5]
                q, k, v, q_scale, k_scale = a
                _, ref = progressive_attention(
                    q, k, v, q_scale, k_scale, pa.int_prop("heads"), pa.float_prop("scale"),
                    pa.bool_prop("causal"), pa.float_prop("threshold"), pa.int_prop("block"),
                    mask,
                )  # fmt: skip
                counts[nm][0] += int(ref.sum())
                counts[nm][1] += ref.size
                counts[nm][2] += int(ref.any(axis=1).sum())
        totals = {"progressive": 0, "int8": 0, "fp16": 0}
        for nm, pa in new:
            kv = isinstance(pa, quant.ProgressiveKvAttentionOp)
            sk, hd = shape_of((pa.mask if kv else pa.key).type)[0], shape_of(pa.key.type)[1]
            heads = pa.int_prop("heads")
            hit, n, hh = counts[nm]
            b = k_dram_bytes(sk, hd // heads, heads, hh / len(samples))
            per[nm] = {
                "refetch_fraction": round(hit / n, 4),
                **{f"k_bytes_{k}": v for k, v in b.items()},
            }
            for key in totals:
                totals[key] += b[key]
        hit = sum(c[0] for c in counts.values())
        n = sum(c[1] for c in counts.values())
        frac = hit / n if n else 0.0
        notes = [
            f"{plural(len(new), 'attention')}: threshold={self.threshold}, block={self.block}; "
            f"{hit}/{n} (head, row-block) pairs refetch the LSB plane ({100 * frac:.1f}%) on "
            f"{plural(len(samples), 'calibration sample')}",
            f"K bytes per inference: {totals['progressive']} progressive vs {totals['int8']} int8 "
            f"vs {totals['fp16']} fp16 ({totals['progressive'] / max(totals['fp16'], 1):.3f}× fp16)",
        ]
        return {
            "refetch_fraction": round(frac, 4),
            "k_bytes": totals,
            "layers": per,
            "notes": notes,
        }
