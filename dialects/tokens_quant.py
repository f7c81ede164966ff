"""Token importance of an int8 attention: `tokens.quant_importance` (token pruning after
`quantize{attn=int8}`).

Kept apart from dialects/tokens.py (which registers it) to keep files small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType, f32
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

from dialects.importance import check_kind, check_prior
from dialects.nn import ATTN_PROPS, infer_as_attention
from dialects.nn_base import NNOp, PropValue, ShapeError, element_of, int_prop, shape_of, tensor

QUANT_IMPORTANCE_KINDS = ("received", "cls")


@irdl_op_definition
class QuantImportanceOp(NNOp):
    """Per-token importance from the fp32 probabilities of `quant.attention %q, %k, %v, %sq, %sk,
    %sv` (dialects/quant_attention.py): with c = (f32(sq) ⊗ f32(sk)) ⊗ f32(scale),
    P_h = softmax(f32(f64(q_h · k_hᵀ) · f64(c))) (the same fp32 P the attention quantizes to int8);
    kind "received" (SpAtten): s[j] = Σ_h Σ_i P[h,i,j]; kind "cls": s[j] = mean_h P[h,0,j]; plus the
    optional `prior` [Sk] (scores accumulated over earlier layers). Lowered only fused into the
    quant.attention with the same q, k and scales (IMPACC on its softmax tiles).

        %s = tokens.quant_importance %qq, %kq, %sq, %sk {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "cls"} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<1xf32>, tensor<1xf32>) -> tensor<65xf32>
    """

    name = "tokens.quant_importance"
    PROPS: ClassVar[Mapping[str, type]] = {**ATTN_PROPS, "kind": str}
    query = operand_def()
    key = operand_def()
    q_scale = operand_def()
    k_scale = operand_def()
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
        if len(operand_types) not in (4, 5):
            raise ShapeError(
                f"{cls.name}: expected query, key, q_scale, k_scale and an optional prior,"
                f" got {len(operand_types)} operands"
            )
        check_kind(cls.name, props, QUANT_IMPORTANCE_KINDS)
        q, k, sq, sk = operand_types[:4]
        for what, t in (("query", q), ("key", k)):
            e = element_of(t)
            if not (isinstance(e, IntegerType) and e.width.data == 8):
                raise ShapeError(f"{cls.name}: {what} must be an i8 tensor, got {t}")
        for what, t in (("q_scale", sq), ("k_scale", sk)):
            if isinstance(element_of(t), IntegerType) or shape_of(t) != (1,):
                raise ShapeError(f"{cls.name}: {what} must be a [1] float tensor, got {t}")
        ks = shape_of(k)
        if len(ks) != 2:
            raise ShapeError(f"{cls.name}: key must be [keys, features], got {list(ks)}")
        width_v = int_prop(cls.name, props, "heads") * int_prop(cls.name, props, "v_dim")
        attn = {n: props[n] for n in ATTN_PROPS if n in props}
        fe = element_of(sq)
        infer_as_attention(
            cls.name,
            [tensor(shape_of(q), fe), tensor(ks, fe), tensor((ks[0], width_v), fe)],
            attn,
        )
        if len(operand_types) == 5:
            check_prior(cls.name, operand_types[4], ks[0])
        return tensor((ks[0],), f32)
