"""progressive-quant on a decode step (the KV-cache case; docs/generation.md).

A decode form's attention reads `nn.concat %k_cache, %k` (the cache input, then the new key row)
under a key mask. progressive-quant rewrites it to

    %qq = quant.quantize %q, %sq
    %kq = quant.quantize %k, %sk
    %o  = quant.progressive_kv_attention %qq, %kq, %vv, %sq, %sk, %mask, %k_msb_cache, %k_lsb_cache {…}

where the float `k_cache` input [S, H·d] is replaced by two i4 inputs [H, S + 1, d], the cached
keys' MSB and LSB planes, head-major with a free slot per head for the new key (the host keeps the
int8 cache and hands its planes to each step: passes/progressive_math.head_major_planes), and the step returns the new
key row as int8 (`%kq`) where it returned the float row. The K scale comes from the calibration
samples' cache inputs only (never the new row), so every decode bucket compiled from the same
calibration gets the same scale and one int8 cache serves them all.

On a resident decode form (`nn.scatter %k_cache, %slot, %k` in place of the concat) the planes are
[H, S + 1, d] views of resident regions (`k_msb_cacheN`, `k_lsb_cacheN` in `meta["resident"]`),
the attention gets `%slot` as its ninth operand (the new key's planes are written at that row of
each head) and the returned scattered cache is replaced by the int8 row.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

import numpy as np
from xdsl.dialects.builtin import FunctionType, IntegerType, f32
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from dialects import nn, quant, tokens
from dialects.nn_base import shape_of, tensor
from passes.context import Calibration, PassError
from passes.progressive_math import head_major_planes
from passes.quant_math import activation_scale, quantize_values


def cache_arg(attn: nn.AttentionOp) -> BlockArgument | None:
    """The KV-cache input a decode attention's key appends to (`nn.concat %arg, %k` on rows,
    the concat's only use this attention; or on a resident form `nn.scatter %arg, %slot, %k`,
    used by this attention and returned), else None."""
    cat = attn.key.owner
    if isinstance(cat, nn.ScatterOp):
        arg = cat.table
        uses = {u.operation for u in cat.results[0].uses}
        if not isinstance(arg, BlockArgument) or len(list(arg.uses)) != 1:
            return None
        if not all(u is attn or isinstance(u, ReturnOp) for u in uses):
            return None
        return arg
    if not isinstance(cat, nn.ConcatOp) or len(cat.operands) != 2 or cat.int_prop("axis") != 0:
        return None
    arg = cat.operands[0]
    if not isinstance(arg, BlockArgument) or len(list(arg.uses)) != 1:
        return None
    if len(list(cat.results[0].uses)) != 1:
        return None
    return arg


def check_decode(nm: str, attn: nn.AttentionOp, pass_name: str) -> BlockArgument:
    """The cache input of a masked attention progressive-quant can rewrite, or a PassError why not."""
    for use in attn.query.uses:
        if isinstance(use.operation, tokens.MaskedImportanceOp):
            raise PassError(
                f"{pass_name}: {nm} is already scored by kv-prune; on the decode form put"
                " progressive-quant before kv-prune (-p 'progressive-quant{...},kv-prune{...}')"
            )
    arg = cache_arg(attn)
    if arg is None or attn.bool_prop("causal"):
        raise PassError(
            f"{pass_name}: {nm} has a key mask but its keys are not a decode step's KV cache"
            " (nn.concat of a cache input and the new rows); progressive attention supports a key"
            " mask only there"
        )
    return arg


def rewrite_decode(
    func: FuncOp,
    nm: str,
    attn: nn.AttentionOp,
    weights: MutableMapping[str, np.ndarray],
    calib: Calibration,
    acts: Callable[[list[SSAValue]], dict[SSAValue, np.ndarray]],
    threshold: float,
    block: int,
) -> quant.ProgressiveKvAttentionOp:
    """Rewrite one decode attention (see the module docstring); updates `calib.inputs` to the new
    signature (the cache as planes of its int8 values) so later calibrated passes can run."""
    arg = cache_arg(attn)
    assert arg is not None
    cat = attn.key.owner
    assert isinstance(cat, nn.ConcatOp | nn.ScatterOp)
    resident = isinstance(cat, nn.ScatterOp)  # the planes written at the run-time slot
    k_new = cat.operands[2] if resident else cat.operands[1]
    replaced = cat.results[0] if resident else k_new  # the returned value the int8 row replaces
    block_ = func.body.block
    old_name = arg.name_hint or f"arg{arg.index}"
    rows = acts([attn.query, arg])
    sq = activation_scale(rows[attn.query], 8, "minmax")
    sk = activation_scale(rows[arg], 8, "minmax")
    weights[f"{nm}.q_scale"] = np.array([sq], np.float32)
    weights[f"{nm}.k_scale"] = np.array([sk], np.float32)
    ops: list[Operation] = []
    ints: list[SSAValue] = []
    scales: list[SSAValue] = []
    for what, x in (("q", attn.query), ("k", k_new)):
        s_op = nn.WeightOp.of(f"{nm}.{what}_scale", tensor((1,), f32))
        q_op = quant.QuantizeOp.make([x, s_op.result], tensor(shape_of(x.type), IntegerType(8)))
        ops += [s_op, q_op]
        ints.append(q_op.results[0])
        scales.append(s_op.result)
    heads, d = attn.int_prop("heads"), attn.int_prop("qk_dim")
    slots, new = shape_of(arg.type)[0], shape_of(k_new.type)[0]
    free = 0 if resident else new  # resident: the view already has the new rows' slots
    i4 = tensor((heads, slots + free, d), IntegerType(4))
    msb = block_.insert_arg(i4, arg.index)
    lsb = block_.insert_arg(i4, arg.index + 1)
    msb.name_hint = old_name.replace("k_cache", "k_msb_cache", 1)
    lsb.name_hint = old_name.replace("k_cache", "k_lsb_cache", 1)
    assert attn.mask is not None
    pa = quant.ProgressiveKvAttentionOp.make(
        [*ints, attn.value, *scales, attn.mask, msb, lsb, *([cat.operands[1]] if resident else [])],
        None,
        threshold=threshold,
        block=block,
        **attn.props_dict(),
    )
    assert isinstance(pa, quant.ProgressiveKvAttentionOp)
    ops.append(pa)
    for o in ops:
        o.attributes.update(dict(attn.attributes))
    Rewriter.insert_op(ops, InsertPoint.before(attn))
    attn.results[0].replace_all_uses_with(pa.results[0])
    Rewriter.erase_op(attn)
    ret = block_.last_op
    if not isinstance(ret, ReturnOp):
        raise PassError("func.func @main does not end with func.return")
    ret.operands = [ints[1] if v == replaced else v for v in ret.operands]
    Rewriter.erase_op(cat)
    block_.erase_arg(arg)
    func.function_type = FunctionType.from_lists(
        [a.type for a in block_.args], [v.type for v in ret.operands]
    )
    inputs = list(calib.inputs)
    for i, old in enumerate(inputs):  # the new signature: the cache's int8 values as planes
        if old_name in old:
            sample = {n: a for n, a in old.items() if n != old_name}
            kq = quantize_values(old[old_name], weights[f"{nm}.k_scale"], 8)
            sample[msb.name_hint], sample[lsb.name_hint] = head_major_planes(kq, heads, free)
            inputs[i] = sample
    calib.inputs = inputs
    return pa
