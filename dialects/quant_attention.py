"""Attention ops of the quant dialect (docs/quantization.md): quant.attention (int8 Q·Kᵀ and P·V)
and quant.progressive_attention (SpAtten-style progressive quantization of K).

quant.attention (semantics defined here once; `compiler/reference_qattention.py` implements it,
`backend/lower/rules_qattention.py` lowers it bit-exactly). q i8 [Sq, H·d], k i8 [Sk, H·d], v i8
[Sk, H·dv], per-tensor fp32 scales sq, sk, sv ([1]). With ⊗ ⊘ IEEE fp32 and f32(·) one rounding:

    c   = (f32(sq) ⊗ f32(sk)) ⊗ f32(scale),   cv = f32(sv) ⊘ 127
    S   = q_h · k_hᵀ                                 int32, exact
    x   = f32(f64(S) · f64(c)), −inf where j > i + Sk − Sq if causal
    P   = e ⊘ Σ_j e,  e = exp(x − max_j x)           fp32 per row (Σ: numpy's fp32 pairwise sum)
    Pq  = clamp(rne(P ⊗ 127), −128, 127)             quant.quantize with scale 1/127 (1 ⊘ f32(1/127) = 127)
    O   = Pq · v_h                                   int32, exact
    out_h = f32(f64(O) · f64(cv))                    fp32

(MOVE int32→fp32 `scale=c` computes f32(f64(S) · f64(c)); ROW softmax the fp32 P; MOVE fp32→int8
`scale=127` Pq.)

quant.progressive_attention:

Semantics (defined here once; `compiler/reference_progressive.py` implements it, the NPU lowering
`backend/lower/rules_progressive.py` reproduces it bit for bit up to P·V):

q i8 [Sq, H·d], k i8 [Sk, H·d] (per-tensor scales sq, sk: [1] f32), v float [Sk, H·dv]. K is
stored as two 4-bit planes: MSB k_msb = (k >> 4) << 4 (arithmetic shift: the signed high nibble)
and LSB k & 15. For each head h and each block of `block` query rows (rows b·block … , last block
shorter), with K' = k_msb first:

    acc = q_h · K'_hᵀ                          int32, exact
    s   = f32(acc) ⊗ (f32(sq) ⊗ f32(sk))        fp32 (⊗: IEEE fp32 multiply)
    x   = s ⊗ f32(scale), masked to −inf where j > i + Sk − Sq if causal
    P   = e ⊘ Σ_j e,  e = exp(x − max_j x)      fp32, per row
    refetch = min over the block's rows of max_j P  <  f32(threshold)

If refetch, P is recomputed the same way with K' = k (the full int8 K: the LSB plane fetched).
Then out_h = P · v_h (float). threshold = 0 never refetches, threshold > 1 always does.

    %o = quant.progressive_attention %qq, %kq, %v, %sq, %sk {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = 0.1, block = 16} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def, traits_def
from xdsl.traits import Pure

from dialects import nn
from dialects.nn import ATTN_PROPS
from dialects.nn_base import NNOp, PropValue, ShapeError, element_of, int_prop, shape_of, tensor


def _int_width(t: Attribute) -> int | None:
    e = element_of(t)
    return e.width.data if isinstance(e, IntegerType) else None


@irdl_op_definition
class ProgressiveAttentionOp(NNOp):
    """Attention with int8 Q·Kᵀ from the MSB plane of K, recomputed with the full K for row blocks
    whose smallest row-max probability is below `threshold` (see the module docstring).

    %o = quant.progressive_attention %qq, %kq, %v, %sq, %sk {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = 0.1, block = 16} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
    """

    name = "quant.progressive_attention"
    PROPS: ClassVar[Mapping[str, type]] = {**ATTN_PROPS, "threshold": float, "block": int}
    query = operand_def()
    key = operand_def()
    value = operand_def()
    q_scale = operand_def()
    k_scale = operand_def()
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
        if len(operand_types) != 5:
            raise ShapeError(f"{cls.name}: expected q, k, v, q_scale and k_scale operands")
        q, k, v, sq, sk = operand_types
        for what, t in (("query", q), ("key", k)):
            if _int_width(t) != 8:
                raise ShapeError(f"{cls.name}: {what} must be an i8 tensor, got {t}")
        for what, t in (("value", v), ("q_scale", sq), ("k_scale", sk)):
            if _int_width(t) is not None:
                raise ShapeError(f"{cls.name}: {what} must be a floating-point tensor, got {t}")
        for what, t in (("q_scale", sq), ("k_scale", sk)):
            if shape_of(t) != (1,):
                raise ShapeError(f"{cls.name}: {what} must be [1] (per tensor), got {t}")
        if int_prop(cls.name, props, "block") < 1:
            raise ShapeError(f"{cls.name}: block must be >= 1, got {props.get('block')}")
        if int_prop(cls.name, props, "qk_dim") % 2:
            raise ShapeError(f"{cls.name}: qk_dim must be even (K is stored as packed int4 planes)")
        thr = props.get("threshold")
        if not isinstance(thr, float) or not thr >= 0.0:
            raise ShapeError(f"{cls.name}: threshold must be a float >= 0, got {thr!r}")
        # the shape rules are nn.attention's, checked on float stand-ins of q and k
        fv = element_of(v)
        shapes = [tensor(shape_of(t), fv) for t in (q, k)] + [v]
        attn_props = {n: props[n] for n in nn.AttentionOp.PROPS if n in props}
        return nn.infer_as_attention(cls.name, shapes, attn_props)


@irdl_op_definition
class AttentionOp(NNOp):
    """Integer attention: int8 q, k, v with per-tensor scales; S = q·kᵀ and O = P·v in int32, the
    softmax in fp32 and P quantized to int8 with scale 1/127 (see the module docstring).

    %o = quant.attention %qq, %kq, %vq, %sq, %sk, %sv {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
    """

    name = "quant.attention"
    PROPS: ClassVar[Mapping[str, type]] = ATTN_PROPS
    query = operand_def()
    key = operand_def()
    value = operand_def()
    q_scale = operand_def()
    k_scale = operand_def()
    v_scale = operand_def()
    heads = prop_def(Attribute)
    qk_dim = prop_def(Attribute)
    v_dim = prop_def(Attribute)
    scale = prop_def(Attribute)
    causal = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) != 6:
            raise ShapeError(
                f"{cls.name}: expected q, k, v, q_scale, k_scale and v_scale operands, got "
                f"{len(operand_types)}"
            )
        q, k, v, sq, sk, sv = operand_types
        for what, t in (("query", q), ("key", k), ("value", v)):
            if _int_width(t) != 8:
                raise ShapeError(f"{cls.name}: {what} must be an i8 tensor, got {t}")
        for what, t in (("q_scale", sq), ("k_scale", sk), ("v_scale", sv)):
            if _int_width(t) is not None or shape_of(t) != (1,):
                raise ShapeError(f"{cls.name}: {what} must be a [1] float tensor, got {t}")
        fe = element_of(sq)
        shapes = [tensor(shape_of(t), fe) for t in (q, k, v)]
        return nn.infer_as_attention(cls.name, shapes, props)
