"""The quant dialect: integer tensors and the ops at fp ↔ int boundaries (docs/quantization.md).

Quantized tensors carry their storage type in the tensor type: `i8`, `i4` (stored one value per
byte, range [-8, 7]) and `i32` accumulators. Quantization is symmetric (zero point 0). Scales and
integer multipliers are weights: they live in the WeightStore beside the weights and enter the IR
through `nn.weight @sym`, like any weight. Rounding is defined once (docs/quantization.md):

- quantize:   q = clamp(rne(f32(x) ⊗ (1 ⊘ f32(s))), qmin, qmax)   (⊗ ⊘: IEEE fp32, rne: half to even)
- dequantize: y = f32(q) ⊗ f32(s[c])   (grouped: Σ_g in order g = 0, 1, … with fp32 ⊕)
- requantize: q = clamp(((acc · M[c]) + 2^(shift−1)) >> shift)   (int64, arithmetic shift)
- linear:     acc = x · wᵀ + b in int32 (two's complement wrap; exact for any realistic K)

The NPU implements the same four formulas (MOVE/VEC, MOVE+VEC, REQUANT, MATMUL int8/int4w), so the
interpreter is bit-exact with the reference executor on every integer path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Attribute, Dialect
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure

from dialects.nn_base import (
    NNOp,
    PropValue,
    ShapeError,
    element_of,
    int_prop,
    shape_of,
    tensor,
)
from dialects.quant_attention import AttentionOp, ProgressiveAttentionOp
from dialects.quant_kv import ProgressiveKvAttentionOp, ProgressiveKvImportanceOp

INT_BITS = (4, 8)  # storage widths of quantized values
ACC_BITS = 32


def int_range(bits: int) -> tuple[int, int]:
    """The two's complement range of a signed `bits`-bit integer."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def int_width(t: Attribute) -> int | None:
    """The width of an integer tensor's elements, or None for a float tensor."""
    e = element_of(t)
    return e.width.data if isinstance(e, IntegerType) else None


def _want_int(op: str, what: str, t: Attribute, widths: Sequence[int]) -> int:
    w = int_width(t)
    if w is None or w not in widths:
        names = " or ".join(f"i{x}" for x in widths)
        raise ShapeError(f"{op}: {what} must be an {names} tensor, got {t}")
    return w


def _want_float(op: str, what: str, t: Attribute) -> None:
    if int_width(t) is not None:
        raise ShapeError(f"{op}: {what} must be a floating-point tensor, got {t}")


def _per_channel(op: str, what: str, t: Attribute, channels: int) -> None:
    """A per-tensor ([1]) or per-channel ([channels]) vector."""
    s = shape_of(t)
    if s not in ((1,), (channels,)):
        raise ShapeError(f"{op}: {what} must be [1] or [{channels}], got {list(s)}")


@irdl_op_definition
class QuantizeOp(NNOp):
    """Float → i8/i4 with one per-tensor scale: clamp(rne(x · (1/s))).

    %q = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xi8>
    """

    name = "quant.quantize"
    input = operand_def()
    scale = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        raise ShapeError(f"{cls.name}: the result type (i8 or i4) must be given")

    def check_result(self) -> None:
        x, s = self.input.type, self.scale.type
        _want_float(self.name, "input", x)
        _want_float(self.name, "scale", s)
        if shape_of(s) != (1,):
            raise ShapeError(
                f"{self.name}: scale must be [1] (per tensor), got {list(shape_of(s))}"
            )
        _want_int(self.name, "result", self.result.type, INT_BITS)
        if shape_of(self.result.type) != shape_of(x):
            raise ShapeError(
                f"{self.name}: result shape {list(shape_of(self.result.type))} differs from the"
                f" input's {list(shape_of(x))}"
            )


@irdl_op_definition
class DequantizeOp(NNOp):
    """Integer → float: y = f32(q) · s[c], s per tensor [1] or per last-dim channel [N]. A grouped
    accumulator [G, …, N] (from `quant.linear {groups = G}`) with scales [G, N] is summed over g.

    %y = quant.dequantize %acc, %s : (tensor<65x128xi32>, tensor<128xf32>) -> tensor<65x128xf32>
    """

    name = "quant.dequantize"
    input = operand_def()
    scale = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        q, s = operand_types
        _want_int(cls.name, "input", q, (*INT_BITS, ACC_BITS))
        _want_float(cls.name, "scale", s)
        qs, ss = shape_of(q), shape_of(s)
        if not qs:
            raise ShapeError(f"{cls.name}: input must have rank >= 1")
        if len(ss) == 2:  # grouped
            if len(qs) < 3 or qs[0] != ss[0] or ss[1] != qs[-1]:
                raise ShapeError(
                    f"{cls.name}: grouped scales {list(ss)} need an input [{ss[0]}, …, {ss[1]}],"
                    f" got {list(qs)}"
                )
            return tensor(qs[1:], element_of(s))
        _per_channel(cls.name, "scale", s, qs[-1])
        return tensor(qs, element_of(s))


@irdl_op_definition
class LinearOp(NNOp):
    """Integer linear: acc = x · wᵀ (+ b) in int32, x i8 [.., K], w i8/i4 [N, K], b i32 [N].
    With groups = G > 1 the reduction is split into G equal slices of K, one accumulator each
    (result [G, .., N], no bias), for weights with per-group scales.

    %acc = quant.linear %xq, %wq, %bq {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi8>, tensor<128xi32>) -> tensor<65x128xi32>
    """

    name = "quant.linear"
    PROPS: ClassVar[Mapping[str, type]] = {"groups": int}
    input = operand_def()
    weight = operand_def()
    bias = opt_operand_def()
    groups = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (2, 3):
            raise ShapeError(f"{cls.name}: expected input, weight and optional bias")
        _want_int(cls.name, "input", operand_types[0], (8,))
        _want_int(cls.name, "weight", operand_types[1], INT_BITS)
        x, w = shape_of(operand_types[0]), shape_of(operand_types[1])
        if not x:
            raise ShapeError(f"{cls.name}: input must have rank >= 1")
        if len(w) != 2 or x[-1] != w[1]:
            raise ShapeError(
                f"{cls.name}: weight must be [out, {x[-1]}] for input {list(x)}, got {list(w)}"
            )
        g = int_prop(cls.name, props, "groups", 1)
        if g < 1 or w[1] % g:
            raise ShapeError(f"{cls.name}: groups {g} must be >= 1 and divide K = {w[1]}")
        if len(operand_types) == 3:
            if g != 1:
                raise ShapeError(
                    f"{cls.name}: a bias needs groups = 1 (add it after quant.dequantize)"
                )
            _want_int(cls.name, "bias", operand_types[2], (ACC_BITS,))
            if shape_of(operand_types[2]) != (w[0],):
                raise ShapeError(
                    f"{cls.name}: bias must be [{w[0]}], got {list(shape_of(operand_types[2]))}"
                )
        out = (*x[:-1], w[0])
        return tensor(out if g == 1 else (g, *out), IntegerType(ACC_BITS))


@irdl_op_definition
class RequantizeOp(NNOp):
    """int32 → i8/i4 with integer multipliers M (per tensor [1] or per channel [N], i32) and a
    right shift: q = clamp(((acc · M) + 2^(shift−1)) >> shift).

    %q = quant.requantize %acc, %m {shift = 38} : (tensor<65x128xi32>, tensor<128xi32>) -> tensor<65x128xi8>
    """

    name = "quant.requantize"
    PROPS: ClassVar[Mapping[str, type]] = {"shift": int}
    input = operand_def()
    multiplier = operand_def()
    shift = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        raise ShapeError(f"{cls.name}: the result type (i8 or i4) must be given")

    def check_result(self) -> None:
        acc, m = self.input.type, self.multiplier.type
        _want_int(self.name, "input", acc, (ACC_BITS,))
        _want_int(self.name, "multiplier", m, (ACC_BITS,))
        _per_channel(self.name, "multiplier", m, shape_of(acc)[-1] if shape_of(acc) else 1)
        s = self.int_prop("shift")
        if not 0 <= s <= 63:
            raise ShapeError(f"{self.name}: shift must be in [0, 63], got {s}")
        _want_int(self.name, "result", self.result.type, INT_BITS)
        if shape_of(self.result.type) != shape_of(acc):
            raise ShapeError(
                f"{self.name}: result shape {list(shape_of(self.result.type))} differs from the"
                f" input's {list(shape_of(acc))}"
            )


QUANT_OPS: tuple[type[NNOp], ...] = (
    QuantizeOp,
    DequantizeOp,
    LinearOp,
    RequantizeOp,
    ProgressiveAttentionOp,
    AttentionOp,
    ProgressiveKvAttentionOp,
    ProgressiveKvImportanceOp,
)

QUANT = Dialect("quant", list(QUANT_OPS), [])
