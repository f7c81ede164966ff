"""Where token pruning attaches in a transformer block, and how shapes follow a pruned stream.

A block is found from its `nn.attention`: the attention's output projection (a single-use
`nn.linear`), the residual `nn.add` that closes the attention sublayer, and, for post-LN blocks
(BERT), the layer norm that is the add's only user. That value (`mid`) is the token stream between
attention and FFN, where pruning is inserted (EViT's place): the FFN of the same layer already runs
on the kept tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xdsl.dialects.builtin import FunctionType, ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, SSAValue

from dialects import nn, quant
from dialects.nn_base import NNOp, ShapeError, element_of, shape_of, tensor
from passes.context import PassError

_ELEMENTWISE_GIVEN = (quant.QuantizeOp, quant.RequantizeOp)  # result element type is given
_LAYER = re.compile(r"^((?:blocks|layers|h)\.\d+)\.")


@dataclass
class AttnBlock:
    index: int
    name: str  # "blocks.3" (or "layer 3" when the weights are not named that way)
    attn: nn.AttentionOp | quant.AttentionOp
    mid: SSAValue  # the token stream after the attention sublayer
    # quantize{stream=int8}: the int8 stream quant.quantize(mid) that a per-tensor dequantize
    # reads (rows can be gathered in int8, so the GEMM still stores the stream as int8)
    mid_int8: SSAValue | None = None

    @property
    def where(self) -> str:
        return f"layer {self.index} ({self.name})"


def main_of(module: ModuleOp) -> FuncOp:
    for op in module.ops:
        if isinstance(op, FuncOp) and op.sym_name.data == "main":
            return op
    raise PassError("the module has no func.func @main")


def _layer_name(attn: Operation, index: int) -> str:
    for v in attn.operands:
        lin = v.owner
        if isinstance(lin, quant.DequantizeOp):  # quantized q/k/v: dequantize(quant.linear)
            lin = lin.operands[0].owner
        w = lin.operands[1].owner if isinstance(lin, nn.LinearOp | quant.LinearOp) else None
        if isinstance(w, nn.WeightOp):
            m = _LAYER.match(w.symbol)
            if m:
                return m.group(1)
    return f"layer {index}"


def _projection(v: SSAValue) -> SSAValue | None:
    """The output projection's float result from the attention output ``v``: one nn.linear, or
    quant.quantize → quant.linear → quant.dequantize (quantize{...}), each the single user."""
    op = _single_user(v)
    if isinstance(op, nn.LinearOp):
        return op.result
    if not isinstance(op, quant.QuantizeOp):
        return None
    lin = _single_user(op.results[0])
    deq = _single_user(lin.results[0]) if isinstance(lin, quant.LinearOp) else None
    if not isinstance(deq, quant.DequantizeOp):
        return None
    bias = _single_user(deq.results[0])  # grouped weights: the float bias is added after
    if (
        isinstance(lin, quant.LinearOp)
        and lin.int_prop("groups") > 1
        and isinstance(bias, nn.AddOp)
    ):
        other = [o for o in bias.operands if o is not deq.results[0]]
        if other and len(shape_of(other[0].type)) == 1:
            return bias.results[0]
    return deq.results[0]


def _int8_stream(mid: SSAValue) -> SSAValue | None:
    """quantize{stream=int8}'s int8 copy of ``mid``: the value's only user is a per-tensor
    quant.quantize to i8 whose only user is a quant.dequantize by the same scale."""
    q = _single_user(mid)
    if not isinstance(q, quant.QuantizeOp) or quant.int_width(q.results[0].type) != 8:
        return None
    d = _single_user(q.results[0])
    if (
        not isinstance(d, quant.DequantizeOp)
        or d.scale != q.scale
        or shape_of(d.scale.type) != (1,)
    ):
        return None
    return q.results[0]


def _single_user(v: SSAValue) -> Operation | None:
    users = {u.operation for u in v.uses}
    return next(iter(users)) if len(users) == 1 else None


def find_blocks(
    module: ModuleOp, pass_name: str, *, heads_only: bool = False, int8_attention: bool = False
) -> list[AttnBlock]:
    """The attention blocks of @main in order; a PassError if there are none or one is not a
    recognisable residual block. Token pruning also needs self-attention without a key mask;
    ``heads_only`` (head pruning) accepts a key mask and more keys than rows (a KV cache);
    ``int8_attention`` (token pruning) accepts quant.attention blocks too."""
    blocks: list[AttnBlock] = []
    kinds = (nn.AttentionOp, quant.AttentionOp) if int8_attention else (nn.AttentionOp,)
    for op in main_of(module).body.block.ops:
        if not isinstance(op, kinds):
            continue
        i = len(blocks)
        name = _layer_name(op, i)
        where = f"layer {i} ({name})"
        if isinstance(op, nn.AttentionOp) and op.mask is not None and not heads_only:
            raise PassError(
                f"{where}: {pass_name} does not support a key-padding mask (nn.attention's 4th"
                " operand) yet; build the model without an attention mask (for the KV cache of"
                " text generation use kv-prune{keep=K})"
            )
        proj = _projection(op.result)
        if proj is None:
            raise PassError(f"{where}: the attention output is not read by one output projection")
        add = _single_user(proj)
        if not isinstance(add, nn.AddOp):
            raise PassError(f"{where}: no residual add after the attention's output projection")
        mid: SSAValue = add.result
        post = _single_user(mid)
        if isinstance(post, nn.LayerNormOp):
            mid = post.result  # post-LN (BERT): prune the normalised stream
        rows = {shape_of(v.type)[0] for v in (op.query, op.key, op.value, mid)}
        if len(rows) != 1 and not heads_only:
            raise PassError(f"{where}: token pruning needs self-attention over the stream's rows")
        blocks.append(AttnBlock(i, name, op, mid, _int8_stream(mid)))
    if not blocks:
        if any(
            op.name.startswith("quant.") and op.name.endswith("attention")
            for op in main_of(module).body.block.ops
        ):
            raise PassError(
                f"{pass_name} does not take int8 attention: quantize{{attn=int8}} turned every"
                " nn.attention into quant.attention; quantize without attn=int8 before token pruning"
            )
        raise PassError(f"{pass_name} needs attention layers, and the model has no nn.attention")
    return blocks


def ops_after(block: Block, op: Operation) -> list[Operation]:
    out: list[Operation] = []
    cur = op.next_op
    while cur is not None:
        out.append(cur)
        cur = cur.next_op
    return out


def retype_after(func: FuncOp, op: Operation) -> None:
    """Re-infer the result types of every nn/tokens op after ``op`` (their operands may have fewer
    rows now) and the function's result types. Ops whose result shape is given (slice, reshape)
    must still verify, or a PassError names them."""
    for cur in ops_after(func.body.block, op):
        if isinstance(cur, ReturnOp):
            func.function_type = FunctionType.from_lists(
                list(func.function_type.inputs.data), [v.type for v in cur.operands]
            )
            continue
        if not isinstance(cur, NNOp) or not cur.operands:
            continue
        try:
            new = cur.infer([o.type for o in cur.operands], cur.props_dict())
        except ShapeError:
            try:
                if isinstance(cur, _ELEMENTWISE_GIVEN):  # element type given, shape = input's
                    cur.results[0]._type = tensor(  # noqa: SLF001
                        shape_of(cur.operands[0].type), element_of(cur.results[0].type)
                    )
                cur.check_result()
            except ShapeError as e:
                raise PassError(f"cannot carry the pruned tokens through {cur.name}: {e}") from None
            continue
        if new != cur.results[0].type:
            cur.results[0]._type = new  # noqa: SLF001 (in-place retype keeps the uses)
