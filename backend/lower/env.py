"""Values during lowering: an nn SSA value is a DRAM tensor or a (not yet placed) weight."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.ir import SSAValue

from backend.errors import BackendError
from backend.isa import DType
from backend.lower.context import LowerCtx
from backend.lower.gemm import LazyWeight
from backend.lower.values import DTensor


@dataclass(frozen=True)
class WeightRef:
    """An `nn.weight`: placed in the data section in the layout its consumer asks for."""

    sym: str
    array: np.ndarray
    sparsity: str | None = None  # "2:4": placed compressed (backend/lower/sparse.py)


Value = DTensor | WeightRef


class Env:
    """SSA value → lowered value."""

    def __init__(self, ctx: LowerCtx) -> None:
        self.ctx = ctx
        self.vals: dict[SSAValue, Value] = {}

    def __setitem__(self, v: SSAValue, x: Value) -> None:
        self.vals[v] = x

    def raw(self, v: SSAValue) -> Value:
        return self.vals[v]

    def tensor(self, v: SSAValue) -> DTensor:
        """The value as a DRAM tensor (weights in their plain row-major layout)."""
        x = self.vals[v]
        if isinstance(x, DTensor):
            return x
        arr = np.asarray(x.array)
        if arr.dtype.kind in "iu":
            return self.ctx.add_data((x.sym, "i32"), arr.astype(np.int32), DType.INT32)
        return self.ctx.add_data((x.sym, "fp16"), arr.astype(np.float16), DType.FP16)

    def weight(self, v: SSAValue, what: str) -> WeightRef:
        """The value as a weight (for rules that need a special layout)."""
        x = self.vals[v]
        if not isinstance(x, WeightRef):
            raise BackendError(f"{what}: expected an nn.weight operand (a constant)")
        return x

    def is_weight(self, v: SSAValue) -> bool:
        return isinstance(self.vals[v], WeightRef)


def weight_t(ctx: LowerCtx, w: WeightRef) -> DTensor:
    """A linear weight [out, in] laid out pre-transposed as [in, out] fp16 (MATMUL's B[K,N]);
    a 2:4 weight compressed (an `Sp24Tensor`, which `gemm` runs as MATMUL sp24h)."""
    if w.sparsity == "2:4":
        from backend.lower.sparse import sp24_weight

        return sp24_weight(ctx, w.sym, w.array.T)
    return ctx.add_data(
        (w.sym, "T16"), np.ascontiguousarray(w.array.T).astype(np.float16), DType.FP16
    )


def linear_weight(ctx: LowerCtx, w: WeightRef) -> DTensor | LazyWeight:
    """A linear weight [out, in] as a GEMM B operand: placed by the GEMM in the layout its plan
    picks (`LazyWeight`: [in, out] plain, [out, in] swapped); 2:4 weights as `weight_t`."""
    if w.sparsity == "2:4":
        return weight_t(ctx, w)
    arr = np.asarray(w.array)
    return LazyWeight(
        (arr.shape[1], arr.shape[0]),
        lambda: weight_t(ctx, w),
        lambda: ctx.add_data((w.sym, "fp16"), arr.astype(np.float16), DType.FP16),
        lambda: (w.sym, "fp16") in ctx.data_cache,
    )


def bias_row(ctx: LowerCtx, w: WeightRef) -> DTensor:
    """A bias [N] as one fp32 row [1, N]."""
    return ctx.add_data((w.sym, "row32"), w.array.reshape(1, -1).astype(np.float32), DType.FP32)
