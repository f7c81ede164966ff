"""GPT-2: token + position embeddings, pre-LN causal blocks (tanh GELU), tied LM head."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.models import functional as F
from compiler.models.builder import Module, ModuleList, Tensor
from compiler.models.layers import MLP, Embedding, LayerNorm, MultiHeadAttention


@dataclass(frozen=True)
class GPT2Config:
    vocab: int = 50257
    max_positions: int = 1024
    seq: int = 128
    dim: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    eps: float = 1e-5


class GPT2Block(Module):
    def __init__(self, c: GPT2Config):
        self.norm1 = LayerNorm(c.dim, c.eps)
        self.attn = MultiHeadAttention(c.dim, c.heads, causal=True)
        self.norm2 = LayerNorm(c.dim, c.eps)
        self.mlp = MLP(c.dim, c.mlp_dim, approximate="tanh")

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT2(Module):
    def __init__(self, c: GPT2Config):
        if c.seq > c.max_positions:
            raise ValueError(f"seq {c.seq} exceeds max_positions {c.max_positions}")
        self.wte = Embedding(c.vocab, c.dim)
        self.wpe = Embedding(c.max_positions, c.dim, std=0.01)
        self.blocks = ModuleList(GPT2Block(c) for _ in range(c.layers))
        self.norm = LayerNorm(c.dim, c.eps)
        self.seq = c.seq

    def forward(self, ids: Tensor) -> Tensor:
        x = self.wte(ids) + ids.graph.tensor(self.wpe.weight)[0 : self.seq]
        for block in self.blocks:
            x = block(x)
        return F.linear(self.norm(x), self.wte.weight)  # logits [seq, vocab], tied to wte
