"""kv-prune: SpAtten's cascade KV-cache pruning across decode steps.

Oracles: an independent numpy GPT-2 that decodes with its own KV cache and applies the keep-k rule
itself (accumulated importance, survivors and logits); reference vs interpreter survivors on the
trained char-gpt; DRAM per decode step bounded by keep (not growing with the context)."""

from __future__ import annotations

import numpy as np
import pytest
from frontdoor_util import REDUCED, randomize_weights
from test_generation import require_char_gpt

from compiler.api import load_model
from compiler.errors import WispError
from compiler.generation.forms import BUCKET, LanguageModel
from compiler.generation.session import Generator
from compiler.models import build
from compiler.models.char_vocab import encode

SHAPE = {**REDUCED["gpt2"], "vocab": 96}

TEXT = (
    "def shorten(text, width, **kwargs):\n"
    '    """Collapse and truncate the given text to fit in the given width.\n'
    "    w = TextWrapper(width=width, max_lines=1, **kwargs)\n"
    "    return w.fill(' '.join(text.strip().split()))\n"
)


class NumpyKV:
    """GPT-2 decode with a pruned KV cache, from the weights alone (pre-LN, tanh GELU, tied head)."""

    def __init__(
        self, lm: LanguageModel, keep: int, recent: int, heads_kept: int = 0, start: int = 0
    ) -> None:
        self.w = {k: lm.base.weights[k].astype(np.float64) for k in lm.base.weights}
        self.c, self.keep, self.recent = lm.config, keep, recent
        # head pruning (SpAtten): per step, heads ranked by Σ_{layers<start} Σ_i |O[i, h]|; from
        # layer `start` on only the `heads_kept` best run, and only earlier layers score the keys
        self.heads_kept, self.start = heads_kept, start
        self.k: list[np.ndarray] = [np.zeros((0, self.c.dim))] * self.c.layers
        self.v: list[np.ndarray] = [np.zeros((0, self.c.dim))] * self.c.layers
        self.pos = np.zeros(0, np.int64)
        self.score = np.zeros(0)
        self.survivors: list[np.ndarray] = []
        # slot reuse (decode steps): the slot the next token's row goes to; a slot below the
        # cache's size holds the token evicted by the last step
        self.free = 0

    def _ln(self, x: np.ndarray, p: str) -> np.ndarray:
        m, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(var + self.c.eps) * self.w[p + ".weight"] + self.w[p + ".bias"]

    def _lin(self, x: np.ndarray, p: str) -> np.ndarray:
        return x @ self.w[p + ".weight"].T + self.w[p + ".bias"]

    def run(self, ids: np.ndarray, start: int) -> np.ndarray:
        """Tokens ids at positions start.. (causal among themselves, all cached rows visible);
        returns their logits; appends their K/V, accumulates importance, then prunes."""
        n, h = ids.size, self.c.heads
        d = self.c.dim // h
        x = self.w["wte.weight"][ids] + self.w["wpe.weight"][start : start + n]
        reuse = n == 1 and self.free < self.pos.size  # the new row replaces the evicted one
        size = self.pos.size + (0 if reuse else n)
        step = np.zeros(size)
        mag = np.zeros(h)
        for i in range(self.c.layers):
            b = f"blocks.{i}."
            a = self._ln(x, b + "norm1")
            q, k, v = (self._lin(a, b + "attn." + t) for t in "qkv")
            if reuse:
                self.k[i][self.free], self.v[i][self.free] = k[0], v[0]
            else:
                self.k[i], self.v[i] = np.vstack([self.k[i], k]), np.vstack([self.v[i], v])
            kk, vv = self.k[i], self.v[i]
            m = kk.shape[0]
            s = np.einsum("ihd,jhd->hij", q.reshape(n, h, d), kk.reshape(m, h, d)) / np.sqrt(d)
            s[:, np.arange(m)[None, :] > np.arange(n)[:, None] + (m - n)] = -np.inf
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            o = np.einsum("hij,jhd->ihd", p, vv.reshape(m, h, d))
            if not self.heads_kept or i < self.start:
                step += p.sum(axis=(0, 1))
                mag += np.abs(o).sum(axis=(0, 2))
            else:
                kept = sorted(sorted(range(h), key=lambda j: (-mag[j], j))[: self.heads_kept])
                o[:, [j for j in range(h) if j not in kept]] = 0
            o = o.reshape(n, -1)
            x = x + self._lin(o, b + "attn.proj")
            f = self._lin(self._ln(x, b + "norm2"), b + "mlp.fc1")
            f = 0.5 * f * (1 + np.tanh(np.sqrt(2 / np.pi) * (f + 0.044715 * f**3)))
            x = x + self._lin(f, b + "mlp.fc2")
        if n == 1:  # a decode step: the new token in slot `free`, starting with its own score
            if not reuse:
                self.pos, self.score = np.append(self.pos, 0), np.append(self.score, 0.0)
            self.pos[self.free], self.score[self.free] = start, 0.0
            self.score = self.score + step
            if self.pos.size > self.keep:  # one leaves: the lowest score among the tokens
                # older than the newest `recent`, ties to the lower slot; its slot is reused
                old = [j for j in range(self.pos.size) if self.pos[j] <= start - self.recent]
                self.free = min(old, key=lambda j: (self.score[j], j))
            else:
                self.free = self.pos.size
            kept = np.arange(self.pos.size) != self.free
            self.survivors.append(np.sort(self.pos[kept]))
            return self._ln(x, "norm") @ self.w["wte.weight"].T
        self.pos = np.concatenate([self.pos, np.arange(start, start + n)])
        self.score = np.concatenate([self.score, np.zeros(n)]) + step
        if (
            self.pos.size > self.keep
        ):  # the prompt: highest score, newest `recent` kept, ties → older
            s = self.score.copy()
            s[-self.recent :] = np.inf
            order = sorted(range(s.size), key=lambda j: (-s[j], j))[: self.keep]
            idx = np.array(sorted(order))
            self.k = [t[idx] for t in self.k]
            self.v = [t[idx] for t in self.v]
            self.pos, self.score = self.pos[idx], self.score[idx]
        self.free = self.pos.size
        self.survivors.append(self.pos.copy())
        return self._ln(x, "norm") @ self.w["wte.weight"].T


def _lm() -> LanguageModel:
    return LanguageModel.of(randomize_weights(build("gpt2", seed=0, **SHAPE), seed=3))


@pytest.mark.parametrize(
    "keep,recent,heads", [(12, 1, 0), (12, 4, 0), (1000, 1, 0), (12, 4, 2), (1000, 1, 3)]
)
def test_reference_kv_prune_equals_numpy(keep: int, recent: int, heads: int) -> None:
    """Accumulated importance (over layers and steps), survivors and logits equal an independent
    numpy decode that prunes its own cache (keep=1000: nothing pruned, the plain accumulation);
    heads > 0: head-prune{keep=heads} first (start = layer 1 of 2), decided every step."""
    lm = _lm()
    ids = np.random.default_rng(0).integers(0, 96, size=40).astype(np.int32)
    prompt = 20
    pipe = f"kv-prune{{keep={keep} recent={recent}}}"
    pipe = f"head-prune{{keep={heads}}},{pipe}" if heads else pipe
    gen = Generator(lm, pipeline=pipe, target=None)
    logits, _ = gen.force(ids, prompt)
    sim = NumpyKV(lm, keep, recent, heads, start=1)
    want = [sim.run(ids[:prompt], 0)] + [sim.run(ids[t : t + 1], t) for t in range(prompt, 40)]
    np.testing.assert_allclose(logits, np.concatenate(want), rtol=1e-3, atol=1e-3)
    assert len(gen.survivors) == len(sim.survivors) == 40 - prompt + 1
    for got, exp in zip(gen.survivors, sim.survivors, strict=True):
        np.testing.assert_array_equal(got, exp)
    kept = np.arange(sim.pos.size) != sim.free  # the occupied slots, the same on both sides
    np.testing.assert_array_equal(gen.positions[: sim.pos.size][kept], sim.pos[kept])
    np.testing.assert_allclose(
        gen.scores[: sim.pos.size][kept], sim.score[kept], rtol=1e-4, atol=1e-5
    )
    assert gen.length == min(keep, 40) and gen.free == sim.free


@pytest.mark.parametrize(
    "heads,keep,recent,prompt",
    [
        ("", 24, 4, 40),
        ("head-prune{keep=2},", 24, 4, 40),
        ("quantize,", 24, 4, 40),
        ("", 40, 1, 12),
        ("", 40, 9, 12),
    ],
)
def test_kv_prune_survivors_interpreter_equals_reference(
    heads: str, keep: int, recent: int, prompt: int
) -> None:
    """The trained char-gpt, teacher-forced: the interpreter (IMPACC in the masked attention,
    fp16 K/V, the keep-k by kv_accumulate/kv_evict on the NPU, the scores resident) keeps exactly
    the cached tokens the reference executor keeps at every step (also with int8 weights, and
    with head pruning, whose masked head attention runs under run-time predicates; a prompt
    longer than keep is pruned once by the host, a shorter one fills the slots first; keep=40
    runs the 64-slot program, whose empty slots must never be chosen)."""
    require_char_gpt()
    lm = LanguageModel.of(load_model("char-gpt"))
    ids = encode(TEXT[:100], where="test")
    pipe = heads + f"kv-prune{{keep={keep} recent={recent}}}"
    runs = [Generator(lm, pipeline=pipe, target=t) for t in (None, "spatten")]
    preds = [g.force(ids, prompt)[0].argmax(-1) for g in runs]
    assert len(runs[0].survivors) == 100 - prompt + 1
    for step, (a, b) in enumerate(zip(runs[0].survivors, runs[1].survivors, strict=True)):
        assert a.tolist() == b.tolist(), f"step {step}"
        assert len(a) == min(keep, prompt + step) and a.max() == prompt + step - 1
    assert (preds[0] == preds[1]).mean() >= 0.95
    slots = BUCKET * -(-keep // BUCKET)
    assert runs[1].length == keep and f"decode{slots}" in runs[1]._forms
    # the carried scores live in the resident region: they are the reference's (fp16 K/V)
    assert runs[1].dram is not None
    held = runs[1].dram.rows("kv_scores")[: keep + 1, 0]
    occupied = np.arange(keep + 1) != runs[1].free
    np.testing.assert_array_equal(runs[0].positions[: keep + 1], runs[1].positions[: keep + 1])
    np.testing.assert_allclose(held[occupied], runs[0].scores[: keep + 1][occupied], rtol=0.05)


def test_kv_prune_dram_per_step_bounded_by_keep() -> None:
    """Dense decode reads more bytes as the context grows; pruned to keep=32 every step runs the
    32-slot program: its bytes equal a dense step's with ≤ 32 cached tokens, whatever the context."""
    lm = _lm()
    ids = np.random.default_rng(2).integers(0, 96, size=110).astype(np.int32)
    dense = Generator(lm, target="spatten", timing_only=True).force(ids, 20)[1]
    pruned = Generator(
        lm, pipeline=f"kv-prune{{keep={BUCKET}}}", target="spatten", timing_only=True
    ).force(ids, 20)[1]
    d_dram = {s.context: s.dram_bytes for s in dense[1:]}
    p_dram = [s.dram_bytes for s in pruned[1:]]
    assert d_dram[110] > d_dram[60] > d_dram[30]  # dense grows with the context (by bucket)
    # kv-prune adds per layer a load and a store of one fp32 score per key (DMA rounds each to
    # 32-byte bursts), and the keep-k on the NPU: kv_accumulate loads the carried scores, the
    # step's, the slot and a constant row and stores the carried scores; kv_evict loads the
    # scores, the mask, the positions and pos and stores the slot; the position of the new token
    # is SCATTERed into the resident positions row (LOAD slot, LOAD pos, SCATTER of 4 B, each at
    # most one burst): nothing grows with the context
    row = 4 * (BUCKET + 1) + 32  # one 4-byte value per slot, plus at most one partial burst
    extra = p_dram[0] - d_dram[21]
    assert 0 < extra <= SHAPE["layers"] * 2 * row + 7 * row + 3 * 32 + 3 * 32
    assert max(p_dram[BUCKET:]) == min(p_dram[BUCKET:]) == d_dram[30] + extra
    assert max(p_dram) < d_dram[110]


def test_kv_prune_bad_options() -> None:
    lm = _lm()
    with pytest.raises(WispError, match="recent"):
        Generator(lm, pipeline="kv-prune{keep=4 recent=5}", target=None)
    gen = Generator(lm, pipeline="token-prune{method=spatten keep=0.5}", target="spatten")
    with pytest.raises(WispError, match="kv-prune"):
        gen.prepare(8, 4)
