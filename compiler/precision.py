"""Precision per layer of a (possibly quantized) nn module, for summaries (`wisp eval`)."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from backend.wording import plural
from dialects import nn, quant, tokens


def layer_precisions(module: ModuleOp) -> dict[str, str]:
    """Linear layer name → "W8A8", "W4A8" (":gG" when grouped), "W8A8/W4msb rows" (mixed-ffn)
    or "fp16", in program order."""
    out: dict[str, str] = {}
    for op in module.walk():
        if isinstance(op, quant.LinearOp | tokens.MixedLinearOp) and isinstance(
            op.weight.owner, nn.WeightOp
        ):
            name = op.weight.owner.symbol.removesuffix(".weight.q")
            bits = quant.int_width(op.weight.type)
            groups = op.int_prop("groups")
            out[name] = f"W{bits}A8" + (f":g{groups}" if groups > 1 else "")
            if isinstance(op, tokens.MixedLinearOp):  # FACT: some rows at INT4-MSB
                out[name] += "/W4msb rows"
        elif isinstance(op, nn.LinearOp) and isinstance(op.weight.owner, nn.WeightOp):
            out[op.weight.owner.symbol.removesuffix(".weight")] = "fp16"
    return out


def precision_summary(module: ModuleOp) -> list[str]:
    """Lines: a count per precision, then the layers grouped by their first two name parts
    (`blocks.3: attn.q W8A8, ...`). Empty for a model with no quantized layer."""
    prec = layer_precisions(module)
    if not any(p != "fp16" for p in prec.values()):
        return []
    counts: dict[str, int] = {}
    for p in prec.values():
        counts[p] = counts.get(p, 0) + 1
    lines = ["precision: " + ", ".join(f"{plural(n, 'layer')} {p}" for p, n in counts.items())]
    groups: dict[str, list[str]] = {}
    for name, p in prec.items():
        parts = name.split(".")
        head = ".".join(parts[:2]) if len(parts) > 2 else parts[0]
        rest = ".".join(parts[2:]) if len(parts) > 2 else name
        groups.setdefault(head, []).append(f"{rest} {p}")
    lines += [f"  {head}: {', '.join(items)}" for head, items in groups.items()]
    return lines
