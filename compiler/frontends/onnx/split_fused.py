"""Split fused projections: an `nn.linear` with a stored weight whose every use is an `nn.slice` of its
last axis (timm's `qkv`, GPT-2's `c_attn`) becomes one `nn.linear` per slice with the matching rows of
the weight and bias, as the zoo models are built. Passes that reason per projection (head pruning,
token pruning, quantization scales) then see the same IR for an imported model as for a zoo one.

Slices feeding an `nn.attention`'s q, k and v operands are named `PARENT.q/.k/.v` (`blocks.0.attn.qkv`
→ `blocks.0.attn.q`); others `NAME.part0`, `NAME.part1`, …."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.rewriter import Rewriter

from compiler.weights import WeightStore
from dialects import nn
from dialects.nn_base import element_of, shape_of, tensor

_ROLES = {0: "q", 1: "k", 2: "v"}


def _role(sl: nn.SliceOp) -> str | None:
    """'q', 'k' or 'v' if every use of the slice is that operand of an nn.attention."""
    roles = set()
    for use in sl.result.uses:
        if not isinstance(use.operation, nn.AttentionOp) or use.index not in _ROLES:
            return None
        roles.add(_ROLES[use.index])
    return roles.pop() if len(roles) == 1 else None


def _fresh(weights: WeightStore, name: str) -> str:
    out, n = name, 2
    while out in weights:
        out, n = f"{name}_{n}", n + 1
    return out


def split_fused_linears(func: FuncOp, weights: WeightStore) -> int:
    """Rewrite every fused projection in `func`; returns how many were split."""
    count = 0
    for op in list(func.body.block.ops):
        if not isinstance(op, nn.LinearOp) or not isinstance(op.weight.owner, nn.WeightOp):
            continue
        if op.bias is not None and not isinstance(op.bias.owner, nn.WeightOp):
            continue
        uses = [u.operation for u in op.result.uses]
        rank = len(shape_of(op.result.type))
        slices = [u for u in uses if isinstance(u, nn.SliceOp)]
        if len(uses) < 2 or len(slices) != len(uses):
            continue
        out_shape = shape_of(op.result.type)
        if any(
            s.ints_prop("offsets")[:-1] != (0,) * (rank - 1)
            or shape_of(s.result.type)[:-1] != out_shape[:-1]
            for s in slices
        ):
            continue
        w_op = op.weight.owner
        b_op = op.bias.owner if op.bias is not None else None
        assert isinstance(w_op, nn.WeightOp) and (b_op is None or isinstance(b_op, nn.WeightOp))
        w_name = w_op.symbol
        w, b = weights[w_name], None if b_op is None else weights[b_op.symbol]
        stem = w_name.removesuffix(".weight")
        parent = stem.rsplit(".", 1)[0] if "." in stem else stem
        roles = [_role(s) for s in slices]
        named = sorted(r for r in roles if r) == ["k", "q", "v"] and len(slices) == 3
        order = sorted(range(len(slices)), key=lambda i: slices[i].ints_prop("offsets")[-1])
        for part, i in enumerate(order):
            s = slices[i]
            start, size = s.ints_prop("offsets")[-1], shape_of(s.result.type)[-1]
            base = _fresh(weights, f"{parent}.{roles[i]}" if named else f"{stem}.part{part}")
            weights[f"{base}.weight"] = w[start : start + size].copy()
            new_w = nn.WeightOp.of(f"{base}.weight", _type(weights[f"{base}.weight"], op))
            operands: list[SSAValue] = [op.input, new_w.result]
            new_ops: list[Operation] = [new_w]
            if b is not None:
                weights[f"{base}.bias"] = b[start : start + size].copy()
                new_b = nn.WeightOp.of(f"{base}.bias", _type(weights[f"{base}.bias"], op))
                operands.append(new_b.result)
                new_ops.append(new_b)
            new_ops.append(nn.LinearOp.make(operands, s.result.type))
            Rewriter.replace_op(s, new_ops, [new_ops[-1].results[0]])
        Rewriter.erase_op(op)
        for dead in (w_op, b_op):
            if dead is not None and not dead.results[0].uses:
                Rewriter.erase_op(dead)
        count += 1
    return count


def _type(array: np.ndarray, like: nn.LinearOp) -> Attribute:
    return tensor(array.shape, element_of(like.weight.type))
