"""The nn dialect: value-semantic tensor ops for transformers (ViT/DeiT, BERT, GPT-2).

Models are batch-1, as NPU inference runs them: activations are `[tokens, features]`. Weights live out of
line in a WeightStore and enter the IR through `nn.weight @name`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType, SymbolRefAttr, i32
from xdsl.ir import Attribute, Dialect
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.pattern_rewriter import RewritePattern
from xdsl.printer import Printer
from xdsl.traits import HasCanonicalizationPatternsTrait, Pure

from dialects.nn_base import (
    NNOp,
    PropValue,
    Shape,
    ShapeError,
    broadcast_shapes,
    element_of,
    int_prop,
    same_element,
    shape_of,
    tensor,
)


class NNCanonicalization(HasCanonicalizationPatternsTrait):
    """The canonicalization patterns of nn ops, collected in dialects/nn_canonicalize.py."""

    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from dialects import nn_canonicalize as c

        return (c.FoldIdentityReshape(), c.FoldTranspose(), c.FoldFullSlice(), c.FoldSingleConcat())


def _rank_at_least(op: str, what: str, shape: Shape, rank: int) -> None:
    if len(shape) < rank:
        raise ShapeError(f"{op}: {what} must have rank >= {rank}, got {list(shape)}")


def _axis(op: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} out of range for rank {rank}")
    return axis % rank


def _float_element(op: str, t: Attribute) -> None:
    if isinstance(element_of(t), IntegerType):
        raise ShapeError(f"{op}: expected a floating-point tensor, got {t}")


@irdl_op_definition
class WeightOp(NNOp):
    """A weight tensor from the WeightStore, referenced by symbol.

    %w = nn.weight @blocks.0.attn.q.weight : tensor<64x64xf32>
    """

    name = "nn.weight"
    sym = prop_def(SymbolRefAttr)
    result = result_def()
    traits = traits_def(Pure())

    @staticmethod
    def of(symbol: str, type_: Attribute) -> WeightOp:
        return WeightOp.create(properties={"sym": SymbolRefAttr(symbol)}, result_types=[type_])

    @property
    def symbol(self) -> str:
        return self.sym.root_reference.data

    def verify_(self) -> None:
        shape_of(self.result.type)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.symbol)
        if self.attributes:
            printer.print_string(" attributes ")
            printer.print_attr_dict(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> WeightOp:
        symbol = parser.parse_symbol_name()
        attrs = parser.parse_optional_attr_dict_with_keyword()
        parser.parse_punctuation(":")
        op = WeightOp.of(symbol.data, parser.parse_type())
        if attrs is not None:
            op.attributes.update(attrs.data)
        return op


@irdl_op_definition
class LinearOp(NNOp):
    """y = x · wᵀ (+ b), with w of shape [out, in] (PyTorch layout) and b of shape [out].

    %y = nn.linear %x, %w, %b : (tensor<65x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<65x128xf32>
    """

    name = "nn.linear"
    input = operand_def()
    weight = operand_def()
    bias = opt_operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (2, 3):
            raise ShapeError(f"{cls.name}: expected input, weight and optional bias")
        x, w = shape_of(operand_types[0]), shape_of(operand_types[1])
        elem = same_element(cls.name, operand_types)
        _rank_at_least(cls.name, "input", x, 1)
        if len(w) != 2:
            raise ShapeError(f"{cls.name}: weight must be [out, in], got {list(w)}")
        if x[-1] != w[1]:
            raise ShapeError(
                f"{cls.name}: input features {x[-1]} do not match weight in-features {w[1]}"
                f" (weight is [out={w[0]}, in={w[1]}])"
            )
        if len(operand_types) == 3 and shape_of(operand_types[2]) != (w[0],):
            raise ShapeError(
                f"{cls.name}: bias must be [{w[0]}], got {list(shape_of(operand_types[2]))}"
            )
        return tensor((*x[:-1], w[0]), elem)


@irdl_op_definition
class MatmulOp(NNOp):
    """Batched matrix product a · b (or a · bᵀ with transpose_b), over equal leading batch dims.

    %c = nn.matmul %a, %b {transpose_b = true} : (tensor<4x65x16xf32>, tensor<4x65x16xf32>) -> tensor<4x65x65xf32>
    """

    name = "nn.matmul"
    PROPS: ClassVar[Mapping[str, type]] = {"transpose_b": bool}
    lhs = operand_def()
    rhs = operand_def()
    transpose_b = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        a, b = shape_of(operand_types[0]), shape_of(operand_types[1])
        elem = same_element(cls.name, operand_types)
        _rank_at_least(cls.name, "lhs", a, 2)
        _rank_at_least(cls.name, "rhs", b, 2)
        if a[:-2] != b[:-2]:
            raise ShapeError(f"{cls.name}: batch dims differ: {list(a[:-2])} vs {list(b[:-2])}")
        k_b, n = (b[-1], b[-2]) if props.get("transpose_b") else (b[-2], b[-1])
        if a[-1] != k_b:
            raise ShapeError(f"{cls.name}: contraction dims differ: lhs {a[-1]} vs rhs {k_b}")
        return tensor((*a[:-1], n), elem)


class _BinaryOp(NNOp):
    lhs = operand_def()
    rhs = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        elem = same_element(cls.name, operand_types)
        a, b = shape_of(operand_types[0]), shape_of(operand_types[1])
        return tensor(broadcast_shapes(cls.name, a, b), elem)


@irdl_op_definition
class AddOp(_BinaryOp):
    """Elementwise a + b with numpy broadcasting.

    %c = nn.add %a, %b : (tensor<65x64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
    """

    name = "nn.add"


@irdl_op_definition
class SubOp(_BinaryOp):
    """Elementwise a - b with numpy broadcasting.

    %c = nn.sub %a, %b : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
    """

    name = "nn.sub"


@irdl_op_definition
class MulOp(_BinaryOp):
    """Elementwise a * b with numpy broadcasting.

    %c = nn.mul %a, %b : (tensor<65x64xf32>, tensor<1x64xf32>) -> tensor<65x64xf32>
    """

    name = "nn.mul"


@irdl_op_definition
class DivOp(_BinaryOp):
    """Elementwise a / b with numpy broadcasting.

    %c = nn.div %a, %b : (tensor<65x64xf32>, tensor<65x1xf32>) -> tensor<65x64xf32>
    """

    name = "nn.div"


@irdl_op_definition
class LayerNormOp(NNOp):
    """Layer normalisation over the last dim: (x - mean) / sqrt(var + eps) * gamma + beta.

    %y = nn.layer_norm %x, %g, %b {eps = 1.0e-06} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
    """

    name = "nn.layer_norm"
    PROPS: ClassVar[Mapping[str, type]] = {"eps": float}
    input = operand_def()
    gamma = operand_def()
    beta = operand_def()
    eps = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        same_element(cls.name, operand_types)
        x = shape_of(operand_types[0])
        _rank_at_least(cls.name, "input", x, 1)
        for what, t in (("gamma", operand_types[1]), ("beta", operand_types[2])):
            if shape_of(t) != (x[-1],):
                raise ShapeError(f"{cls.name}: {what} must be [{x[-1]}], got {list(shape_of(t))}")
        eps = props.get("eps", 0.0)
        if not isinstance(eps, float) or not eps > 0:
            raise ShapeError(f"{cls.name}: eps must be a positive float, got {eps}")
        _float_element(cls.name, operand_types[0])
        return operand_types[0]


class _UnaryOp(NNOp):
    input = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        _float_element(cls.name, operand_types[0])
        return operand_types[0]


@irdl_op_definition
class GeluOp(_UnaryOp):
    """GELU, exact (approximate = "none", with erf) or the tanh approximation (approximate = "tanh").

    %y = nn.gelu %x {approximate = "none"} : (tensor<65x128xf32>) -> tensor<65x128xf32>
    """

    name = "nn.gelu"
    PROPS: ClassVar[Mapping[str, type]] = {"approximate": str}
    approximate = prop_def(Attribute)

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if props.get("approximate") not in ("none", "tanh"):
            raise ShapeError(
                f'{cls.name}: approximate must be "none" or "tanh", got {props.get("approximate")!r}'
            )
        return super().infer(operand_types, props)


@irdl_op_definition
class TanhOp(_UnaryOp):
    """Elementwise tanh.

    %y = nn.tanh %x : (tensor<1x128xf32>) -> tensor<1x128xf32>
    """

    name = "nn.tanh"


@irdl_op_definition
class ReluOp(_UnaryOp):
    """Elementwise max(x, 0).

    %y = nn.relu %x : (tensor<65x128xf32>) -> tensor<65x128xf32>
    """

    name = "nn.relu"


@irdl_op_definition
class SoftmaxOp(NNOp):
    """Softmax along an axis.

    %y = nn.softmax %x {axis = -1} : (tensor<65x65xf32>) -> tensor<65x65xf32>
    """

    name = "nn.softmax"
    PROPS: ClassVar[Mapping[str, type]] = {"axis": int}
    input = operand_def()
    axis = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        _float_element(cls.name, operand_types[0])
        _axis(cls.name, int_prop(cls.name, props, "axis", -1), len(shape_of(operand_types[0])))
        return operand_types[0]


@irdl_op_definition
class ReshapeOp(NNOp):
    """Reshape to the result type's shape (row-major, same element count).

    %y = nn.reshape %x : (tensor<65x64xf32>) -> tensor<65x4x16xf32>
    """

    name = "nn.reshape"
    input = operand_def()
    result = result_def()
    traits = traits_def(Pure(), NNCanonicalization())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        raise ShapeError(f"{cls.name}: the result shape must be given")

    def check_result(self) -> None:
        self.check(self.input.type, self.result.type)

    @classmethod
    def check(cls, src: Attribute, dst: Attribute) -> None:
        a, b = shape_of(src), shape_of(dst)
        if math.prod(a) != math.prod(b):
            raise ShapeError(
                f"{cls.name}: cannot reshape {list(a)} ({math.prod(a)} elements) to"
                f" {list(b)} ({math.prod(b)} elements)"
            )
        same_element(cls.name, [src, dst])


@irdl_op_definition
class TransposeOp(NNOp):
    """Permute dims: result dim i is input dim perm[i].

    %y = nn.transpose %x {perm = [1, 0, 2]} : (tensor<65x4x16xf32>) -> tensor<4x65x16xf32>
    """

    name = "nn.transpose"
    PROPS: ClassVar[Mapping[str, type]] = {"perm": tuple}
    input = operand_def()
    perm = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure(), NNCanonicalization())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        x = shape_of(operand_types[0])
        perm = props.get("perm", ())
        if not isinstance(perm, tuple) or sorted(perm) != list(range(len(x))):
            raise ShapeError(f"{cls.name}: perm {list(perm)} is not a permutation of rank {len(x)}")  # type: ignore[arg-type]
        return tensor(tuple(x[p] for p in perm), element_of(operand_types[0]))


@irdl_op_definition
class ConcatOp(NNOp):
    """Concatenate along an axis.

    %y = nn.concat %cls, %patches {axis = 0} : (tensor<1x64xf32>, tensor<64x64xf32>) -> tensor<65x64xf32>
    """

    name = "nn.concat"
    PROPS: ClassVar[Mapping[str, type]] = {"axis": int}
    inputs = var_operand_def()
    axis = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure(), NNCanonicalization())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if not operand_types:
            raise ShapeError(f"{cls.name}: needs at least one input")
        elem = same_element(cls.name, operand_types)
        shapes = [shape_of(t) for t in operand_types]
        axis = _axis(cls.name, int_prop(cls.name, props, "axis"), len(shapes[0]))
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(
                d != e for i, (d, e) in enumerate(zip(s, shapes[0], strict=True)) if i != axis
            ):
                raise ShapeError(
                    f"{cls.name}: shapes {list(shapes[0])} and {list(s)} differ outside axis {axis}"
                )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tensor(out, elem)


@irdl_op_definition
class SliceOp(NNOp):
    """A static slice: `offsets` per dim, sizes from the result type, unit strides.

    %y = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<1x64xf32>
    """

    name = "nn.slice"
    PROPS: ClassVar[Mapping[str, type]] = {"offsets": tuple}
    input = operand_def()
    offsets = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure(), NNCanonicalization())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        raise ShapeError(f"{cls.name}: the result shape must be given")

    def check_result(self) -> None:
        self.check(self.input.type, self.result.type, self.ints_prop("offsets"))

    @classmethod
    def check(cls, src: Attribute, dst: Attribute, offsets: tuple[int, ...]) -> None:
        a, b = shape_of(src), shape_of(dst)
        same_element(cls.name, [src, dst])
        if not (len(a) == len(b) == len(offsets)):
            raise ShapeError(
                f"{cls.name}: input rank {len(a)}, result rank {len(b)} and"
                f" {len(offsets)} offsets must agree"
            )
        for dim, (size, off, n) in enumerate(zip(a, offsets, b, strict=True)):
            if off < 0:
                raise ShapeError(f"{cls.name}: dim {dim}: offset {off} is negative")
            if off + n > size:
                raise ShapeError(
                    f"{cls.name}: dim {dim}: offset {off} + size {n} exceeds input size {size}"
                )


@irdl_op_definition
class GatherOp(NNOp):
    """Embedding lookup: rows of `table` picked by integer `indices` (result: indices.shape + row shape).

    %y = nn.gather %table, %ids : (tensor<30522x128xf32>, tensor<16xi32>) -> tensor<16x128xf32>
    """

    name = "nn.gather"
    table = operand_def()
    indices = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        table, idx = shape_of(operand_types[0]), shape_of(operand_types[1])
        _rank_at_least(cls.name, "table", table, 1)
        if not isinstance(element_of(operand_types[1]), IntegerType):
            raise ShapeError(
                f"{cls.name}: indices must be an integer tensor, got {operand_types[1]}"
            )
        return tensor((*idx, *table[1:]), element_of(operand_types[0]))


@irdl_op_definition
class ScatterOp(NNOp):
    """Rows written into a table at integer row indices, the mirror of `nn.gather`: the result is
    `table` with row `indices[i]` replaced by `rows[i]` (in order: a repeated index keeps the
    later row). A decode step appends its key and value rows to the KV cache this way, at the
    run-time slot `indices` (docs/generation.md: the cache resident in DRAM).

    %kk = nn.scatter %k_cache0, %slot, %k : (tensor<33x128xf32>, tensor<1xi32>, tensor<1x128xf32>) -> tensor<33x128xf32>
    """

    name = "nn.scatter"
    table = operand_def()
    indices = operand_def()
    rows = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        table, idx, rows = (shape_of(t) for t in operand_types)
        if len(table) != 2:
            raise ShapeError(f"{cls.name}: table must be rank 2, got {list(table)}")
        if not isinstance(element_of(operand_types[1]), IntegerType) or len(idx) != 1:
            raise ShapeError(
                f"{cls.name}: indices must be a rank-1 integer tensor, got {operand_types[1]}"
            )
        if list(rows) != [idx[0], table[1]]:
            raise ShapeError(
                f"{cls.name}: rows must be [{idx[0]}, {table[1]}] (one table row per index), "
                f"got {list(rows)}"
            )
        if element_of(operand_types[2]) != element_of(operand_types[0]):
            raise ShapeError(
                f"{cls.name}: rows {operand_types[2]} and table {operand_types[0]} differ in type"
            )
        return operand_types[0]


@irdl_op_definition
class PatchEmbedOp(NNOp):
    """ViT patch embedding: split a [C, H, W] image into p×p patches (row-major over the grid, each
    flattened in (c, ph, pw) order) and project them: [(H/p)·(W/p), C·p·p] · wᵀ + b.

        %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<1x16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
    """

    name = "nn.patch_embed"
    PROPS: ClassVar[Mapping[str, type]] = {"patch": int}
    input = operand_def()
    weight = operand_def()
    bias = operand_def()
    patch = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        elem = same_element(cls.name, operand_types)
        img, w, b = (shape_of(t) for t in operand_types)
        p = int_prop(cls.name, props, "patch")
        if len(img) != 3:
            raise ShapeError(f"{cls.name}: image must be [C, H, W], got {list(img)}")
        c, h, wd = img
        if p <= 0:
            raise ShapeError(f"{cls.name}: patch must be positive, got {p}")
        if h % p or wd % p:
            raise ShapeError(f"{cls.name}: patch {p} must divide image size {h}x{wd}")
        if len(w) != 2 or w[1] != c * p * p:
            raise ShapeError(f"{cls.name}: weight must be [dim, {c * p * p}], got {list(w)}")
        if b != (w[0],):
            raise ShapeError(f"{cls.name}: bias must be [{w[0]}], got {list(b)}")
        return tensor(((h // p) * (wd // p), w[0]), elem)


# The properties of nn.attention, shared by every op that has its shape rules (quant, tokens).
ATTN_PROPS: Mapping[str, type] = {
    "heads": int,
    "qk_dim": int,
    "v_dim": int,
    "scale": float,
    "causal": bool,
}


@irdl_op_definition
class AttentionOp(NNOp):
    """Multi-head scaled dot-product attention on packed heads.

    q: [Sq, heads·qk_dim], k: [Sk, heads·qk_dim], v: [Sk, heads·v_dim] → [Sq, heads·v_dim]. Head h uses
    column block h of each operand; probabilities are softmax(scale · q_h k_hᵀ), masked to j ≤ i when causal.

    An optional fourth operand `mask: tensor<Skxi32>` is a key-padding mask (HF BERT's `attention_mask`):
    key j is kept where mask[j] > 0 (1) and masked where mask[j] <= 0 (0). A masked key gets probability
    exactly 0 in every query row. A row whose keys are all masked (or causally hidden) attends uniformly
    over the keys causality allows (as a large negative additive bias does). It applies to every head.

        %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
        %b = nn.attention %q, %k, %v, %mask {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<65xi32>) -> tensor<65x64xf32>
    """

    name = "nn.attention"
    PROPS: ClassVar[Mapping[str, type]] = ATTN_PROPS
    query = operand_def()
    key = operand_def()
    value = operand_def()
    mask = opt_operand_def()
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    v_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (3, 4):
            raise ShapeError(
                f"{cls.name}: takes q, k, v and an optional mask, got {len(operand_types)} operands"
            )
        elem = same_element(cls.name, operand_types[:3])
        q, k, v = (shape_of(t) for t in operand_types[:3])
        heads, dqk, dv = (int_prop(cls.name, props, n) for n in ("heads", "qk_dim", "v_dim"))
        if heads <= 0 or dqk <= 0 or dv <= 0:
            raise ShapeError(f"{cls.name}: heads, qk_dim and v_dim must be positive")
        for what, s, width in (
            ("query", q, heads * dqk),
            ("key", k, heads * dqk),
            ("value", v, heads * dv),
        ):
            if len(s) != 2 or s[1] != width:
                raise ShapeError(
                    f"{cls.name}: {what} must be [tokens, {width}] (heads={heads}), got {list(s)}"
                )
        if k[0] != v[0]:
            raise ShapeError(f"{cls.name}: key has {k[0]} tokens but value has {v[0]}")
        if len(operand_types) == 4:
            m, m_elem = shape_of(operand_types[3]), element_of(operand_types[3])
            if m != (k[0],) or m_elem != i32:
                raise ShapeError(
                    f"{cls.name}: mask must be tensor<{k[0]}xi32> (one 0/1 entry per key),"
                    f" got {operand_types[3]}"
                )
        if props.get("causal") and q[0] > k[0]:
            raise ShapeError(
                f"{cls.name}: causal attention needs at least as many keys as queries"
                f" ({q[0]} queries, {k[0]} keys)"
            )
        return tensor((q[0], heads * dv), elem)


def infer_as_attention(
    op: str, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]
) -> Attribute:
    """nn.attention's shape rules (`AttentionOp.infer`) for another op: errors name ``op``."""
    try:
        return AttentionOp.infer(operand_types, props)
    except ShapeError as e:
        raise ShapeError(str(e).replace(AttentionOp.name, op)) from None


NN_OPS: tuple[type[NNOp], ...] = (
    WeightOp,
    LinearOp,
    MatmulOp,
    AddOp,
    SubOp,
    MulOp,
    DivOp,
    LayerNormOp,
    GeluOp,
    TanhOp,
    ReluOp,
    SoftmaxOp,
    ReshapeOp,
    TransposeOp,
    ConcatOp,
    SliceOp,
    GatherOp,
    ScatterOp,
    PatchEmbedOp,
    AttentionOp,
)

NN = Dialect("nn", list(NN_OPS), [])
