"""Layers for the builder: Linear, LayerNorm, Embedding, PatchEmbed, MultiHeadAttention, MLP."""

from __future__ import annotations

from compiler.models import functional as F
from compiler.models.builder import Module, Parameter, Tensor, normal, ones, zeros


class Linear(Module):
    """y = x · weightᵀ + bias, weight [out, in]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, std: float = 0.02):
        self.weight = Parameter((out_features, in_features), normal(std))
        self.bias = Parameter((out_features,), zeros) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class LayerNorm(Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        self.weight = Parameter((dim,), ones)
        self.bias = Parameter((dim,), zeros)
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)


class Embedding(Module):
    def __init__(self, num: int, dim: int, std: float = 0.02):
        self.weight = Parameter((num, dim), normal(std))

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(self.weight, ids)


class PatchEmbed(Module):
    """Conv-as-matmul patch projection; weight [dim, channels·patch²]."""

    def __init__(self, channels: int, patch: int, dim: int):
        self.weight = Parameter((dim, channels * patch * patch), normal(0.02))
        self.bias = Parameter((dim,), zeros)
        self.patch = patch

    def forward(self, image: Tensor) -> Tensor:
        return F.patch_embed(image, self.weight, self.bias, self.patch)


class MultiHeadAttention(Module):
    """Separate q/k/v projections, one nn.attention, an output projection `proj`."""

    def __init__(self, dim: int, heads: int, *, causal: bool = False):
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.q = Linear(dim, dim)
        self.k = Linear(dim, dim)
        self.v = Linear(dim, dim)
        self.proj = Linear(dim, dim)
        self.heads = heads
        self.causal = causal

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        a = F.attention(self.q(x), self.k(x), self.v(x), self.heads, causal=self.causal, mask=mask)
        return self.proj(a)


class MLP(Module):
    """fc1 → GELU → fc2."""

    def __init__(self, dim: int, hidden: int, approximate: str = "none"):
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), self.approximate))
