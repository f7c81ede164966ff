"""ViT / DeiT: patch embedding, CLS token, pre-LN encoder blocks, classifier on the CLS token."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.models import functional as F
from compiler.models.builder import Module, ModuleList, Parameter, Tensor, normal
from compiler.models.layers import MLP, LayerNorm, Linear, MultiHeadAttention, PatchEmbed


@dataclass(frozen=True)
class ViTConfig:
    image: int = 224
    channels: int = 3
    patch: int = 16
    dim: int = 192
    layers: int = 12
    heads: int = 3
    mlp_dim: int = 768
    classes: int = 1000
    eps: float = 1e-6

    @property
    def tokens(self) -> int:
        return (self.image // self.patch) ** 2 + 1


class ViTBlock(Module):
    def __init__(self, c: ViTConfig):
        self.norm1 = LayerNorm(c.dim, c.eps)
        self.attn = MultiHeadAttention(c.dim, c.heads)
        self.norm2 = LayerNorm(c.dim, c.eps)
        self.mlp = MLP(c.dim, c.mlp_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(Module):
    def __init__(self, c: ViTConfig):
        if c.image % c.patch:
            raise ValueError(f"patch {c.patch} must divide image {c.image}")
        self.patch_embed = PatchEmbed(c.channels, c.patch, c.dim)
        self.cls_token = Parameter((1, c.dim), normal(0.02))
        self.pos_embed = Parameter((c.tokens, c.dim), normal(0.02))
        self.blocks = ModuleList(ViTBlock(c) for _ in range(c.layers))
        self.norm = LayerNorm(c.dim, c.eps)
        self.head = Linear(c.dim, c.classes)

    def forward(self, image: Tensor) -> Tensor:
        x = F.concat([self.cls_token, self.patch_embed(image)], axis=0) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[0:1]))
