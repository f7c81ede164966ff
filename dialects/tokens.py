"""The tokens dialect: token and head pruning as explicit IR (SpAtten, TPS, EViT, FACT).

Shapes stay static: every keep count is a property, and which tokens or heads survive is decided at
run time from the scores. Kept rows are picked with `nn.gather` on the indices `tokens.select`
returns. All ops share nn's syntax, verifier and `infer` (dialects/nn_base.py); reference semantics
are in compiler/reference_tokens.py and docs/tokens.md states the formulas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType, f32, i32
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

from dialects.importance import check_kind, check_prior
from dialects.nn import ATTN_PROPS, infer_as_attention
from dialects.nn_base import (
    NNOp,
    PropValue,
    Shape,
    ShapeError,
    element_of,
    int_prop,
    shape_of,
    tensor,
)
from dialects.tokens_fact import KeyLinearOp
from dialects.tokens_kv import KvAccumulateOp, KvEvictOp, MaskedImportanceOp
from dialects.tokens_mixed import MixedLinearOp, RowPrecisionOp
from dialects.tokens_mixed import protect_indices as _protect
from dialects.tokens_quant import QuantImportanceOp

IMPORTANCE_KINDS = ("received", "cls")


def _float(op: str, what: str, t: Attribute) -> Attribute:
    elem = element_of(t)
    if isinstance(elem, IntegerType):
        raise ShapeError(f"{op}: {what} must be a floating-point tensor, got {t}")
    return elem


def _int_vector(op: str, what: str, t: Attribute) -> int:
    s = shape_of(t)
    if len(s) != 1 or not isinstance(element_of(t), IntegerType):
        raise ShapeError(f"{op}: {what} must be an integer vector [k], got {t}")
    return s[0]


def _rows(op: str, what: str, t: Attribute) -> Shape:
    s = shape_of(t)
    if len(s) != 2:
        raise ShapeError(f"{op}: {what} must be [tokens, features], got {list(s)}")
    _float(op, what, t)
    return s


def _attention_checks(
    op: str, q: Attribute, k: Attribute, props: Mapping[str, PropValue]
) -> tuple[int, int]:
    """Check q/k against the attention properties; returns (Sq, Sk)."""
    width_v = int_prop(op, props, "heads") * int_prop(op, props, "v_dim")
    ks = shape_of(k)
    fake_v = tensor((ks[0] if len(ks) == 2 else 0, width_v), element_of(q))
    infer_as_attention(op, [q, k, fake_v], props)
    return shape_of(q)[0], ks[0]


@irdl_op_definition
class ImportanceOp(NNOp):
    """Per-token importance from an attention's probabilities P[h,i,j] = softmax(scale·q_h k_hᵀ).

    kind "received" (SpAtten): s[j] = Σ_h Σ_i P[h,i,j]; kind "cls" (EViT/eTPS): s[j] = mean_h P[h,0,j].
    An optional third operand `prior` [Sk] is added (SpAtten's scores accumulated over layers).
    It reads the same q and k as the attention it scores.

        %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
    """

    name = "tokens.importance"
    PROPS: ClassVar[Mapping[str, type]] = {**ATTN_PROPS, "kind": str}
    query = operand_def()
    key = operand_def()
    prior = opt_operand_def()
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    v_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    kind = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (2, 3):
            raise ShapeError(
                f"{cls.name}: expected query, key and an optional prior,"
                f" got {len(operand_types)} operands"
            )
        check_kind(cls.name, props, IMPORTANCE_KINDS)
        _, sk = _attention_checks(cls.name, operand_types[0], operand_types[1], props)
        if len(operand_types) == 3:
            check_prior(cls.name, operand_types[2], sk)
        return tensor((sk,), f32)


@irdl_op_definition
class HeadImportanceOp(NNOp):
    """Per-head output magnitude (SpAtten): s[h] = Σ_i Σ_c |O[i, h·d + c]| over head h's column block.

    %s = tokens.head_importance %o {heads = 4} : (tensor<65x64xf32>) -> tensor<4xf32>
    """

    name = "tokens.head_importance"
    PROPS: ClassVar[Mapping[str, type]] = {"heads": int}
    input = operand_def()
    heads = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        _, width = _rows(cls.name, "input", operand_types[0])
        h = int_prop(cls.name, props, "heads")
        if h <= 0 or width % h:
            raise ShapeError(f"{cls.name}: heads={h} must be positive and divide the width {width}")
        return tensor((h,), f32)


@irdl_op_definition
class SelectOp(NNOp):
    """The k highest-scoring positions, in ascending index order; protected positions are always kept.

    Ties go to the lower index (stable sort of −score, then the k indices sorted), the rule the ISA's
    TOPK shares (backend/topk.py). Negative protect entries count from the end (-1: the last token).

        %idx = tokens.select %s {k = 45, protect = [0]} : (tensor<65xf32>) -> tensor<45xi32>
    """

    name = "tokens.select"
    PROPS: ClassVar[Mapping[str, type]] = {"k": int, "protect": tuple}
    scores = operand_def()
    k = prop_def(Attribute)
    protect = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        s = shape_of(operand_types[0])
        if len(s) != 1:
            raise ShapeError(f"{cls.name}: scores must be a vector [n], got {list(s)}")
        _float(cls.name, "scores", operand_types[0])
        n = s[0]
        k = int_prop(cls.name, props, "k")
        if not 0 < k <= n:
            raise ShapeError(f"{cls.name}: k must be in [1, {n}] (the number of scores), got {k}")
        protected = _protect(cls.name, props, n)
        if len(protected) > k:
            raise ShapeError(f"{cls.name}: {len(protected)} protected tokens do not fit in k={k}")
        return tensor((k,), i32)


@irdl_op_definition
class SqueezeOp(NNOp):
    """TPS squeeze: each pruned row i (not in idx) joins its host h(i) = argmax cos(x_i, x_j) over the
    kept, unprotected rows j; a host becomes the softmax-weighted mean of itself (logit 1) and its
    matched rows (logit cos(x_i, x_j)). Protected rows are copied unchanged.

        %y = tokens.squeeze %x, %idx {protect = [0]} : (tensor<65x64xf32>, tensor<45xi32>) -> tensor<45x64xf32>
    """

    name = "tokens.squeeze"
    PROPS: ClassVar[Mapping[str, type]] = {"protect": tuple}
    input = operand_def()
    indices = operand_def()
    protect = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        n, d = _rows(cls.name, "input", operand_types[0])
        k = _int_vector(cls.name, "indices", operand_types[1])
        if not 0 < k <= n:
            raise ShapeError(f"{cls.name}: {k} indices for {n} rows (expected 1..{n})")
        protected = _protect(cls.name, props, n)
        if k < n and len(protected) >= k:
            raise ShapeError(
                f"{cls.name}: all {k} kept rows are protected, so pruned rows have no host"
            )
        return tensor((k, d), element_of(operand_types[0]))


@irdl_op_definition
class FuseOp(NNOp):
    """EViT fusion: the kept rows, then one extra row Σ_i a_i x_i / Σ_i a_i over the pruned rows i
    (not in idx), weighted by their CLS attention a.

        %y = tokens.fuse %x, %idx, %a : (tensor<65x64xf32>, tensor<44xi32>, tensor<65xf32>) -> tensor<45x64xf32>
    """

    name = "tokens.fuse"
    input = operand_def()
    indices = operand_def()
    attention = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) != 3:
            raise ShapeError(f"{cls.name}: expected input, indices and CLS attention")
        n, d = _rows(cls.name, "input", operand_types[0])
        k = _int_vector(cls.name, "indices", operand_types[1])
        if not 0 < k < n:
            raise ShapeError(
                f"{cls.name}: {k} kept rows of {n} leave nothing to fuse (expected 1..{n - 1})"
            )
        a = shape_of(operand_types[2])
        if a != (n,):
            raise ShapeError(
                f"{cls.name}: CLS attention must be [{n}] (one per row), got {list(a)}"
            )
        return tensor((k + 1, d), element_of(operand_types[0]))


@irdl_op_definition
class PredictOp(NNOp):
    """FACT eager prediction of the attention pattern, on int8 operands so the NPU computes it
    exactly (PREDICT = leading-one products, exact integer sums).

    x, Wq, Wk are int8 (power-of-two scales chosen by eager-predict). LO(v) = sign(v)·2^⌊log2|v|⌋.
    Q̃ = LO(x)·LO(Wq)ᵀ (integers), Q₈ = clamp(rne(Q̃·2^-q_shift), −128, 127), K₈ likewise;
    per head S_h = f32(LO(Q₈_h)·LO(K₈_h)ᵀ) ⊗ f32(scale·unit) (fp32; `unit` = the product of the
    quantization scales, so S is in the float attention's units; causal: j > i is −inf).
    Row-wise top-`topk` (backend/topk.py: ties to the lower index) gives the mask; a row whose
    top-1 beats its top-2 by more than `margin` (fp32 max − max of the rest) keeps only its top-1;
    `margin` < 0 turns that one-hot rule off. Result: 1.0 where attention is computed, else 0.0.

        %m = tokens.predict %xq, %wq, %wk {heads = 4, qk_dim = 16, scale = 0.25, causal = false, topk = 16, margin = 3.0, q_shift = 6, k_shift = 6, unit = 0.0625} : (tensor<65x64xi8>, tensor<64x64xi8>, tensor<64x64xi8>) -> tensor<4x65x65xf32>
    """

    name = "tokens.predict"
    PROPS: ClassVar[Mapping[str, type]] = {
        "heads": int,
        "qk_dim": int,
        "scale": float,
        "causal": bool,
        "topk": int,
        "margin": float,
        "q_shift": int,
        "k_shift": int,
        "unit": float,
    }
    input = operand_def()
    wq = operand_def()
    wk = operand_def()
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    topk = prop_def(Attribute)
    margin = prop_def(Attribute)
    q_shift = prop_def(Attribute)
    k_shift = prop_def(Attribute)
    unit = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        for what, t in zip(("input", "wq", "wk"), operand_types, strict=True):
            elem = element_of(t)
            if not (isinstance(elem, IntegerType) and elem.width.data == 8):
                raise ShapeError(
                    f"{cls.name}: {what} must be an i8 tensor (int8 operands), got {t}"
                )
        s = shape_of(operand_types[0])
        if len(s) != 2:
            raise ShapeError(f"{cls.name}: input must be [tokens, features], got {list(s)}")
        n, d = s
        heads, dqk = int_prop(cls.name, props, "heads"), int_prop(cls.name, props, "qk_dim")
        if heads <= 0 or dqk <= 0:
            raise ShapeError(f"{cls.name}: heads and qk_dim must be positive")
        for what, t in (("wq", operand_types[1]), ("wk", operand_types[2])):
            if shape_of(t) != (heads * dqk, d):
                raise ShapeError(
                    f"{cls.name}: {what} must be [{heads * dqk}, {d}] ([heads·qk_dim, features]),"
                    f" got {list(shape_of(t))}"
                )
        topk = int_prop(cls.name, props, "topk")
        if not 0 < topk <= n:
            raise ShapeError(f"{cls.name}: topk must be in [1, {n}] (the tokens), got {topk}")
        if not isinstance(props.get("margin"), float):
            raise ShapeError(f"{cls.name}: margin must be a float, got {props.get('margin')!r}")
        for sh in ("q_shift", "k_shift"):
            if not 0 <= int_prop(cls.name, props, sh) <= 24:
                raise ShapeError(f"{cls.name}: {sh} must be in [0, 24]")
        unit = props.get("unit")
        if not isinstance(unit, float) or not unit > 0:
            raise ShapeError(f"{cls.name}: unit must be a float > 0, got {unit!r}")
        return tensor((heads, n, n), f32)


@irdl_op_definition
class MaskedAttentionOp(NNOp):
    """nn.attention restricted to a predicted pattern: softmax over the entries where mask[h,i,j] != 0.

    %a = tokens.masked_attention %q, %k, %v, %m {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<4x65x65xf32>) -> tensor<65x64xf32>
    """

    name = "tokens.masked_attention"
    PROPS: ClassVar[Mapping[str, type]] = ATTN_PROPS
    query = operand_def()
    key = operand_def()
    value = operand_def()
    mask = operand_def()
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    v_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) != 4:
            raise ShapeError(f"{cls.name}: expected query, key, value and mask")
        out = infer_as_attention(cls.name, operand_types[:3], props)
        want = (int_prop(cls.name, props, "heads"), *shape_of(operand_types[0])[:1])
        want = (*want, shape_of(operand_types[1])[0])
        if shape_of(operand_types[3]) != want:
            raise ShapeError(
                f"{cls.name}: mask must be {list(want)} ([heads, queries, keys]),"
                f" got {list(shape_of(operand_types[3]))}"
            )
        return out


@irdl_op_definition
class HeadAttentionOp(NNOp):
    """nn.attention computing only the heads listed in `heads_kept`; the other heads' columns are 0
    (SpAtten head pruning: their instructions are skipped at run time). An optional fifth operand is
    nn.attention's key mask (tensor<Skxi32>, same meaning).

        %a = tokens.head_attention %q, %k, %v, %hidx {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<2xi32>) -> tensor<65x64xf32>
    """

    name = "tokens.head_attention"
    PROPS: ClassVar[Mapping[str, type]] = ATTN_PROPS
    query = operand_def()
    key = operand_def()
    value = operand_def()
    heads_kept = operand_def()
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
        if len(operand_types) not in (4, 5):
            raise ShapeError(
                f"{cls.name}: expected query, key, value, kept-head indices and an optional mask"
            )
        out = infer_as_attention(cls.name, [*operand_types[:3], *operand_types[4:]], props)
        kept = _int_vector(cls.name, "heads_kept", operand_types[3])
        heads = int_prop(cls.name, props, "heads")
        if not 0 < kept <= heads:
            raise ShapeError(f"{cls.name}: {kept} kept heads of {heads} (expected 1..{heads})")
        return out


TOKEN_OPS: tuple[type[NNOp], ...] = (
    ImportanceOp,
    MaskedImportanceOp,
    KvAccumulateOp,
    KvEvictOp,
    QuantImportanceOp,
    HeadImportanceOp,
    SelectOp,
    SqueezeOp,
    FuseOp,
    PredictOp,
    MaskedAttentionOp,
    HeadAttentionOp,
    KeyLinearOp,
    RowPrecisionOp,
    MixedLinearOp,
)

Tokens = Dialect("tokens", list(TOKEN_OPS), [])
