"""Raising of `MatMul(x, W) + b` to one `nn.linear` with bias, and of a conv patch embedding followed by
flatten + transpose to `nn.patch_embed` (without the layout round trip the Conv converter emits)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.frontends.onnx.fold import reshape_target
from compiler.frontends.onnx.match import attrs_of, node_of, split_const, src
from compiler.frontends.onnx.state import Const, Env, Run, Value
from dialects import nn


def try_linear_bias(env: Env, node: Any) -> list[Value] | None:
    """At `Add(MatMul(x, W), b)` with constant W [in, out] and b [out]."""
    parts = split_const(env, node)
    if parts is None:
        return None
    mm_name, bias, right = parts
    mm = node_of(env, mm_name, "MatMul")
    if mm is None:
        return None
    x = env.run(src(env, mm.input[0]))
    w = env.get(src(env, mm.input[1]))
    if x is None or not isinstance(w, Const) or w.array.ndim != 2:
        return None
    out = w.array.shape[1]
    if bias.size != out or any(s != 1 for s in bias.shape[:-1]) or bias.shape[-1] != out:
        return None
    b_value = env.get(src(env, node.input[1] if right else node.input[0]))
    weight = env.weight(w.array.T, w.origin, mm, "weight")
    b = env.weight(
        bias.reshape(out).astype(np.float32), getattr(b_value, "origin", None), mm, "bias"
    )
    ssa = env.emit(nn.LinearOp, [x.ssa, weight, b])
    return [env.wrap(ssa, x.batch)]


def try_patch_embed(env: Env, node: Any) -> list[Value] | None:
    """At `Transpose(0,2,1)` of `Flatten(2)`/`Reshape[1,D,HW]` of a patch-embedding Conv."""
    perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
    if perm != [0, 2, 1]:
        return None
    flat = node_of(env, node.input[0], "Flatten", "Reshape")
    if flat is None:
        return None
    conv = node_of(env, flat.input[0], "Conv")
    if conv is None:
        return None
    conv_out, flat_out = env.run(conv.output[0]), env.run(flat.output[0])
    if conv_out is None or flat_out is None or len(conv_out.shape) != 4:
        return None
    _, d, h, w = conv_out.shape
    if flat_out.shape != (1, d, h * w):
        return None
    embed = conv_out.ssa.owner
    for _ in range(2):
        if isinstance(embed, nn.ReshapeOp | nn.TransposeOp):
            embed = embed.input.owner
    if not isinstance(embed, nn.PatchEmbedOp):
        return None
    return [Run(embed.result, (1, h * w, d), 0)]


def try_flat_linear(env: Env, node: Any) -> list[Value] | None:
    """At `Reshape(→ [1, S, O])` of `Gemm(Reshape(x [1, S, D] → [S, D]), W[, C])` (or `MatMul` with a
    constant W, + `Add(b)`): a linear applied through a batch-free view, as HF GPT-2's `Conv1D` (addmm)
    is exported by dynamo. The batch-dropping reshape is pending on its own (convert._reshape)."""
    inner = node_of(env, node.input[0], "Gemm", "MatMul", "Add")
    if inner is None:
        return None
    bias_name: str | None = None
    if inner.op_type == "Add":
        parts = split_const(env, inner)
        if parts is None:
            return None
        mm_name = parts[0]
        bias_name = inner.input[1] if parts[2] else inner.input[0]
        inner = node_of(env, mm_name, "MatMul")
        if inner is None:
            return None
    drop = node_of(env, inner.input[0], "Reshape")
    if drop is None:
        return None
    x = env.run(src(env, drop.input[0]))
    if x is None or len(x.shape) != 3:  # heads merged straight into the batch-free view: attention
        from compiler.frontends.onnx.raise_attention import try_attention

        hit = try_attention(env, drop, flat=True)
        x = hit[0] if hit and isinstance(hit[0], Run) else None
    out = env.graph.shapes.get(node.output[0])
    if x is None or x.batch != 0 or len(x.shape) != 3 or x.shape[0] != 1:
        return None
    flat = env.graph.shapes.get(drop.output[0])
    target = env.const(src(env, drop.input[1])) if len(drop.input) > 1 else None
    if flat is None and target is not None:  # TorchScript computes the target; inference may not
        flat = reshape_target(target, x.shape, int(attrs_of(drop).get("allowzero", 0)))
    if flat is None or tuple(flat) != x.shape[1:]:
        return None
    consts = [env.get(src(env, n)) if n else None for n in inner.input[1:]]
    if not consts or not all(c is None or isinstance(c, Const) for c in consts):
        return None
    from compiler.frontends.onnx.convert import CONVERTERS

    y = CONVERTERS[inner.op_type](env, inner, [x, *consts], attrs_of(inner))[0]
    if bias_name is not None:
        b = env.get(src(env, bias_name))
        if not isinstance(y, Run) or not isinstance(b, Const):
            return None
        ssa = env.emit(nn.AddOp, [y.ssa, env.operand(b, y, node, "bias")])
        y = Run(ssa, y.shape, y.batch)
    back = env.const(src(env, node.input[1])) if len(node.input) > 1 else None
    if out is None and back is not None and isinstance(y, Run):
        out = reshape_target(back, y.shape, int(attrs_of(node).get("allowzero", 0)))
    if not isinstance(y, Run) or out is None or y.shape != tuple(out) or len(out) != 3:
        return None
    return [y]
