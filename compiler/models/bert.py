"""BERT: word + position + token-type embeddings, post-LN encoder blocks, tanh pooler, classifier.

Inputs: `ids` [seq] always; `attention_mask` [seq] (1 = token, 0 = padding; HF's attention_mask) and
`token_type_ids` [seq] (segment A = 0 / B = 1) when the config asks for them. Outputs, in the order
given by `outputs`: `logits` [1, classes], `hidden` (the last hidden state, [seq, dim]) and `pooled`
(tanh(pooler(CLS)), [1, dim]) — HF BertModel returns (hidden, pooled).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.models import functional as F
from compiler.models.builder import Module, ModuleList, Tensor
from compiler.models.layers import MLP, Embedding, LayerNorm, Linear, MultiHeadAttention

BERT_OUTPUTS = ("logits", "hidden", "pooled")


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
    attention_mask: bool = False  # take an `attention_mask` input
    token_types: bool = False  # take a `token_type_ids` input (else every token is segment 0)
    outputs: str = "logits"  # comma-separated, from BERT_OUTPUTS

    def output_list(self) -> list[str]:
        outs = [o.strip() for o in self.outputs.split(",") if o.strip()]
        bad = [o for o in outs if o not in BERT_OUTPUTS]
        if not outs or bad or len(set(outs)) != len(outs):
            raise ValueError(
                f"outputs must be distinct names from {', '.join(BERT_OUTPUTS)}, got {self.outputs!r}"
            )
        return outs

    def input_names(self) -> list[str]:
        names = ["ids"]
        if self.attention_mask:
            names.append("attention_mask")
        if self.token_types:
            names.append("token_type_ids")
        return names


class BertEmbeddings(Module):
    def __init__(self, c: BertConfig):
        self.word = Embedding(c.vocab, c.dim)
        self.position = Embedding(c.max_positions, c.dim)
        self.token_type = Embedding(c.type_vocab, c.dim)
        self.norm = LayerNorm(c.dim, c.eps)
        self.seq = c.seq

    def forward(self, ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        word = self.word(ids)
        pos = word.graph.tensor(self.position.weight)[0 : self.seq]
        if token_type_ids is None:
            segment = word.graph.tensor(self.token_type.weight)[0:1]  # single-segment input
        else:
            segment = self.token_type(token_type_ids)
        return self.norm(word + pos + segment)


class BertBlock(Module):
    def __init__(self, c: BertConfig):
        self.attn = MultiHeadAttention(c.dim, c.heads)
        self.norm1 = LayerNorm(c.dim, c.eps)
        self.mlp = MLP(c.dim, c.mlp_dim)
        self.norm2 = LayerNorm(c.dim, c.eps)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.norm1(x + self.attn(x, mask))
        return self.norm2(x + self.mlp(x))


class Bert(Module):
    def __init__(self, c: BertConfig):
        if c.seq > c.max_positions:
            raise ValueError(f"seq {c.seq} exceeds max_positions {c.max_positions}")
        self.outputs = c.output_list()
        self.inputs = c.input_names()
        self.embeddings = BertEmbeddings(c)
        self.blocks = ModuleList(BertBlock(c) for _ in range(c.layers))
        if "logits" in self.outputs or "pooled" in self.outputs:
            self.pooler = Linear(c.dim, c.dim)
        if "logits" in self.outputs:
            self.classifier = Linear(c.dim, c.classes)

    def forward(self, *args: Tensor) -> Tensor | list[Tensor]:
        named = dict(zip(self.inputs, args, strict=True))
        mask = named.get("attention_mask")
        x = self.embeddings(named["ids"], named.get("token_type_ids"))
        for block in self.blocks:
            x = block(x, mask)
        results: dict[str, Tensor] = {"hidden": x}
        if "pooled" in self.outputs or "logits" in self.outputs:
            results["pooled"] = F.tanh(self.pooler(x[0:1]))
        if "logits" in self.outputs:
            results["logits"] = self.classifier(results["pooled"])
        outs = [results[o] for o in self.outputs]
        return outs[0] if len(outs) == 1 else outs
