"""BERT: word + position + token-type embeddings, post-LN encoder blocks, tanh pooler, classifier."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.models import functional as F
from compiler.models.builder import Module, ModuleList, Tensor
from compiler.models.layers import MLP, Embedding, LayerNorm, Linear, MultiHeadAttention


@dataclass(frozen=True)
class BertConfig:
    vocab: int = 30522
    max_positions: int = 512
    type_vocab: int = 2
    seq: int = 128
    dim: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    classes: int = 2
    eps: float = 1e-12


class BertEmbeddings(Module):
    def __init__(self, c: BertConfig):
        self.word = Embedding(c.vocab, c.dim)
        self.position = Embedding(c.max_positions, c.dim)
        self.token_type = Embedding(c.type_vocab, c.dim)
        self.norm = LayerNorm(c.dim, c.eps)
        self.seq = c.seq

    def forward(self, ids: Tensor) -> Tensor:
        word = self.word(ids)
        pos = word.graph.tensor(self.position.weight)[0 : self.seq]
        segment = word.graph.tensor(self.token_type.weight)[0:1]  # single-segment input
        return self.norm(word + pos + segment)


class BertBlock(Module):
    def __init__(self, c: BertConfig):
        self.attn = MultiHeadAttention(c.dim, c.heads)
        self.norm1 = LayerNorm(c.dim, c.eps)
        self.mlp = MLP(c.dim, c.mlp_dim)
        self.norm2 = LayerNorm(c.dim, c.eps)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class Bert(Module):
    def __init__(self, c: BertConfig):
        if c.seq > c.max_positions:
            raise ValueError(f"seq {c.seq} exceeds max_positions {c.max_positions}")
        self.embeddings = BertEmbeddings(c)
        self.blocks = ModuleList(BertBlock(c) for _ in range(c.layers))
        self.pooler = Linear(c.dim, c.dim)
        self.classifier = Linear(c.dim, c.classes)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.embeddings(ids)
        for block in self.blocks:
            x = block(x)
        return self.classifier(F.tanh(self.pooler(x[0:1])))
