"""Epilogue fusion into a linear whose result has a single use:

- an activation (gelu, tanh, relu) runs on the linear's fp32 accumulators;
- a residual `nn.add` of a same-shape tensor is added to each fp16 output tile before it is
  stored (same rounding as the unfused add, one DRAM round trip less);

and linears that read the same input with constant weights (attention's q, k, v) merge into one
GEMM over the concatenated weights: the input is read once and each result is a column view.
A layer norm read only by such a linear (or merged group) becomes the GEMM's prologue: each
full-row A tile is normalised in SRAM (one ROW) right after its LOAD (pre-LN blocks).
"""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue

from backend.lower.context import LowerCtx
from dialects import nn
from dialects.nn_base import shape_of


def vec_op(op: Operation) -> str | None:
    if isinstance(op, nn.GeluOp):
        return "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"
    if isinstance(op, nn.TanhOp):
        return "tanh"
    if isinstance(op, nn.ReluOp):
        return "relu"
    return None


def plan_fusion(ctx: LowerCtx, ops: list[Operation]) -> None:
    """Mark fused linears (`ctx.fused_act`, `ctx.fused_residual`) and the ops they absorb
    (`ctx.fused_away`: op → index of the operand that carries the fused result)."""
    index = {op: n for n, op in enumerate(ops)}

    def before(v: SSAValue, op: Operation) -> bool:
        owner = v.owner
        return not isinstance(owner, Operation) or index.get(owner, len(ops)) < index[op]

    for op in ops:
        act = vec_op(op)
        if act is not None:
            src = op.operands[0]
            owner = src.owner
            if isinstance(owner, nn.LinearOp) and len(list(src.uses)) == 1:
                ctx.fused_act[owner] = act
                ctx.fused_away[op] = 0
            continue
        if isinstance(op, nn.AddOp):
            shape = tuple(shape_of(op.results[0].type))
            for i in (1, 0):
                src, other = op.operands[i], op.operands[1 - i]
                owner = src.owner
                if (
                    isinstance(owner, nn.LinearOp)
                    and owner not in ctx.fused_residual
                    and len(list(src.uses)) == 1
                    and tuple(shape_of(other.type)) == shape
                    and tuple(shape_of(src.type)) == shape
                    and len(shape) == 2
                    and before(other, owner)
                ):
                    ctx.fused_residual[owner] = other
                    ctx.fused_away[op] = i
                    break


def _const_linear(op: Operation) -> bool:
    if not isinstance(op, nn.LinearOp) or not isinstance(op.weight.owner, nn.WeightOp):
        return False
    return op.bias is None or isinstance(op.bias.owner, nn.WeightOp)


def plan_merge(ctx: LowerCtx, ops: list[Operation]) -> None:
    """Group plain linears sharing an input (`ctx.merged`: first member → group)."""
    groups: dict[SSAValue, list[nn.LinearOp]] = {}
    for op in ops:
        if not isinstance(op, nn.LinearOp) or not _const_linear(op):
            continue
        if op not in ctx.fused_act and op not in ctx.fused_residual:
            groups.setdefault(op.input, []).append(op)
    for members in groups.values():
        if len(members) > 1:
            ctx.merged[members[0]] = list(members)


def plan_ln_prologue(ctx: LowerCtx, ops: list[Operation]) -> None:
    """Mark layer norms read only by one linear or one merged group (`ctx.ln_prologue`)."""
    member_of: dict[Operation, Operation] = {}
    for leader, group in ctx.merged.items():
        for g in group:
            member_of[g] = leader
    for op in ops:
        if not isinstance(op, nn.LayerNormOp):
            continue
        if not all(isinstance(v.owner, nn.WeightOp) for v in (op.gamma, op.beta)):
            continue
        users = [u.operation for u in op.result.uses]
        if not users or not all(
            isinstance(u, nn.LinearOp) and u.input == op.result and u.weight != op.result
            for u in users
        ):
            continue
        leaders = {member_of.get(u, u) for u in users}
        if len(leaders) != 1:
            continue
        leader = leaders.pop()
        group = ctx.merged.get(leader, [leader])
        if set(users) != set(group) or leader in ctx.ln_prologue:
            continue
        ctx.ln_prologue[leader] = op
        ctx.fused_away[op] = 0
