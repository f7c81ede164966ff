"""Functional forms of nn ops for use inside `Module.forward` (like torch.nn.functional)."""

from __future__ import annotations

from collections.abc import Sequence

from compiler.models.builder import Parameter, Tensor
from dialects import nn


def _graph(*xs: Tensor | Parameter):  # noqa: ANN202
    for x in xs:
        if isinstance(x, Tensor):
            return x.graph
    raise ValueError("at least one operand must be a traced Tensor")


def linear(x: Tensor, weight: Tensor | Parameter, bias: Tensor | Parameter | None = None) -> Tensor:
    return x.graph.op(nn.LinearOp, x, weight, bias)


def layer_norm(
    x: Tensor, gamma: Parameter | Tensor, beta: Parameter | Tensor, eps: float
) -> Tensor:
    return x.graph.op(nn.LayerNormOp, x, gamma, beta, eps=eps)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return x.graph.op(nn.GeluOp, x, approximate=approximate)


def tanh(x: Tensor) -> Tensor:
    return x.graph.op(nn.TanhOp, x)


def relu(x: Tensor) -> Tensor:
    return x.graph.op(nn.ReluOp, x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.graph.op(nn.SoftmaxOp, x, axis=axis)


def matmul(a: Tensor, b: Tensor, transpose_b: bool = False) -> Tensor:
    return a.graph.op(nn.MatmulOp, a, b, transpose_b=transpose_b)


def concat(xs: Sequence[Tensor | Parameter], axis: int = 0) -> Tensor:
    return _graph(*xs).op(nn.ConcatOp, *xs, axis=axis)


def embedding(table: Parameter | Tensor, ids: Tensor) -> Tensor:
    return ids.graph.op(nn.GatherOp, table, ids)


def scatter(table: Tensor, indices: Tensor, rows: Tensor) -> Tensor:
    return table.graph.op(nn.ScatterOp, table, indices, rows)


def patch_embed(image: Tensor, weight: Parameter, bias: Parameter, patch: int) -> Tensor:
    return image.graph.op(nn.PatchEmbedOp, image, weight, bias, patch=patch)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    heads: int,
    *,
    causal: bool = False,
    scale: float | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """nn.attention; `mask` (i32 [Sk], 1 = keep, 0 = padding) masks keys in every query row."""
    qk_dim = q.shape[-1] // heads
    v_dim = v.shape[-1] // heads
    return q.graph.op(
        nn.AttentionOp,
        q,
        k,
        v,
        mask,
        heads=heads,
        qk_dim=qk_dim,
        v_dim=v_dim,
        scale=scale if scale is not None else qk_dim**-0.5,
        causal=causal,
    )
