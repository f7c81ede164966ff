"""Fusion planning around `quant.linear` (docs/lowering.md, "Quantized GEMMs").

A quant.linear runs as one integer GEMM that absorbs, when each value has a single use:

- before it, the `quant.quantize` of a float input (the A tile is quantized in SRAM; a layer norm
  read only by such quantizes becomes the GEMM's prologue, as for float linears);
- after it, `quant.requantize` (REQUANT epilogue), or `quant.dequantize` followed by an activation,
  a residual `nn.add`, a bias `nn.add` (grouped weights) and/or the next `quant.quantize` (so the
  activation is stored to DRAM as int8).

quant.linears that read the same quantized input with plain dequantize epilogues (q, k, v), or
with requantize epilogues of one shift (int8 q, k, v for quant.attention), merge into one GEMM over
the concatenated weights. A quant.attention whose single user is a quant.quantize stores its output
as int8 itself (`QAttnPlan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
from xdsl.ir import Operation, SSAValue

from backend.lower.context import LowerCtx
from backend.lower.fuse import vec_op
from dialects import nn, quant, tokens
from dialects.nn_base import shape_of

LINEARS = (quant.LinearOp, tokens.MixedLinearOp)  # integer GEMMs (mixed: per-row precision)


@dataclass
class QPlan:
    """What the integer GEMM of one quant.linear (or a merged group's leader) absorbs."""

    members: list[quant.LinearOp | tokens.MixedLinearOp]
    in_quant: quant.QuantizeOp | None = None
    deq: list[quant.DequantizeOp] = field(default_factory=list)
    requant: quant.RequantizeOp | None = None
    requants: list[quant.RequantizeOp] = field(default_factory=list)  # merged: one per member
    act: str | None = None
    out_quant: quant.QuantizeOp | None = None
    residual: SSAValue | None = None
    res_scale: float | None = None  # the residual is the int8 stream: dequantize it by this
    a_scale: float | None = None  # the layer-norm prologue reads the int8 stream: dequantize it
    bias_add: nn.AddOp | None = None
    ln: nn.LayerNormOp | None = None


@dataclass(frozen=True)
class QAttnPlan:
    """A quant.attention whose single user, a quant.quantize with reciprocal scale `out_inv`
    (1 ⊘ f32(s)), is absorbed: the attention stores int8."""

    out_inv: float


def _single_use(v: SSAValue) -> Operation | None:
    uses = list(v.uses)
    return uses[0].operation if len(uses) == 1 else None


def _const(v: SSAValue | None) -> bool:
    return v is None or isinstance(v.owner, nn.WeightOp)


def plan_quant(ctx: LowerCtx, ops: list[Operation]) -> None:
    """Fill `ctx.qplans` (leader quant.linear → QPlan) and mark the absorbed ops in
    `ctx.fused_away`."""
    index = {op: n for n, op in enumerate(ops)}
    plans: dict[Operation, QPlan] = {}
    out_quants: set[Operation] = set()
    for op in ops:
        if not isinstance(op, LINEARS) or not _const(op.weight) or not _const(op.bias):
            continue
        p = QPlan([op])
        user = _single_use(op.result)
        if isinstance(user, quant.RequantizeOp) and _const(user.multiplier):
            if op.int_prop("groups") == 1:
                p.requant = user
        elif isinstance(user, quant.DequantizeOp) and _const(user.scale):
            p.deq = [user]
            tail: Operation = user
            nxt = _single_use(user.result)
            grouped = op.int_prop("groups") > 1
            if grouped and isinstance(nxt, nn.AddOp):
                bias = nxt.operands[1] if nxt.operands[0] == tail.results[0] else nxt.operands[0]
                if _const(bias) and shape_of(bias.type) == (shape_of(tail.results[0].type)[-1],):
                    p.bias_add, tail = nxt, nxt
                    nxt = _single_use(nxt.results[0])
            act = vec_op(nxt) if nxt is not None else None
            if act is not None:
                p.act, tail = act, nxt  # type: ignore[assignment]
                nxt = _single_use(tail.results[0])
            if isinstance(nxt, quant.QuantizeOp) and _const(nxt.scale):
                p.out_quant = nxt
                out_quants.add(nxt)
            elif isinstance(nxt, nn.AddOp) and p.act is None:
                v = tail.results[0]
                other = nxt.operands[1] if nxt.operands[0] == v else nxt.operands[0]
                owner = other.owner
                shape = shape_of(v.type)
                if (
                    len(shape) == 2
                    and shape_of(other.type) == shape
                    and shape_of(nxt.results[0].type) == shape
                    and (not isinstance(owner, Operation) or index.get(owner, 0) < index[op])
                ):
                    p.residual = other
                    ctx.fused_away[nxt] = list(nxt.operands).index(v)
                    after = _single_use(nxt.results[0])  # the int8 residual stream
                    if isinstance(after, quant.QuantizeOp) and _const(after.scale):
                        p.out_quant = after
                        out_quants.add(after)
        else:
            continue
        plans[op] = p
        for absorbed in (p.requant, *p.deq, p.bias_add, p.out_quant):
            if absorbed is not None:
                ctx.fused_away[absorbed] = 0
        if p.act is not None:
            act_op = _single_use(
                p.deq[0].results[0] if p.bias_add is None else p.bias_add.results[0]
            )
            assert act_op is not None
            ctx.fused_away[act_op] = 0
    attn_out: dict[Operation, QAttnPlan] = {}
    for op in ops:
        user = _single_use(op.results[0]) if isinstance(op, quant.AttentionOp) else None
        if isinstance(user, quant.QuantizeOp) and isinstance(user.scale.owner, nn.WeightOp):
            if quant.int_width(user.result.type) == 8:
                s = np.float32(np.asarray(ctx.weights[user.scale.owner.symbol]).reshape(-1)[0])
                attn_out[op] = QAttnPlan(float(np.float32(1.0) / s))
                out_quants.add(user)
                ctx.fused_away[user] = 0
    # the input side: quantize of a float value read only by planned quant.linears
    for op in ops:
        if not isinstance(op, quant.QuantizeOp) or op in out_quants or not _const(op.scale):
            continue
        users = [u.operation for u in op.result.uses]
        if users and all(u in plans and u.operands[0] == op.result for u in users):
            ctx.fused_away[op] = 0
            for u in users:
                plans[u].in_quant = op
    _merge(plans)
    _ln_prologue(ctx, ops, plans)
    _int8_stream(ctx, ops, plans, out_quants)
    ctx.qplans = {**plans, **attn_out}


def _int8_stream(
    ctx: LowerCtx, ops: list[Operation], plans: dict[Operation, QPlan], stored: set[Operation]
) -> None:
    """A per-tensor dequantize of an int8 value a GEMM stored (the residual stream) stays int8 in
    DRAM when every reader dequantizes it in SRAM itself: a fused layer-norm prologue or a fused
    residual add. Rows gathered from such a value (token pruning's kept rows) are int8 in DRAM
    too."""
    for op in ops:
        if not isinstance(op, quant.DequantizeOp):
            continue
        src = op.input.owner
        if isinstance(src, nn.GatherOp):
            src = src.operands[0].owner
        if src not in stored:
            continue
        if shape_of(op.scale.type) != (1,) or not _const(op.scale):
            continue
        v = op.results[0]
        readers = {u.operation for u in v.uses}
        lns = {p.ln: p for p in plans.values() if p.ln is not None and p.ln.input == v}
        res = [p for p in plans.values() if p.residual == v]
        res_adds = {a for a in readers if isinstance(a, nn.AddOp) and a in ctx.fused_away}
        plain_lns = {  # standalone layer norms (the final norm) read int8 rows too
            r for r in readers if isinstance(r, nn.LayerNormOp) and r not in ctx.fused_away
        }
        if not readers or readers != set(lns) | res_adds | plain_lns or len(res_adds) != len(res):
            continue
        w_op = op.scale.owner
        assert isinstance(w_op, nn.WeightOp)
        scale = float(np.float32(np.asarray(ctx.weights[w_op.symbol]).reshape(-1)[0]))
        for p in lns.values():
            p.a_scale = scale
        for p in res:
            p.res_scale = scale
        for ln in plain_lns:
            ctx.int8_inputs[ln] = scale
        ctx.fused_away[op] = 0


def _merge(plans: dict[Operation, QPlan]) -> None:
    """Merge linears reading one input into the first one's plan: plain (dequantize-only) ones,
    or ones that each end in a requantize with the same shift (their multipliers side by side)."""
    groups: dict[tuple[SSAValue, int], list[Operation]] = {}
    for op, p in plans.items():
        lin = p.members[0]
        if isinstance(lin, tokens.MixedLinearOp):  # its row mask is its own
            continue
        plain = p.deq and not (p.act or p.out_quant or p.residual or p.bias_add)
        if plain:
            groups.setdefault((lin.input, -1), []).append(op)
        elif p.requant is not None:
            groups.setdefault((lin.input, p.requant.int_prop("shift")), []).append(op)
    for members in groups.values():
        kinds = {
            (quant.int_width(m.operands[1].type), cast(quant.LinearOp, m).int_prop("groups"))
            for m in members
        }
        if len(members) < 2 or len(kinds) != 1:
            continue
        lead = plans[members[0]]
        if lead.requant is not None:
            lead.requants = [lead.requant]
        for m in members[1:]:
            lead.members.append(plans[m].members[0])
            lead.deq += plans[m].deq
            if lead.requant is not None:
                lead.requants.append(plans[m].requant)  # type: ignore[arg-type]
            del plans[m]


def _ln_prologue(ctx: LowerCtx, ops: list[Operation], plans: dict[Operation, QPlan]) -> None:
    """A layer norm read only by one fused input quantize of one (merged) ungrouped plan."""
    for op in ops:
        if not isinstance(op, nn.LayerNormOp) or not (_const(op.gamma) and _const(op.beta)):
            continue
        user = _single_use(op.result)
        if not isinstance(user, quant.QuantizeOp) or user not in ctx.fused_away:
            continue
        leads = [p for p in plans.values() if p.in_quant is user]
        if len(leads) != 1:
            continue
        readers = {u.operation for u in user.result.uses}
        if readers != set(leads[0].members):
            continue
        leads[0].ln = op
        ctx.fused_away[op] = 0
