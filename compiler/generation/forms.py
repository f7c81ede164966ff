"""The prefill and decode forms of a gpt2-family zoo model, traced with the model's own weights.

    lm = LanguageModel.of(load_model("char-gpt"))
    prefill = lm.prefill(5)      # ids [5] → logits [5, vocab], k0, v0, ... [5, dim]
    decode = lm.decode(32)       # ids [1], pos [1], mask [33], 32-slot caches → logits [1, vocab], k0, v0, ...

The decode form for a cache of `slots` rows serves every step whose past length is at most
`slots` (unfilled slots are masked); `slots_for` rounds a past length up to its bucket.

`resident=True` builds the forms whose KV cache stays in NPU DRAM across runs: the caches are
arguments placed by `meta["resident"]` (one fixed region of `context` rows per layer's K and V,
the same addresses in every form, backend/lower/resident.py), written in place by `nn.scatter`
at run-time slots (`slots` [P] = 0..P-1 in the prefill, `slot` [1] = the cached rows in a decode
step), and returned (in place) as the updated caches:

    prefill = lm.prefill(5, resident=True)  # ids [5], slots [5], caches [5, dim] → logits, caches
    decode = lm.decode(32, resident=True)   # ids, pos, mask [33], slot [1], caches [33, dim] → logits, caches

`planes=True` (progressive-quant) adds the K planes' resident regions to the meta of every form
(the same addresses in the prefill and the decode forms); progressive-quant turns a decode form's
K caches into views of them (passes/progressive_kv.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.errors import WispError
from compiler.model import Model
from compiler.models.builder import trace
from compiler.models.char_vocab import VOCAB
from compiler.models.gpt2 import GPT2Config, GPT2Decode, GPT2Prefill

SCORES = "kv_scores"  # kv-prune's carried scores per cache slot (resident with the cache)
POSITIONS = "positions"  # kv-prune: the token position of each cache slot (resident, int32)
BUCKET = 32  # cache slots are provided in multiples of this (docs/generation.md: length buckets)


@dataclass(frozen=True)
class LanguageModel:
    """A gpt2-family model's config and weights, from which its prefill and decode forms are built."""

    name: str
    config: GPT2Config
    base: Model

    @staticmethod
    def of(model: Model) -> LanguageModel:
        if model.meta.get("family") != "gpt2" or "config" not in model.meta:
            raise WispError(
                f"{model.name}: generation needs a gpt2-family zoo model (e.g. char-gpt), "
                f"not a {model.meta.get('family') or 'non-zoo'} model"
            )
        config = GPT2Config(**model.meta["config"])
        if config.vocab != len(VOCAB):
            raise WispError(
                f"{model.name}: text generation needs a character-level model whose vocabulary is "
                f"newline + printable ASCII ({len(VOCAB)} symbols, e.g. char-gpt); it has {config.vocab}"
            )
        return LanguageModel(model.name, config, model)

    @property
    def context(self) -> int:
        return self.config.max_positions

    @property
    def kv_names(self) -> list[str]:
        return [f"{kv}_cache{i}" for i in range(self.config.layers) for kv in "kv"]

    def slots_for(self, past: int) -> int:
        """The cache slots of the decode form that serves a step with `past` cached tokens."""
        if not 1 <= past < self.context:
            raise WispError(
                f"{self.name}: a decode step needs 1..{self.context - 1} cached tokens, got {past}"
            )
        return min(-(-past // BUCKET) * BUCKET, self.context - 1)

    @property
    def resident_base(self) -> int:
        """DRAM address of the resident cache regions: above any form's data section (the
        weights in fp32 would need 4 B per parameter; the data section holds them in fp16 or
        int8, once per layout), rounded up to 1 MiB."""
        params = sum(int(np.asarray(w).size) for w in self.base.weights.values())
        return -(-4 * params // (1 << 20)) * (1 << 20)

    def resident_meta(self, scores: bool = False, planes: bool = False) -> dict[str, Any]:
        """`meta["resident"]`: each layer's K and V cache, `context` rows of `dim` (fp16); with
        ``scores`` (kv-prune's keep-k on the NPU) then `kv_scores`, one fp32 score per slot, and
        `positions`, the int32 token position of each slot; with
        ``planes`` (progressive-quant's decode forms) then each layer's K as two packed int4
        planes, `k_msb_cacheN` and `k_lsb_cacheN`: head-major, `context` rows of `dim / heads / 2`
        bytes per head (`plane_names`)."""
        regions: list[list[Any]] = [[n, self.context, self.config.dim] for n in self.kv_names]
        if scores:
            regions.append([SCORES, self.context, 1, "f32"])
            regions.append([POSITIONS, self.context, 1, "i32"])
        if planes:
            c = self.config
            for name in self.plane_names:
                regions.append([name, c.heads * self.context, c.dim // c.heads // 2, "i8"])
        return {"base": self.resident_base, "regions": regions}

    @property
    def plane_names(self) -> list[str]:
        """The resident K planes of progressive-quant (MSB, LSB per layer)."""
        return [f"k_{p}_cache{i}" for i in range(self.config.layers) for p in ("msb", "lsb")]

    def _traced(
        self,
        root: Any,
        inputs: dict[str, tuple[tuple[int, ...], Any]],
        form: str,
        resident: bool = False,
        scores: bool = False,
        planes: bool = False,
    ) -> Model:
        model = trace(root, inputs, name=f"{self.name}-{form}", meta=dict(self.base.meta))
        model.meta["form"] = form
        if resident:
            model.meta["resident"] = self.resident_meta(scores, planes)
        model.weights = self.base.weights.copy()
        model.weights.check(model.module)
        return model

    def prefill(
        self, tokens: int, resident: bool = False, scores: bool = False, planes: bool = False
    ) -> Model:
        """ids [tokens] → logits [tokens, vocab] and each layer's k, v [tokens, dim] (resident:
        the caches with those rows at `slots`)."""
        if not 1 <= tokens <= self.context:
            raise WispError(
                f"{self.name}: a prompt of {tokens} tokens does not fit the context {self.context}"
            )
        c = dataclasses.replace(self.config, seq=tokens)
        inputs: dict[str, tuple[tuple[int, ...], Any]] = {"ids": ((tokens,), np.int32)}
        if resident:
            inputs["slots"] = ((tokens,), np.int32)
            for name in self.kv_names:
                inputs[name] = ((tokens, c.dim), np.float32)
        return self._traced(
            GPT2Prefill(c, resident),
            inputs,
            f"prefill{tokens}",
            resident,
            resident and scores,
            planes,
        )

    def decode(
        self, slots: int, resident: bool = False, scores: bool = False, planes: bool = False
    ) -> Model:
        """One token against `slots` cache rows (see GPT2Decode; resident: `slots + 1` rows, the
        new one written at `slot`; resident with ``scores``: two more inputs for kv-prune's
        keep-k on the NPU, the resident `kv_scores` [slots + 1] fp32 and the token position of
        each slot, `positions` [slots + 1] int32)."""
        c = self.config
        inputs: dict[str, tuple[tuple[int, ...], Any]] = {
            "ids": ((1,), np.int32),
            "pos": ((1,), np.int32),
            "mask": ((slots + 1,), np.int32),
        }
        if resident:
            inputs["slot"] = ((1,), np.int32)
        for name in self.kv_names:
            inputs[name] = ((slots + resident, c.dim), np.float32)
        scores = resident and scores
        if scores:
            inputs[SCORES] = ((slots + 1,), np.float32)
            inputs["positions"] = ((slots + 1,), np.int32)
        root = GPT2Decode(c, resident, 2 if scores else 0)
        return self._traced(root, inputs, f"decode{slots}", resident, scores, planes)
