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
from dataclasses import dataclass
from typing import Any

from xdsl.ir import Operation, SSAValue

from backend.config import Config
from backend.cost import (
    InstrCost,
    cost,
    dma_bytes,
    dma_transfer_cycles,
    matmul_cycles,
    vector_cycles,
    vector_passes,
    with_best_dataflow,
)
from backend.isa import DType, make
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
    nn.ScatterOp: "move",
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


@dataclass(frozen=True)
class LinearCost:
    """Modeled cost of one linear layer `y[m, n] = x[m, k] · wᵀ + b` at a weight precision."""

    cycles: int
    energy_pj: float
    weight_bytes: int  # DRAM bytes of the weight and its scales, as the LOADs move them
    dram_bytes: int  # weight, scales and bias

    def metric(self, name: str) -> float:
        """The figure a budget is stated in: cycles, energy (pJ) or weight_bytes."""
        table = {"cycles": self.cycles, "energy": self.energy_pj, "weight_bytes": self.weight_bytes}
        return float(table[name])


LINEAR_BITS = (4, 8, 16)
_MODE_OF_BITS = {16: "fp16", 8: "int8", 4: "int4w"}
_DTYPE_OF_BITS = {16: DType.FP16, 8: DType.INT8, 4: DType.INT4}


def _tile(n: int) -> dict[str, object]:
    return {"dst_buf": "acc", "dst_off": 0, "dst_stride": n, "src_buf": "acc", "src_off": 0}


def linear_cost(
    m: int, n: int, k: int, bits: int, config: Config, groups: int = 1, bias: bool = True
) -> LinearCost:
    """Cost of one linear at weight `bits` (16: the fp16 path; 8 / 4: int8 activations × int8 /
    packed int4 weights), priced by `backend.cost.cost` on the instructions the lowering issues
    for it (backend/lower/gemm.py, gemm_quant.py), each taken as one whole-layer tile:

    - LOADs: the weight [k, n] (+ fp32 scales [groups, n] for int) and the bias [1, n];
    - MATMUL fp16 / int8 / int4w; `groups` MATMULs of K/groups each for group scales along K;
    - fp16 epilogue: VEC add fp32 bias, MOVE fp32 → fp16;
    - int: MOVE fp16 → int8 of A (the quantize), then ungrouped: VEC add int32 bias, MOVE
      int32 → fp32, VEC mul by the scale row, MOVE fp32 → fp16; grouped: per group MOVE + VEC mul
      (+ VEC add of the partial sum), then the fp32 bias add and the MOVE to fp16.

    cycles = max(MATMUL cycles, weight DMA transfer) + vector cycles, as `op_cycles` overlaps the
    weight stream with the array; energy sums every instruction's energy."""
    if bits not in LINEAR_BITS:
        raise ValueError(f"weight bits must be one of {LINEAR_BITS}, got {bits}")
    if groups < 1 or k % groups or (bits == 16 and groups != 1):
        raise ValueError(f"groups={groups} must divide K={k} (and be 1 for fp16)")
    f16, f32, i32, i8 = DType.FP16, DType.FP32, DType.INT32, DType.INT8

    def load(dt: DType, rows: int, cols: int) -> InstrCost:
        args = {"dst_buf": "wgt", "dst_off": 0, "dst_stride": 0, "src_addr": 0}
        return cost(
            make("LOAD", dtype=dt, src_stride=dt.nbytes(cols), rows=rows, cols=cols, **args),
            config,
        )

    def move(src: DType, dst: DType, cols: int) -> InstrCost:
        args: dict[str, Any] = {"src_stride": cols, "rows": m, "cols": cols}  # make's **kwargs
        return cost(make("MOVE", src_dtype=src, dst_dtype=dst, **_tile(cols), **args), config)

    def vec(op: str, dt: DType) -> InstrCost:
        args = {"a_buf": "acc", "a_off": 0, "a_stride": n, "b_buf": "vec", "b_off": 0}
        args |= {"b_stride": n, "dst_buf": "acc", "dst_off": 0, "dst_stride": n}
        return cost(make("VEC", op=op, bcast="row", dtype=dt, rows=m, cols=n, **args), config)

    w_loads = [load(_DTYPE_OF_BITS[bits], k, n)] + ([load(f32, groups, n)] if bits != 16 else [])
    b_loads = [load(i32 if bits != 16 and groups == 1 else f16, 1, n)] if bias else []
    kg = k // groups
    mm = cost(
        with_best_dataflow(make(
            "MATMUL", mode=_MODE_OF_BITS[bits], acc=0, tb=0, a_buf="act", a_off=0, a_stride=kg,
            b_buf="wgt", b_off=0, b_stride=n, c_buf="acc", c_off=0, c_stride=n, m=m, n=n, k=kg,
        ), config),
        config,
    )  # fmt: skip
    if bits == 16:
        vector = [vec("add", f32)] * bias + [move(f32, f16, n)]
    elif groups == 1:
        vector = [move(f16, i8, k), *[vec("add", i32)] * bias, move(i32, f32, n)]
        vector += [vec("mul", f32), move(f32, f16, n)]
    else:
        per_group = [move(i32, f32, n), vec("mul", f32)]
        vector = [move(f16, i8, k), *per_group, *(per_group + [vec("add", f32)]) * (groups - 1)]
        vector += [vec("add", f32)] * bias + [move(f32, f16, n)]
    cycles = max(groups * mm.cycles, w_loads[0].dram_transfer) + sum(c.cycles for c in vector)
    instrs = [*w_loads, *b_loads, *[mm] * groups, *vector]
    return LinearCost(
        cycles=cycles,
        energy_pj=float(sum(c.energy_total for c in instrs)),
        weight_bytes=sum(c.dram_read for c in w_loads),
        dram_bytes=sum(c.dram_read for c in (*w_loads, *b_loads)),
    )
