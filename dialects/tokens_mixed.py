"""FACT's mixed-precision FFN in the tokens dialect: which token rows run at INT4-MSB, and the
integer linear that runs them so (`tokens.row_precision`, `tokens.mixed_linear`).

Kept apart from dialects/tokens.py (which registers them) to keep files small. INT4-MSB is defined
once, by the ISA's MATMUL precision mask (backend/interpreter/numerics.py `int4_msb`): an int8
weight with its low nibble dropped, (w >> 4) << 4 (arithmetic shift: rounds toward −∞).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Attribute
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure

from dialects import quant
from dialects.nn_base import NNOp, PropValue, ShapeError, element_of, int_prop, shape_of, tensor


def protect_indices(op: str, props: Mapping[str, PropValue], n: int) -> tuple[int, ...]:
    """The protected indices normalised to [0, n) (negative counts from the end: -1 is the last)."""
    raw = props.get("protect", ())
    if not isinstance(raw, tuple):
        raise ShapeError(f"{op}: property 'protect' must be a list of integers, got {raw!r}")
    out: list[int] = []
    for p in raw:
        if not -n <= p < n:
            raise ShapeError(
                f"{op}: protected token {p} does not exist (there are {n} tokens; use 0..{n - 1}"
                f" or -1..-{n})"
            )
        if p % n in out:
            raise ShapeError(f"{op}: token {p % n} is protected twice")
        out.append(p % n)
    return tuple(out)


@irdl_op_definition
class RowPrecisionOp(NNOp):
    """FACT's per-token precision from the predicted attention mask [heads, n, n]: token j's
    importance is c[j] = Σ_h Σ_i mask[h, i, j] (how many (head, query) pairs the prediction selects
    it for); the `int8_rows` most important tokens (ties to the lower index, backend/topk.py;
    protected tokens always) get 0, the others 1 (= run at INT4-MSB). Result: i8 [n].

        %low = tokens.row_precision %m {int8_rows = 33, protect = [0]} : (tensor<4x65x65xf32>) -> tensor<65xi8>
    """

    name = "tokens.row_precision"
    PROPS: ClassVar[Mapping[str, type]] = {"int8_rows": int, "protect": tuple}
    mask = operand_def()
    int8_rows = prop_def(Attribute)
    protect = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        m = shape_of(operand_types[0])
        if len(m) != 3 or m[1] != m[2]:
            raise ShapeError(
                f"{cls.name}: mask must be [heads, n, n] (tokens.predict), got {list(m)}"
            )
        n = m[2]
        k = int_prop(cls.name, props, "int8_rows")
        prot = protect_indices(cls.name, props, n)
        if not max(len(prot), 1) <= k <= n:
            raise ShapeError(
                f"{cls.name}: int8_rows must be in [{max(len(prot), 1)}, {n}] ({len(prot)}"
                f" protected of {n} tokens), got {k}"
            )
        return tensor((n,), IntegerType(8))


@irdl_op_definition
class MixedLinearOp(NNOp):
    """quant.linear with a per-row precision: acc[r] = x[r]·w'ᵀ + b in int32, w' = w where low[r] = 0
    and INT4-MSB(w) = (w >> 4) << 4 where low[r] ≠ 0 (FACT's mixed-precision FFN; the ISA's MATMUL
    precision mask). x i8 [rows, K], w i8 [N, K], low i8 [rows] (tokens.row_precision), b i32 [N].

        %acc = tokens.mixed_linear %xq, %wq, %low, %bq {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi8>, tensor<65xi8>, tensor<128xi32>) -> tensor<65x128xi32>
    """

    name = "tokens.mixed_linear"
    PROPS: ClassVar[Mapping[str, type]] = {"groups": int}
    input = operand_def()
    weight = operand_def()
    low = operand_def()
    bias = opt_operand_def()
    groups = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (3, 4):
            raise ShapeError(f"{cls.name}: expected input, weight, row mask and optional bias")
        x, w, low = operand_types[:3]
        if int_prop(cls.name, props, "groups", 1) != 1:
            raise ShapeError(f"{cls.name}: groups must be 1")
        if quant.int_width(w) != 8:
            raise ShapeError(f"{cls.name}: weight must be i8 (INT4-MSB drops its low nibble)")
        xs, ls = shape_of(x), shape_of(low)
        if len(xs) != 2:
            raise ShapeError(f"{cls.name}: input must be [rows, K], got {list(xs)}")
        if ls != (xs[0],) or not isinstance(element_of(low), IntegerType):
            raise ShapeError(f"{cls.name}: row mask must be an integer [{xs[0]}], got {low}")
        try:
            return quant.LinearOp.infer([x, w, *operand_types[3:]], {"groups": 1})
        except ShapeError as e:
            raise ShapeError(str(e).replace(quant.LinearOp.name, cls.name)) from None
