"""KV-cache importance in the tokens dialect: `tokens.masked_importance` (SpAtten across decode steps).

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

from dialects.importance import check_prior
from dialects.nn import ATTN_PROPS, infer_as_attention
from dialects.nn_base import NNOp, PropValue, ShapeError, element_of, int_prop, shape_of, tensor


@irdl_op_definition
class MaskedImportanceOp(NNOp):
    """SpAtten's received attention under nn.attention's key mask: s[j] = Σ_h Σ_i P[h,i,j] with
    P the probabilities of `nn.attention %q, %k, %v, %mask` (a masked key receives exactly 0),
    plus the optional `prior` [Sk] (scores accumulated over earlier layers).

        %s = tokens.masked_importance %q, %k, %mask {heads = 4, qk_dim = 32, v_dim = 32, scale = 0.1767767, causal = false} : (tensor<1x128xf32>, tensor<33x128xf32>, tensor<33xi32>) -> tensor<33xf32>
    """

    name = "tokens.masked_importance"
    PROPS: ClassVar[Mapping[str, type]] = dict(ATTN_PROPS)
    query = operand_def()
    key = operand_def()
    mask = operand_def()
    prior = opt_operand_def()
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
                f"{cls.name}: expected query, key, mask and an optional prior,"
                f" got {len(operand_types)} operands"
            )
        q, k, m = operand_types[:3]
        ks = shape_of(k)
        if len(ks) != 2:
            raise ShapeError(f"{cls.name}: key must be [keys, features], got {list(ks)}")
        width_v = int_prop(cls.name, props, "heads") * int_prop(cls.name, props, "v_dim")
        infer_as_attention(cls.name, [q, k, tensor((ks[0], width_v), element_of(q)), m], props)
        if not isinstance(element_of(m), IntegerType):
            raise ShapeError(f"{cls.name}: mask must be an integer vector [{ks[0]}], got {m}")
        if len(operand_types) == 4:
            check_prior(cls.name, operand_types[3], ks[0])
        return tensor((ks[0],), f32)
