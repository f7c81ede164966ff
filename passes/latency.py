"""Modeled cycles (and MACs) of nn ops on a hardware config, from the backend's cost model only.

The estimate is per op, summed over the module, for the fp16 path the lowering uses:

- `nn.linear` / `nn.patch_embed` / `nn.matmul`: max(MATMUL cycles, weight DMA transfer), since the
  tiled GEMM overlaps weight loads with compute; then the bias add on the vector unit;
- `nn.attention`: per head Q·Kᵀ (k = qk_dim), softmax, P·V (n = v_dim);
- elementwise ops, layer norm, GELU, softmax: vector passes per element;
- concat / slice / transpose / gather: one move pass; reshape and weights: free.

Every formula is a call into `backend.cost` (matmul_cycles, dma_*, vector_*). Shapes and attention
properties can be overridden (`shape`, `attrs`) so a pruning pass can price a hypothetical removal
without rewriting the IR.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from xdsl.ir import Operation, SSAValue

from backend.config import Config
from backend.cost import dma_bytes, dma_transfer_cycles, matmul_cycles, vector_cycles, vector_passes
from dialects import nn
from dialects.nn_base import shape_of

ShapeFn = Callable[[SSAValue], tuple[int, ...]]
AttrsFn = Callable[[Operation], Mapping[str, int]]

MODE = "fp16"  # the lowering's MATMUL mode
_FP16 = 2

_VECTOR: dict[type[Operation], str] = {
    nn.AddOp: "add",
    nn.SubOp: "sub",
    nn.MulOp: "mul",
    nn.DivOp: "div",
    nn.LayerNormOp: "layernorm",
    nn.TanhOp: "tanh",
    nn.ReluOp: "relu",
    nn.SoftmaxOp: "softmax",
    nn.ConcatOp: "move",
    nn.SliceOp: "move",
    nn.TransposeOp: "move",
    nn.GatherOp: "move",
}


def _default_shape(value: SSAValue) -> tuple[int, ...]:
    return shape_of(value.type)


def attention_attrs(op: Operation) -> dict[str, int]:
    """heads, qk_dim, v_dim of an nn.attention as written in the IR."""
    assert isinstance(op, nn.AttentionOp)
    return {k: op.int_prop(k) for k in ("heads", "qk_dim", "v_dim")}


def _gemm(m: int, n: int, k: int, config: Config, weight: bool) -> int:
    cycles = matmul_cycles(m, n, k, MODE, config)
    if weight:  # B = the weight [k, n] in fp16, streamed from DRAM while the array works
        dram = dma_bytes(k, _FP16 * n, _FP16 * n, config)
        cycles = max(cycles, dma_transfer_cycles(dram, config))
    return cycles


def op_cycles(
    op: Operation,
    config: Config,
    shape: ShapeFn = _default_shape,
    attrs: AttrsFn = attention_attrs,
) -> int:
    """Modeled cycles of one nn op (0 for weights, reshapes and non-nn ops)."""
    if isinstance(op, nn.LinearOp):
        x, w = shape(op.input), shape(op.weight)
        m = math.prod(x[:-1])
        bias = vector_cycles(m * w[0], vector_passes("add"), config) if op.bias else 0
        return _gemm(m, w[0], w[1], config, True) + bias
    if isinstance(op, nn.PatchEmbedOp):
        out, w = shape(op.result), shape(op.weight)
        return _gemm(out[0], w[0], w[1], config, True) + vector_cycles(
            math.prod(out), vector_passes("add"), config
        )
    if isinstance(op, nn.MatmulOp):
        a, out = shape(op.lhs), shape(op.result)
        batch = math.prod(out[:-2])
        return batch * _gemm(out[-2], out[-1], a[-1], config, False)
    if isinstance(op, nn.AttentionOp):
        sq, sk = shape(op.query)[0], shape(op.key)[0]
        p = attrs(op)
        per_head = (
            matmul_cycles(sq, sk, p["qk_dim"], MODE, config)
            + vector_cycles(sq * sk, vector_passes("softmax"), config)
            + matmul_cycles(sq, p["v_dim"], sk, MODE, config)
        )
        return p["heads"] * per_head
    if isinstance(op, nn.GeluOp):
        name = "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"
        return vector_cycles(math.prod(shape(op.result)), vector_passes(name), config)
    kind = _VECTOR.get(type(op))
    if kind is not None:
        return vector_cycles(math.prod(shape(op.results[0])), vector_passes(kind), config)
    return 0


def op_macs(
    op: Operation, shape: ShapeFn = _default_shape, attrs: AttrsFn = attention_attrs
) -> int:
    """Multiply-accumulates of one op under (possibly overridden) shapes; equals
    passes.metrics.op_macs on the IR's own shapes (tested)."""
    if isinstance(op, nn.LinearOp):
        x, w = shape(op.input), shape(op.weight)
        return math.prod(x[:-1]) * w[0] * w[1]
    if isinstance(op, nn.MatmulOp):
        return math.prod(shape(op.result)) * shape(op.lhs)[-1]
    if isinstance(op, nn.PatchEmbedOp):
        w = shape(op.weight)
        return shape(op.result)[0] * w[0] * w[1]
    if isinstance(op, nn.AttentionOp):
        p = attrs(op)
        return p["heads"] * shape(op.query)[0] * shape(op.key)[0] * (p["qk_dim"] + p["v_dim"])
    return 0


def module_cycles(
    module: Operation,
    config: Config,
    shape: ShapeFn = _default_shape,
    attrs: AttrsFn = attention_attrs,
) -> int:
    """Sum of `op_cycles` over every op of the module."""
    return sum(op_cycles(op, config, shape, attrs) for op in module.walk())


def module_macs(
    module: Operation, shape: ShapeFn = _default_shape, attrs: AttrsFn = attention_attrs
) -> int:
    return sum(op_macs(op, shape, attrs) for op in module.walk())


def per_op_cycles(module: Operation, config: Config) -> list[tuple[Operation, int]]:
    """(op, cycles) for every op with a nonzero estimate, in IR order."""
    return [(op, c) for op in module.walk() if (c := op_cycles(op, config))]
