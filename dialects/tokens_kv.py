"""KV-cache importance in the tokens dialect: `tokens.masked_importance` (SpAtten across decode steps).

Kept apart from dialects/tokens.py (which registers it) to keep files small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType, f32, i32
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


def _vec(op: str, what: str, t: Attribute, n: int, elem: Attribute | None = None) -> None:
    s = shape_of(t)
    ok = len(s) == 1 and s[0] == n
    if elem is None:
        ok = ok and isinstance(element_of(t), IntegerType)
    else:
        ok = ok and element_of(t) == elem
    if not ok:
        kind = "an integer" if elem is None else f"a {elem}"
        raise ShapeError(f"{op}: {what} must be {kind} vector [{n}], got {t}")


KV_EVICT_BIG = 1e30  # tokens.kv_evict: added to the score of a slot that may not be evicted


@irdl_op_definition
class KvAccumulateOp(NNOp):
    """kv-prune's scores carried across decode steps, per cache slot: c'[j] = carried[j] + step[j],
    except the slot the step's new token was written to, which starts with its own score:
    c'[slot] = step[slot] (slots are reused, so the slot's previous score is the evicted token's).

        %c = tokens.kv_accumulate %kv_scores, %step, %slot : (tensor<33xf32>, tensor<33xf32>, tensor<1xi32>) -> tensor<33xf32>
    """

    name = "tokens.kv_accumulate"
    PROPS: ClassVar[Mapping[str, type]] = {}
    carried = operand_def()
    step = operand_def()
    slot = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) != 3:
            raise ShapeError(
                f"{cls.name}: expected carried, step and slot, got {len(operand_types)}"
            )
        c, s, slot = operand_types
        n = shape_of(c)[0] if len(shape_of(c)) == 1 else -1
        _vec(cls.name, "carried", c, n, f32)
        _vec(cls.name, "step", s, n, f32)
        _vec(cls.name, "slot", slot, 1)
        return tensor((n,), f32)


@irdl_op_definition
class KvEvictOp(NNOp):
    """kv-prune's keep-k over the cache slots (SpAtten's top-k, one token in, one out): the slot
    whose token leaves the cache when the K + 1 occupied slots are pruned to K. Eligible: the
    slots with mask[j] ≠ 0 whose token is not among the newest `recent` (positions[j] ≤
    pos − recent); the result is the eligible slot of lowest score, ties to the lower slot index
    (TOPK's rule on the negated scores, backend/topk.py). The host writes the next token there.
    Exactly: argmin_j s[j] + KV_EVICT_BIG·[j not eligible] in fp32, ties to the lower slot.

        %free = tokens.kv_evict %c, %mask, %positions, %pos {recent = 4} : (tensor<33xf32>, tensor<33xi32>, tensor<33xi32>, tensor<1xi32>) -> tensor<1xi32>
    """

    name = "tokens.kv_evict"
    PROPS: ClassVar[Mapping[str, type]] = {"recent": int}
    scores = operand_def()
    mask = operand_def()
    positions = operand_def()
    pos = operand_def()
    recent = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) != 4:
            raise ShapeError(
                f"{cls.name}: expected scores, mask, positions and pos, got {len(operand_types)}"
            )
        s, m, p, pos = operand_types
        n = shape_of(s)[0] if len(shape_of(s)) == 1 else -1
        _vec(cls.name, "scores", s, n, f32)
        _vec(cls.name, "mask", m, n)
        _vec(cls.name, "positions", p, n)
        _vec(cls.name, "pos", pos, 1)
        if int_prop(cls.name, props, "recent") < 1:
            raise ShapeError(f"{cls.name}: recent must be ≥ 1, got {props.get('recent')}")
        return tensor((1,), i32)
