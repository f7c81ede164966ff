"""Reverse-mode gradients of an nn module's weights, in numpy (for Fisher/Taylor saliency).

`grad(model, inputs, d_out)` runs the reference executor, keeping every value, then walks @main backwards
applying each op's vector-Jacobian product. Gradients come back per weight symbol. Tests check every VJP
against finite differences in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Operation, SSAValue

from compiler import reference as ref
from compiler.errors import WispError
from compiler.model import Model
from dialects import nn
from dialects.nn_base import shape_of

Array = np.ndarray
Vjp = Callable[[Operation, list[Array], Array, Array], list[Array | None]]


def _unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum a broadcast gradient back to `shape`."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _linear(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    x, w = a[0], a[1]
    dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])
    grads: list[Array | None] = [dy @ w, dy2.T @ x2]
    if len(a) == 3:
        grads.append(dy2.sum(axis=0))
    return grads


def _matmul(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    lhs, rhs = a
    if isinstance(op, nn.MatmulOp) and op.bool_prop("transpose_b"):
        return [dy @ rhs, np.swapaxes(dy, -1, -2) @ lhs]
    return [dy @ np.swapaxes(rhs, -1, -2), np.swapaxes(lhs, -1, -2) @ dy]


def _binary(fn: Callable[[Array, Array, Array], tuple[Array, Array]]) -> Vjp:
    def vjp(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
        ga, gb = fn(a[0], a[1], dy)
        return [_unbroadcast(ga, a[0].shape), _unbroadcast(gb, a[1].shape)]

    return vjp


def _layer_norm(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.LayerNormOp)
    x, g = a[0], a[1]
    mean = x.mean(axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + op.float_prop("eps"))
    xhat = (x - mean) * inv
    dxhat = dy * g
    dx = inv * (
        dxhat
        - dxhat.mean(axis=-1, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
    )
    lead = tuple(range(dy.ndim - 1))
    return [dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)]


def _gelu(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.GeluOp)
    x = a[0]
    if op.prop("approximate") == "tanh":
        c = math.sqrt(2.0 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x**3))
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2)
    else:
        cdf = 0.5 * (1.0 + ref._erf(x / math.sqrt(2.0)))
        d = cdf + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    return [dy * d]


def _softmax(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.SoftmaxOp)
    axis = op.int_prop("axis")
    return [y * (dy - (dy * y).sum(axis=axis, keepdims=True))]


def _transpose(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.TransposeOp)
    return [dy.transpose(np.argsort(op.ints_prop("perm")))]


def _concat(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.ConcatOp)
    axis = op.int_prop("axis") % dy.ndim
    cuts = np.cumsum([x.shape[axis] for x in a])[:-1]
    return list(np.split(dy, cuts, axis=axis))


def _slice(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.SliceOp)
    dx = np.zeros_like(a[0])
    index = tuple(slice(o, o + n) for o, n in zip(op.ints_prop("offsets"), dy.shape, strict=True))
    dx[index] = dy
    return [dx]


def _gather(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    table, idx = a
    dtable = np.zeros_like(table)
    np.add.at(dtable, idx, dy)
    return [dtable, None]


def _patch_embed(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.PatchEmbedOp)
    img, w = a[0], a[1]
    p = op.int_prop("patch")
    c, h, wd = img.shape
    patches = img.reshape(c, h // p, p, wd // p, p).transpose(1, 3, 0, 2, 4).reshape(-1, c * p * p)
    dpatches = dy @ w
    dimg = dpatches.reshape(h // p, wd // p, c, p, p).transpose(2, 0, 3, 1, 4).reshape(c, h, wd)
    return [dimg, dy.T @ patches, dy.sum(axis=0)]


def _attention(op: Operation, a: list[Array], y: Array, dy: Array) -> list[Array | None]:
    assert isinstance(op, nn.AttentionOp)
    q, k, v = a[:3]
    mask = a[3] if len(a) == 4 else None
    heads, scale, causal = op.int_prop("heads"), op.float_prop("scale"), op.bool_prop("causal")
    sq, sk = q.shape[0], k.shape[0]
    qh = q.reshape(sq, heads, -1).transpose(1, 0, 2)
    kh = k.reshape(sk, heads, -1).transpose(1, 0, 2)
    vh = v.reshape(sk, heads, -1).transpose(1, 0, 2)
    s = ref.attention_scores((qh @ kh.transpose(0, 2, 1)) * scale, causal, mask)
    p = ref.softmax(s)
    do = dy.reshape(sq, heads, -1).transpose(1, 0, 2)
    dv = p.transpose(0, 2, 1) @ do
    dp = do @ vh.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * scale
    dq, dk = ds @ kh, ds.transpose(0, 2, 1) @ qh

    def merge(t: Array, rows: int) -> Array:
        return t.transpose(1, 0, 2).reshape(rows, -1)

    grads: list[Array | None] = [merge(dq, sq), merge(dk, sk), merge(dv, sk)]
    return grads + [None] * (len(a) - 3)  # the mask is an integer input: no gradient


VJPS: dict[type[Operation], Vjp] = {
    nn.LinearOp: _linear,
    nn.MatmulOp: _matmul,
    nn.AddOp: _binary(lambda x, y, d: (d, d)),
    nn.SubOp: _binary(lambda x, y, d: (d, -d)),
    nn.MulOp: _binary(lambda x, y, d: (d * y, d * x)),
    nn.DivOp: _binary(lambda x, y, d: (d / y, -d * x / (y * y))),
    nn.LayerNormOp: _layer_norm,
    nn.GeluOp: _gelu,
    nn.TanhOp: lambda op, a, y, dy: [dy * (1 - y * y)],
    nn.ReluOp: lambda op, a, y, dy: [dy * (a[0] > 0)],
    nn.SoftmaxOp: _softmax,
    nn.ReshapeOp: lambda op, a, y, dy: [dy.reshape(a[0].shape)],
    nn.TransposeOp: _transpose,
    nn.ConcatOp: _concat,
    nn.SliceOp: _slice,
    nn.GatherOp: _gather,
    nn.PatchEmbedOp: _patch_embed,
    nn.AttentionOp: _attention,
}


def grad(
    model: Model,
    inputs: Mapping[str, Array],
    d_outputs: Mapping[str, Array],
    *,
    dtype: type | np.dtype = np.float64,
) -> tuple[dict[str, Array], dict[str, Array]]:
    """Outputs and ∂(Σ d_out·out)/∂weight for every weight symbol reached (zero arrays for the rest)."""
    values: dict[SSAValue, Array] = {}
    outputs = ref.run(model, inputs, dtype=dtype, values=values)
    func = model.main
    cot: dict[SSAValue, Array] = {}
    ret = func.body.block.last_op
    assert isinstance(ret, ReturnOp)
    for i, v in enumerate(ret.operands):
        if f"out{i}" in d_outputs:
            cot[v] = np.asarray(d_outputs[f"out{i}"], dtype=values[v].dtype)
    weight_grads: dict[str, Array] = {}
    for op in reversed(list(func.body.block.ops)):
        if isinstance(op, ReturnOp) or not op.results or op.results[0] not in cot:
            continue
        dy = cot.pop(op.results[0])
        if isinstance(op, nn.WeightOp):
            weight_grads[op.symbol] = weight_grads.get(op.symbol, 0) + dy
            continue
        vjp = VJPS.get(type(op))
        if vjp is None:
            raise WispError(f"autodiff: no gradient rule for {op.name}")
        grads = vjp(op, [values[o] for o in op.operands], values[op.results[0]], dy)
        for operand, g in zip(op.operands, grads, strict=True):
            if g is None:
                continue
            if g.shape != shape_of(operand.type):
                raise WispError(
                    f"autodiff: {op.name} gradient shape {g.shape} != {shape_of(operand.type)}"
                )
            cot[operand] = cot[operand] + g if operand in cot else g
    for name, w in model.weights.items():
        weight_grads.setdefault(name, np.zeros(w.shape, dtype=dtype))
    return outputs, weight_grads


def cross_entropy_grad(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean cross-entropy over rows of `logits` [rows, classes] and its gradient."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    rows = np.arange(logits.shape[0])
    loss = float(-np.log(p[rows, labels] + 1e-300).mean())
    d = p.copy()
    d[rows, labels] -= 1.0
    return loss, d / logits.shape[0]
