"""Epilogue fusion: an activation (gelu, tanh, relu) whose only input is a linear with a single
use runs on the linear's fp32 accumulators instead of a separate DRAM round trip."""

from __future__ import annotations

from xdsl.ir import Operation

from backend.lower.context import LowerCtx
from dialects import nn


def _vec_op(op: Operation) -> str | None:
    if isinstance(op, nn.GeluOp):
        return "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"
    if isinstance(op, nn.TanhOp):
        return "tanh"
    if isinstance(op, nn.ReluOp):
        return "relu"
    return None


def plan_fusion(ctx: LowerCtx, ops: list[Operation]) -> None:
    """Mark fused linears (`ctx.fused_act`) and the activations they absorb (`ctx.fused_away`)."""
    for op in ops:
        act = _vec_op(op)
        if act is None:
            continue
        src = op.operands[0]
        owner = src.owner
        if isinstance(owner, nn.LinearOp) and len(list(src.uses)) == 1:
            ctx.fused_act[owner] = act
            ctx.fused_away.add(op)
