"""Size and work of an nn module: parameters, MACs and weight bytes, counted from the IR.

Used by compression passes to report before/after figures. MACs are multiply-accumulates of one
inference (batch 1). Weight bytes follow each weight's element type; a weight marked
`{sparsity = "2:4"}` is stored compressed: half its values plus a 2-bit position per kept value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation

from dialects import nn
from dialects.nn_base import element_of, shape_of
from dialects.types import numpy_dtype


@dataclass(frozen=True)
class Metrics:
    params: int
    nonzero_params: int
    macs: int
    weight_bytes: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def op_macs(op: Operation) -> int:
    """Multiply-accumulates of one nn op (0 for ops without a contraction)."""
    if isinstance(op, nn.LinearOp):
        x, w = shape_of(op.input.type), shape_of(op.weight.type)
        return math.prod(x[:-1]) * w[0] * w[1]
    if isinstance(op, nn.MatmulOp):
        out, a = shape_of(op.result.type), shape_of(op.lhs.type)
        return math.prod(out) * a[-1]
    if isinstance(op, nn.PatchEmbedOp):
        out, w = shape_of(op.result.type), shape_of(op.weight.type)
        return out[0] * w[0] * w[1]
    if isinstance(op, nn.AttentionOp):
        sq, sk = shape_of(op.query.type)[0], shape_of(op.key.type)[0]
        heads, dqk, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
        return heads * sq * sk * (dqk + dv)
    return 0


def sparsity_of(op: nn.WeightOp) -> str | None:
    attr = op.attributes.get("sparsity")
    return attr.data if isinstance(attr, StringAttr) else None


def _weight_bytes(op: nn.WeightOp) -> int:
    size = math.prod(shape_of(op.result.type))
    elem = element_of(op.result.type)
    bits = 4 if "i4" == str(elem) else numpy_dtype(elem).itemsize * 8
    if sparsity_of(op) == "2:4":
        kept = size // 2
        return (kept * bits + kept * 2 + 7) // 8
    return (size * bits + 7) // 8


def measure(module: Operation, weights: Mapping[str, np.ndarray] | None = None) -> Metrics:
    """Params (each weight symbol once), nonzero params (needs `weights`), MACs and weight bytes."""
    seen: set[str] = set()
    params = nonzero = weight_bytes = macs = 0
    for op in module.walk():
        macs += op_macs(op)
        if isinstance(op, nn.WeightOp) and op.symbol not in seen:
            seen.add(op.symbol)
            size = math.prod(shape_of(op.result.type))
            params += size
            nonzero += int(np.count_nonzero(weights[op.symbol])) if weights is not None else size
            weight_bytes += _weight_bytes(op)
    return Metrics(params, nonzero, macs, weight_bytes)
