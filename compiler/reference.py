"""The reference executor: runs a verified nn module with its WeightStore in numpy. It is the oracle
that every pass and the NPU interpreter are checked against."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation, SSAValue

from backend.interpreter.numerics import erf_blocked
from compiler import reference_progressive, reference_qattention, reference_quant, reference_tokens
from compiler.errors import WispError
from compiler.model import Model
from compiler.weights import WeightStore
from dialects import nn
from dialects.nn_base import element_of, shape_of
from dialects.types import numpy_dtype

Array = np.ndarray
Impl = Callable[[Any, list[Array], "Context"], Array]


class Context:
    def __init__(self, weights: WeightStore, dtype: np.dtype) -> None:
        self.weights = weights
        self.dtype = dtype
        # attention probabilities by (q, k, heads, scale) of one run: an unmasked, non-causal
        # nn.attention leaves its P here so a tokens.importance of the same q, k reuses it
        self.probs: dict[tuple[int, int, int, float], Array] = {}


_ERF_EXACT = np.frompyfunc(math.erf, 1, 1)


def _erf(x: Array) -> Array:
    """erf. float64 inputs use math.erf (exact); others use Abramowitz & Stegun 7.1.26 evaluated in
    float64 (|error| <= 1.5e-7, at float32 resolution) because numpy has no vectorised erf."""
    if x.dtype == np.float64:
        return np.asarray(_ERF_EXACT(x), dtype=np.float64)
    # the same formula and operation order as numerics.erf (bit-identical), in place and by
    # blocks that stay in cache
    return erf_blocked(x).astype(x.dtype)


def gelu(x: Array, approximate: str) -> Array:
    if approximate == "tanh":
        c = np.asarray(math.sqrt(2.0 / math.pi), x.dtype)
        return 0.5 * x * (1.0 + np.tanh(c * (x + np.asarray(0.044715, x.dtype) * x**3)))
    e = _erf(x / np.asarray(math.sqrt(2.0), x.dtype))
    if e.dtype != x.dtype or e.shape != x.shape:  # (scalars): the expression as written
        return 0.5 * x * (1.0 + e)
    e += 1.0  # in place, the same operations in the same order as 0.5 * x * (1.0 + e)
    h = 0.5 * x
    h *= e
    return h


def softmax(x: Array, axis: int = -1) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x: Array, g: Array, b: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    d = x - mean  # once (the same values as computing it twice)
    var = (d**2).mean(axis=-1, keepdims=True)
    return d / np.sqrt(var + np.asarray(eps, x.dtype)) * g + b


def attention_scores(s: Array, causal: bool, mask: Array | None = None) -> Array:
    """Scaled scores [heads, Sq, Sk] with nn.attention's masks applied (−inf where a key is hidden)."""
    sq, sk = s.shape[-2], s.shape[-1]
    allowed = np.ones((sq, sk), bool)
    if causal:
        # query i (the last sq of sk positions) sees keys j <= i + (sk - sq)
        allowed = np.arange(sk)[None, :] <= (np.arange(sq)[:, None] + (sk - sq))
    if mask is not None:
        keep = allowed & (np.asarray(mask).reshape(1, sk) > 0)
        # a row with no kept key attends uniformly over the keys causality allows
        empty = ~keep.any(axis=1, keepdims=True)
        assert isinstance(empty, np.ndarray)  # axis=1, keepdims: [sq, 1], never a scalar
        s = np.where(empty[None], np.zeros((), s.dtype), s)
        allowed = np.where(empty, allowed, keep)
    if causal or mask is not None:
        s = np.where(allowed[None], s, np.asarray(-np.inf, s.dtype))
    return s


def attention(
    q: Array,
    k: Array,
    v: Array,
    heads: int,
    scale: float,
    causal: bool,
    mask: Array | None = None,
    probs: list[Array] | None = None,
) -> Array:
    """nn.attention; ``probs`` (if given) receives P [heads, Sq, Sk]."""
    sq, sk = q.shape[0], k.shape[0]
    qh = q.reshape(sq, heads, -1).transpose(1, 0, 2)
    kh = k.reshape(sk, heads, -1).transpose(1, 0, 2)
    vh = v.reshape(sk, heads, -1).transpose(1, 0, 2)
    s = (qh @ kh.transpose(0, 2, 1)) * np.asarray(scale, q.dtype)
    s = attention_scores(s, causal, mask)
    p = softmax(s)
    if probs is not None:
        probs.append(p)
    return (p @ vh).transpose(1, 0, 2).reshape(sq, -1)


def _attention(op: nn.AttentionOp, a: list[Array], c: Context) -> Array:
    heads, scale, causal = op.int_prop("heads"), op.float_prop("scale"), op.bool_prop("causal")
    mask = a[3] if len(a) == 4 else None
    keep: list[Array] = []
    out = attention(a[0], a[1], a[2], heads, scale, causal, mask, keep)
    if not causal and mask is None:
        c.probs[(id(a[0]), id(a[1]), heads, scale)] = keep[0]
    return out


def _linear(a: list[Array]) -> Array:
    """x @ wᵀ (+ b), the bias added in place when the shapes allow (same bits as ``x @ w.T + b``)."""
    y = a[0] @ a[1].T
    if len(a) == 3:
        b = a[2]
        if (
            isinstance(y, np.ndarray)
            and y.dtype == np.result_type(y, b)
            and np.broadcast_shapes(y.shape, b.shape) == y.shape
        ):
            y += b
        else:
            y = y + b
    return y


def patch_embed(img: Array, w: Array, b: Array, p: int) -> Array:
    c, h, wd = img.shape
    patches = img.reshape(c, h // p, p, wd // p, p).transpose(1, 3, 0, 2, 4).reshape(-1, c * p * p)
    return patches @ w.T + b


def _weight(op: nn.WeightOp, args: list[Array], ctx: Context) -> Array:
    arr = ctx.weights[op.symbol]
    return arr.astype(ctx.dtype, copy=False) if arr.dtype.kind == "f" else arr


def _gather(op: nn.GatherOp, args: list[Array], ctx: Context) -> Array:
    table, idx = args
    bad = (idx < 0) | (idx >= table.shape[0])
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise WispError(
            f"nn.gather: index {int(idx[pos])} at position {list(pos)} is outside [0, {table.shape[0]})"
        )
    return table[idx]


def _scatter(op: nn.ScatterOp, args: list[Array], ctx: Context) -> Array:
    table, idx, rows = args
    bad = (idx < 0) | (idx >= table.shape[0])
    if bad.any():
        pos = int(np.argwhere(bad)[0][0])
        raise WispError(
            f"nn.scatter: index {int(idx[pos])} at position [{pos}] is outside [0, {table.shape[0]})"
        )
    out = table.copy()
    for i, j in enumerate(idx.tolist()):  # in order: a repeated index keeps the later row
        out[j] = rows[i]
    return out


def _slice(op: nn.SliceOp, args: list[Array], ctx: Context) -> Array:
    sizes = shape_of(op.result.type)
    index = tuple(slice(o, o + n) for o, n in zip(op.ints_prop("offsets"), sizes, strict=True))
    return args[0][index]


IMPLS: dict[type[Operation], Impl] = {
    **reference_quant.IMPLS,
    **reference_progressive.IMPLS,
    **reference_qattention.IMPLS,
    nn.WeightOp: _weight,
    nn.LinearOp: lambda op, a, c: _linear(a),
    nn.MatmulOp: lambda op, a, c: (
        a[0] @ (np.swapaxes(a[1], -1, -2) if op.bool_prop("transpose_b") else a[1])
    ),
    nn.AddOp: lambda op, a, c: a[0] + a[1],
    nn.SubOp: lambda op, a, c: a[0] - a[1],
    nn.MulOp: lambda op, a, c: a[0] * a[1],
    nn.DivOp: lambda op, a, c: a[0] / a[1],
    nn.LayerNormOp: lambda op, a, c: layer_norm(a[0], a[1], a[2], op.float_prop("eps")),
    nn.GeluOp: lambda op, a, c: gelu(a[0], str(op.prop("approximate"))),
    nn.TanhOp: lambda op, a, c: np.tanh(a[0]),
    nn.ReluOp: lambda op, a, c: np.maximum(a[0], 0),
    nn.SoftmaxOp: lambda op, a, c: softmax(a[0], op.int_prop("axis")),
    nn.ReshapeOp: lambda op, a, c: a[0].reshape(shape_of(op.result.type)),
    nn.TransposeOp: lambda op, a, c: np.ascontiguousarray(a[0].transpose(op.ints_prop("perm"))),
    nn.ConcatOp: lambda op, a, c: np.concatenate(a, axis=op.int_prop("axis")),
    nn.SliceOp: _slice,
    nn.GatherOp: _gather,
    nn.ScatterOp: _scatter,
    nn.PatchEmbedOp: lambda op, a, c: patch_embed(a[0], a[1], a[2], op.int_prop("patch")),
    nn.AttentionOp: _attention,
}
IMPLS.update(reference_tokens.IMPLS)  # the tokens dialect (compiler/reference_tokens.py)


def _main(model: Model) -> FuncOp:
    return model.main


def run(
    model: Model,
    inputs: Mapping[str, Array],
    *,
    dtype: type | np.dtype = np.float32,
    keep: bool = False,
    values: dict[SSAValue, Array] | None = None,
    store_fp16: bool = False,
) -> dict[str, Array]:
    """Run @main on named inputs; returns outputs named out0, out1, … (plus every named value if
    `keep`). If `values` is given, it receives every SSA value's array (for autodiff and calibration)."""
    ctx = Context(model.weights, np.dtype(dtype))
    func = _main(model)
    env: dict[SSAValue, Array] = values if values is not None else {}
    for (name, (shape, in_dtype)), arg in zip(
        model.input_specs().items(), func.body.block.args, strict=True
    ):
        if name not in inputs:
            raise WispError(
                f"missing input '{name}' (the model takes {', '.join(model.input_specs())})"
            )
        x = np.asarray(inputs[name])
        if tuple(x.shape) != shape:
            raise WispError(
                f"input '{name}' has shape {list(x.shape)}, the model expects {list(shape)}"
            )
        env[arg] = x.astype(ctx.dtype) if in_dtype.kind == "f" else x.astype(in_dtype)
        if store_fp16 and in_dtype.kind == "f":
            env[arg] = env[arg].astype(np.float16).astype(ctx.dtype)
    named: dict[str, Array] = {}
    for op in func.body.block.ops:
        if isinstance(op, ReturnOp):
            for i, v in enumerate(op.operands):
                named[f"out{i}"] = env[v]
            break
        impl = IMPLS.get(type(op))
        if impl is None:
            raise WispError(f"reference executor: no implementation for {op.name}")
        result = impl(op, [env[o] for o in op.operands], ctx)
        want = shape_of(op.results[0].type)
        if result.shape != want:
            raise WispError(
                f"reference executor: {op.name} produced {list(result.shape)}, IR says {list(want)}"
            )
        if result.dtype.kind == "f":
            result = result.astype(ctx.dtype, copy=False)
            if store_fp16:  # values rounded to fp16 between ops, as NPU activations are stored
                result = result.astype(np.float16).astype(ctx.dtype)
        else:
            result = result.astype(numpy_dtype(element_of(op.results[0].type)), copy=False)
        env[op.results[0]] = result
        if keep and op.results[0].name_hint:
            named[op.results[0].name_hint] = result
    return named


def run_batch(model: Model, batch: Mapping[str, Array], **kw: Any) -> dict[str, Array]:
    """Run over a leading batch dim of every input (models are batch-1) and stack the outputs."""
    n = len(next(iter(batch.values())))
    outs = [run(model, {k: v[i] for k, v in batch.items()}, **kw) for i in range(n)]
    return {k: np.stack([o[k] for o in outs]) for k in outs[0]}
