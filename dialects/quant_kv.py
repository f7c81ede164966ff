"""Progressive quantization of a decode step's KV cache (SpAtten across decode steps): the quant
dialect's `quant.progressive_kv_attention` and `quant.progressive_kv_importance`
(docs/generation.md; registered by dialects/quant.py).

The cached keys live as two 4-bit planes, `k_msb` and `k_lsb` (int4 values; the int8 key is
msb · 16 + (lsb mod 16)), head-major [heads, S + N, qk_dim]: slots 0..S-1 of head h hold the S
cached keys' head-h features, the last N slots are where the step writes its N new keys' planes
(their input values are ignored), so each head's plane is one contiguous DRAM run. The step's
new keys `k` [N, heads·qk_dim] arrive as int8. With K = [cached keys; k] ([S + N, heads·qk_dim]) and
the key mask `mask` [Sk] (> 0 = keep), the op is quant.progressive_attention (dialects/
quant_attention.py) of q, K, v, sq, sk where the scores of a masked key are −inf before the
softmax (probability exactly 0), as nn.attention's key mask defines: per head and block of rows,
P from the MSB plane, recomputed with the full K when the block's smallest row-max probability is
below `threshold`. Arithmetic: passes/progressive_math.py; reference: compiler/
reference_progressive.py; lowering: backend/lower/rules_progressive_kv.py, where only the planes
fetched are read from DRAM and the new rows' planes are appended in place.

With the optional ninth operand `slot` (int32 [N], the resident decode forms) the planes hold
all S + N slots of the cache view, and the new keys' planes go to rows `slot[i]` of every head
instead of the last N: K is the planes' keys with row slot[i] replaced by k[i] (the key order
follows the slots). Lowered with SCATTERs into the planes' resident regions (written in place;
the planes of the next step are those regions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType, f32
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import Pure

from dialects.importance import check_prior
from dialects.nn import ATTN_PROPS
from dialects.nn_base import NNOp, PropValue, ShapeError, element_of, shape_of, tensor
from dialects.quant_attention import ProgressiveAttentionOp

KV_PROPS: Mapping[str, type] = {**ATTN_PROPS, "threshold": float, "block": int}


def _width(t: Attribute) -> int | None:
    e = element_of(t)
    return e.width.data if isinstance(e, IntegerType) else None


def infer_kv(name: str, ops: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
    """Check q, k, v, sq, sk, mask, k_msb, k_lsb; the result type of the attention."""
    q, k, v, sq, sk, mask, msb, lsb = ops[:8]
    heads, d = props.get("heads"), props.get("qk_dim")
    for what, t in (("k_msb", msb), ("k_lsb", lsb)):
        if _width(t) != 4 or len(shape_of(t)) != 3:
            raise ShapeError(f"{name}: {what} must be an i4 tensor [heads, slots, qk_dim], got {t}")
    ks = shape_of(k)
    if len(ks) != 2 or shape_of(msb) != shape_of(lsb) or shape_of(msb)[0] != heads:
        raise ShapeError(
            f"{name}: k_msb {list(shape_of(msb))} and k_lsb {list(shape_of(lsb))} must both be"
            f" [heads={heads}, slots, qk_dim], the new keys [rows, features], got {list(ks)}"
        )
    keys = shape_of(msb)[1]
    if (
        not isinstance(d, int)
        or not isinstance(heads, int)
        or shape_of(msb)[2] != d
        or ks[1] != heads * d
        or keys < ks[0]
    ):
        raise ShapeError(
            f"{name}: planes {list(shape_of(msb))} do not fit {ks[0]} new keys of {ks[1]} features"
            f" (heads={heads}, qk_dim={d}; the last {ks[0]} slots of each head are the new keys')"
        )
    if _width(mask) is None or shape_of(mask) != (keys,):
        raise ShapeError(
            f"{name}: mask must be an integer vector [{keys}] (cached + new keys), got {mask}"
        )
    if props.get("causal"):
        raise ShapeError(f"{name}: causal must be false (the key mask says which keys a step sees)")
    if len(ops) == 9 and (_width(ops[8]) != 32 or shape_of(ops[8]) != (ks[0],)):
        raise ShapeError(
            f"{name}: slot must be an i32 vector [{ks[0]}] (one per new key), got {ops[8]}"
        )
    full_k = tensor((keys, shape_of(k)[1]), IntegerType(8))
    return ProgressiveAttentionOp.infer([q, full_k, v, sq, sk], props)


@irdl_op_definition
class ProgressiveKvAttentionOp(NNOp):
    """Progressive-K attention of a decode step over a plane-stored KV cache under a key mask (see
    the module docstring).

    %o = quant.progressive_kv_attention %qq, %kq, %vv, %sq, %sk, %mask, %kmsb, %klsb {heads = 4, qk_dim = 32, v_dim = 32, scale = 0.1767767, causal = false, threshold = 0.1, block = 1} : (tensor<1x128xi8>, tensor<1x128xi8>, tensor<33x128xf32>, tensor<1xf32>, tensor<1xf32>, tensor<33xi32>, tensor<4x33x32xi4>, tensor<4x33x32xi4>) -> tensor<1x128xf32>

    Resident planes, the new key's planes written at row %slot of each head:

    %o = quant.progressive_kv_attention %qq, %kq, %vv, %sq, %sk, %mask, %kmsb, %klsb, %slot {heads = 4, qk_dim = 32, v_dim = 32, scale = 0.1767767, causal = false, threshold = 0.1, block = 1} : (tensor<1x128xi8>, tensor<1x128xi8>, tensor<33x128xf32>, tensor<1xf32>, tensor<1xf32>, tensor<33xi32>, tensor<4x33x32xi4>, tensor<4x33x32xi4>, tensor<1xi32>) -> tensor<1x128xf32>
    """

    name = "quant.progressive_kv_attention"
    PROPS: ClassVar[Mapping[str, type]] = KV_PROPS
    query = operand_def()
    key = operand_def()
    value = operand_def()
    q_scale = operand_def()
    k_scale = operand_def()
    mask = operand_def()
    k_msb = operand_def()
    k_lsb = operand_def()
    slot = opt_operand_def()
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    v_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    threshold = prop_def(Attribute)
    block = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (8, 9):
            raise ShapeError(
                f"{cls.name}: expected q, k, v, q_scale, k_scale, mask, k_msb, k_lsb and an"
                f" optional slot operand, got {len(operand_types)}"
            )
        return infer_kv(cls.name, operand_types, props)


@irdl_op_definition
class ProgressiveKvImportanceOp(NNOp):
    """SpAtten's received attention s[j] = Σ_h Σ_i P[h, i, j] + prior[j] of the
    quant.progressive_kv_attention with the same operands (P after any LSB refetch; a masked key
    receives 0). Lowered only inside that attention (IMPACC on its probability tiles). After the
    seven operands: the optional prior (f32 [keys]), then the attention's optional slot (i32).

    %s = quant.progressive_kv_importance %qq, %kq, %sq, %sk, %mask, %kmsb, %klsb {heads = 4, qk_dim = 32, v_dim = 32, scale = 0.1767767, causal = false, threshold = 0.1, block = 1} : (tensor<1x128xi8>, tensor<1x128xi8>, tensor<1xf32>, tensor<1xf32>, tensor<33xi32>, tensor<4x33x32xi4>, tensor<4x33x32xi4>) -> tensor<33xf32>
    %s1 = quant.progressive_kv_importance %qq, %kq, %sq, %sk, %mask, %kmsb, %klsb, %s, %slot {heads = 4, qk_dim = 32, v_dim = 32, scale = 0.1767767, causal = false, threshold = 0.1, block = 1} : (tensor<1x128xi8>, tensor<1x128xi8>, tensor<1xf32>, tensor<1xf32>, tensor<33xi32>, tensor<4x33x32xi4>, tensor<4x33x32xi4>, tensor<33xf32>, tensor<1xi32>) -> tensor<33xf32>
    """

    name = "quant.progressive_kv_importance"
    PROPS: ClassVar[Mapping[str, type]] = KV_PROPS
    query = operand_def()
    key = operand_def()
    q_scale = operand_def()
    k_scale = operand_def()
    mask = operand_def()
    k_msb = operand_def()
    k_lsb = operand_def()
    extra = var_operand_def()  # [prior f32] [slot i32]
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    v_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    threshold = prop_def(Attribute)
    block = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @property
    def prior(self) -> SSAValue | None:
        """The accumulated prior (the f32 extra operand), if any."""
        return next((v for v in self.extra if element_of(v.type) == f32), None)

    @property
    def slot(self) -> SSAValue | None:
        """The attention's slot operand (the i32 extra operand; resident planes), if any."""
        return next((v for v in self.extra if element_of(v.type) != f32), None)

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        rest = list(operand_types[7:])
        kinds = ["prior" if element_of(t) == f32 else "slot" for t in rest]
        if len(operand_types) < 7 or kinds not in ([], ["prior"], ["slot"], ["prior", "slot"]):
            raise ShapeError(
                f"{cls.name}: expected q, k, q_scale, k_scale, mask, k_msb, k_lsb, an optional"
                f" prior and an optional slot, got {len(operand_types)} operands"
            )
        q, k, sq, sk, mask, msb, lsb = operand_types[:7]
        keys = shape_of(msb)[1] if len(shape_of(msb)) == 3 else 0
        heads = props.get("heads")
        v_dim = props.get("v_dim")
        if not isinstance(heads, int) or not isinstance(v_dim, int):
            raise ShapeError(f"{cls.name}: heads and v_dim must be integers")
        v = tensor((keys, heads * v_dim), f32)
        slot = [t for t, kind in zip(rest, kinds, strict=True) if kind == "slot"]
        infer_kv(cls.name, [q, k, v, sq, sk, mask, msb, lsb, *slot], props)
        if kinds[:1] == ["prior"]:
            check_prior(cls.name, rest[0], keys)
        return tensor((keys,), f32)
