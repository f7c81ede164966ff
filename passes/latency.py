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
    weight_bytes: int  # DRAM bytes of the weight (+ its scales) as the LOADs move them
    dram_bytes: int  # weight, scales and bias

    def metric(self, name: str) -> float:
        """The figure a budget is stated in: cycles, energy (pJ) or weight_bytes."""
        return {"cycles": self.cycles, "energy": self.energy_pj, "weight_bytes": self.weight_bytes}[
            name
        ]


LINEAR_BITS = (4, 8, 16)
_MODE_OF_BITS = {16: "fp16", 8: "int8", 4: "int4w"}
_DTYPE_OF_BITS = {16: DType.FP16, 8: DType.INT8, 4: DType.INT4}


def linear_cost(m: int, n: int, k: int, bits: int, config: Config, groups: int = 1) -> LinearCost:
    """Cost of one linear at weight `bits` (16: fp16 path; 8 / 4: int8 activations × int8 / int4w
    weights), priced by `backend.cost.cost` on the instructions it needs, as one tile each:

    - LOAD of the weight [k, n] (and, for int, its fp32 scales [groups or 1, n]; the bias as fp16
      [1, n], or int32 when ungrouped int);
    - MATMUL (fp16 / int8 / int4w), `groups` of them with K/groups each when the int weight has group
      scales along K;
    - epilogue: fp16 bias add (VEC); int ungrouped: one REQUANT of the int32 accumulator (bias in
      int32, fused); int grouped: per group a VEC mul + add in fp32 (scale and accumulate), then the
      bias add.

    cycles = max(MATMUL cycles, weight DMA transfer) + epilogue, as `op_cycles` prices an fp16
    nn.linear (equal to it for bits=16); energy sums every instruction's energy."""
    if bits not in LINEAR_BITS:
        raise ValueError(f"weight bits must be one of {LINEAR_BITS}, got {bits}")
    if groups < 1 or k % groups or (bits == 16 and groups != 1):
        raise ValueError(f"groups={groups} must divide K={k} (and be 1 for fp16)")
    mode, wdt = _MODE_OF_BITS[bits], _DTYPE_OF_BITS[bits]
    sram = {"dst_buf": "wgt", "dst_off": 0, "dst_stride": 0, "src_addr": 0}

    def load(dt: DType, rows: int, cols: int) -> InstrCost:
        stride = dt.nbytes(cols)
        return cost(make("LOAD", dtype=dt, src_stride=stride, rows=rows, cols=cols, **sram), config)

    w_load = load(wdt, k, n)
    loads = [w_load]
    if bits != 16:
        loads.append(load(DType.FP32, groups, n))
    bias_dt = DType.INT32 if bits != 16 and groups == 1 else DType.FP16
    bias_load = load(bias_dt, 1, n)
    kg = k // groups
    mm = cost(
        make(
            "MATMUL",
            mode=mode,
            acc=0,
            tb=0,
            a_buf="act",
            a_off=0,
            a_stride=kg,
            b_buf="wgt",
            b_off=0,
            b_stride=n,
            c_buf="acc",
            c_off=0,
            c_stride=n,
            m=m,
            n=n,
            k=kg,
        ),
        config,
    )
    vec_dt = DType.FP16 if bits == 16 else DType.FP32
    buf = {"dst_buf": "acc", "dst_off": 0, "dst_stride": n}
    a = {"a_buf": "acc", "a_off": 0, "a_stride": n, "b_buf": "vec", "b_off": 0, "b_stride": n}

    def vec(op: str) -> InstrCost:
        return cost(
            make("VEC", op=op, bcast="row", dtype=vec_dt, rows=m, cols=n, **buf, **a), config
        )

    if bits == 16:
        epilogue = [vec("add")]
    elif groups == 1:
        rq = make(
            "REQUANT", out_dtype="int8", per_col=1, dst_buf="act", dst_off=0, dst_stride=n,
            src_buf="acc", src_off=0, src_stride=n, rows=m, cols=n, shift=0, mult_buf="vec",
        )  # fmt: skip
        epilogue = [cost(rq, config)]
    else:
        epilogue = [vec("mul"), vec("add")] * groups + [vec("add")]
    transfer = sum(c.dram_transfer for c in loads[:1])
    cycles = max(groups * mm.cycles, transfer) + sum(c.cycles for c in epilogue)
    instrs = [*loads, bias_load, *([mm] * groups), *epilogue]
    dram = sum(c.dram_read for c in (*loads, bias_load))
    return LinearCost(
        cycles=cycles,
        energy_pj=float(sum(c.energy_total for c in instrs)),
        weight_bytes=sum(c.dram_read for c in loads),
        dram_bytes=dram,
    )
