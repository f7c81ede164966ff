"""GPT-2: token + position embeddings, pre-LN causal blocks (tanh GELU), tied LM head.

Three forms share one set of weights (same parameter names):

- `GPT2`: the full-sequence forward, ids [seq] → logits [seq, vocab];
- `GPT2Prefill`: the same forward that also returns every layer's keys and values [seq, dim]
  (the KV cache of the prompt);
- `GPT2Decode`: one new token against a cache of `past` slots: ids [1], pos [1] (its position),
  mask [past + 1] (1 = a filled slot; the last entry, the new token, is always 1) and per layer
  k_cache, v_cache [past, dim] → logits [1, vocab] and per layer the new token's k, v [1, dim]
  (the rows the caller appends to its cache). Attention runs over concat(cache, new row) with the
  mask hiding the unfilled slots (docs/generation.md).

With ``resident=True`` (the KV cache resident in NPU DRAM across runs, docs/generation.md) the
prefill takes ``slots [seq]`` and per layer ``k_cache, v_cache [seq, dim]`` and returns the caches
with its rows written at ``slots`` (`nn.scatter`); the decode step takes ``slot [1]`` and caches
of ``past + 1`` slots, writes its new k, v row at ``slot`` and attends over the whole cache (the
mask hides the unfilled slots), returning the updated caches instead of the new rows.
"""

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

    def forward_kv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The causal forward, also returning this layer's keys and values."""
        h = self.norm1(x)
        a = self.attn
        k, v = a.k(h), a.v(h)
        x = x + a.proj(F.attention(a.q(h), k, v, a.heads, causal=True))
        return x + self.mlp(self.norm2(x)), k, v

    def decode(
        self, x: Tensor, k_cache: Tensor, v_cache: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One token x [1, dim] against the cache; returns (x', k_new, v_new)."""
        h = self.norm1(x)
        a = self.attn
        k, v = a.k(h), a.v(h)
        keys, values = F.concat([k_cache, k]), F.concat([v_cache, v])
        x = x + a.proj(F.attention(a.q(h), keys, values, a.heads, mask=mask))
        return x + self.mlp(self.norm2(x)), k, v

    def decode_in_place(
        self, x: Tensor, k_cache: Tensor, v_cache: Tensor, mask: Tensor, slot: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One token x [1, dim]: its k, v row written at ``slot`` of the caches, attention over
        the caches; returns (x', the updated k cache, the updated v cache)."""
        h = self.norm1(x)
        a = self.attn
        keys = F.scatter(k_cache, slot, a.k(h))
        values = F.scatter(v_cache, slot, a.v(h))
        x = x + a.proj(F.attention(a.q(h), keys, values, a.heads, mask=mask))
        return x + self.mlp(self.norm2(x)), keys, values


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
        return self.head(x)

    def head(self, x: Tensor) -> Tensor:
        return F.linear(self.norm(x), self.wte.weight)  # logits [seq, vocab], tied to wte


class GPT2Prefill(GPT2):
    """The full forward returning [logits, k0, v0, k1, v1, ...] (the prompt's KV cache); with
    ``resident``: (ids, slots, k_cache0, v_cache0, ...) → [logits, caches with the rows at slots]."""

    def __init__(self, c: GPT2Config, resident: bool = False):
        super().__init__(c)
        self.resident = resident

    def forward(self, ids: Tensor, *cache: Tensor) -> list[Tensor]:  # type: ignore[override]
        x = self.wte(ids) + ids.graph.tensor(self.wpe.weight)[0 : self.seq]
        kv: list[Tensor] = []
        for block in self.blocks:
            assert isinstance(block, GPT2Block)
            x, k, v = block.forward_kv(x)
            kv += [k, v]
        if self.resident:  # cache = (slots, k_cache0, v_cache0, ...)
            kv = [F.scatter(c, cache[0], r) for c, r in zip(cache[1:], kv, strict=True)]
        return [self.head(x), *kv]


class GPT2Decode(GPT2):
    """One decode step: (ids, pos, mask, k_cache0, v_cache0, ...) → [logits, k0, v0, ...]; with
    ``resident``: (ids, pos, mask, slot, k_cache0, ...) → [logits, updated k_cache0, ...];
    ``unused`` trailing inputs are left to passes (kv-prune's kv_scores and positions)."""

    def __init__(self, c: GPT2Config, resident: bool = False, unused: int = 0):
        super().__init__(c)
        self.resident = resident
        self.unused = unused

    def forward(self, ids: Tensor, pos: Tensor, mask: Tensor, *caches: Tensor) -> list[Tensor]:  # type: ignore[override]
        caches = caches[: len(caches) - self.unused]
        x = self.wte(ids) + self.wpe(pos)
        kv: list[Tensor] = []
        slot, caches = (caches[0], caches[1:]) if self.resident else (None, caches)
        for i, block in enumerate(self.blocks):
            assert isinstance(block, GPT2Block)
            kc, vc = caches[2 * i], caches[2 * i + 1]
            if slot is not None:
                x, k, v = block.decode_in_place(x, kc, vc, mask, slot)
            else:
                x, k, v = block.decode(x, kc, vc, mask)
            kv += [k, v]
        return [self.head(x), *kv]
