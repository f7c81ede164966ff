"""progressive-quant on the decode form: SpAtten's progressive K over the KV cache across steps.

Oracles: an independent numpy GPT-2 decode (tests/test_generation_kv.py's NumpyKV) that keeps its
own int8 K cache and applies the MSB-first / LSB-refetch rule itself (logits, survivors,
accumulated importance, decisions of both kinds seen); the op alone on random planes against a
numpy statement of its formula, interpreter vs reference bit for bit on the fp32 importance, and
the DRAM bytes of K: the MSB plane always, the LSB plane exactly for the refetching heads."""

from __future__ import annotations

import numpy as np
import pytest
from test_generation_kv import NumpyKV, _lm

from backend.compile import compile_module
from backend.interpreter.engine import run as npu_run
from compiler import reference
from compiler.errors import WispError
from compiler.generation.forms import LanguageModel
from compiler.generation.session import Generator
from compiler.ir import parse_module
from compiler.model import Model
from compiler.weights import WeightStore


def _rne_int8(x: np.ndarray, s: float) -> np.ndarray:
    return np.clip(np.rint(np.float32(x) * (np.float32(1) / np.float32(s))), -128, 127)


class NumpyProgressive(NumpyKV):
    """NumpyKV whose decode steps score keys as SpAtten's progressive quantization does: int8 q
    and K (the cache kept in int8), scores from K's top nibble first, recomputed with the full K
    for a head whose largest probability is below the threshold. Prefill stays float."""

    def __init__(self, lm: LanguageModel, keep: int, recent: int, thr: float, scales) -> None:
        super().__init__(lm, keep, recent)
        self.thr, self.scales = thr, scales  # scales(layer, cached) -> (sq, sk)
        self.kq: list[np.ndarray] = [np.zeros((0, self.c.dim))] * self.c.layers
        self.decisions: list[bool] = []
        self.max_p: list[float] = []  # each head's largest MSB-plane probability

    def run(self, ids: np.ndarray, start: int) -> np.ndarray:
        if ids.size > 1:  # the prompt: float attention (as the prefill program), then K → int8
            out = super().run(ids, start)
            return out
        return self._decode(int(ids[0]), start)

    def _decode(self, tok: int, pos: int) -> np.ndarray:
        h = self.c.heads
        d = self.c.dim // h
        x = self.w["wte.weight"][[tok]] + self.w["wpe.weight"][[pos]]
        step = np.zeros(self.pos.size + 1)
        for i in range(self.c.layers):
            b = f"blocks.{i}."
            a = self._ln(x, b + "norm1")
            q, k, v = (self._lin(a, b + "attn." + t) for t in "qkv")
            sq, sk = self.scales(i, self.pos.size)
            if self.kq[i].shape[0] < self.k[i].shape[0]:  # prompt rows, quantized once
                self.kq[i] = np.vstack(
                    [self.kq[i], _rne_int8(self.k[i][self.kq[i].shape[0] :], sk)]
                )
            self.kq[i] = np.vstack([self.kq[i], _rne_int8(k, sk)])
            self.k[i], self.v[i] = np.vstack([self.k[i], k]), np.vstack([self.v[i], v])
            qq, kk, vv = _rne_int8(q, sq), self.kq[i], self.v[i]
            deq = np.float32(np.float32(sq) * np.float32(sk))
            o = np.zeros((1, self.c.dim))
            for j in range(h):
                cols = slice(j * d, (j + 1) * d)

                def probs(
                    kh: np.ndarray,
                    cols: slice = cols,
                    qq: np.ndarray = qq,
                    deq: np.float32 = deq,
                ) -> np.ndarray:
                    s = np.float32(qq[:, cols] @ kh[:, cols].T) * np.float32(deq)
                    s = s * np.float32(1 / np.sqrt(d))
                    e = np.exp(s - s.max())
                    return e / e.sum()

                p = probs(np.floor_divide(kk, 16) * 16)
                self.max_p.append(float(p.max()))
                self.decisions.append(bool(p.max() < np.float32(self.thr)))
                if self.decisions[-1]:
                    p = probs(kk)
                step += p[0]
                o[:, cols] = p @ vv[:, cols]
            x = x + self._lin(o, b + "attn.proj")
            f = self._lin(self._ln(x, b + "norm2"), b + "mlp.fc1")
            f = 0.5 * f * (1 + np.tanh(np.sqrt(2 / np.pi) * (f + 0.044715 * f**3)))
            x = x + self._lin(f, b + "mlp.fc2")
        self.pos = np.concatenate([self.pos, [pos]])
        self.score = np.concatenate([self.score, [0.0]]) + step
        if self.pos.size > self.keep:
            s = self.score.copy()
            s[-self.recent :] = np.inf
            idx = np.array(sorted(sorted(range(s.size), key=lambda j: (-s[j], j))[: self.keep]))
            self.k = [t[idx] for t in self.k]
            self.v = [t[idx] for t in self.v]
            self.kq = [t[idx] for t in self.kq]
            self.pos, self.score = self.pos[idx], self.score[idx]
        self.survivors.append(self.pos.copy())
        return self._ln(x, "norm") @ self.w["wte.weight"].T


def _scales(gen: Generator):
    def get(layer: int, cached: int) -> tuple[float, float]:
        c = gen._forms[f"decode{gen.lm.slots_for(cached)}"]
        w = c.model.weights
        return (
            float(w[f"blocks.{layer}.attn.q_scale"][0]),
            float(w[f"blocks.{layer}.attn.k_scale"][0]),
        )

    return get


@pytest.mark.parametrize("keep", [12, 1000])
def test_reference_progressive_decode_equals_numpy(keep: int) -> None:
    """Logits, survivors and accumulated importance of the reference executor's progressive decode
    (with kv-prune; keep=1000: no pruning) equal the independent numpy decode; the inputs exercise
    both decisions (MSB plane enough, LSB refetched)."""
    lm = _lm()
    ids = np.random.default_rng(0).integers(0, 96, size=40).astype(np.int32)
    prompt, thr = 20, 0.25
    pipe = f"progressive-quant{{threshold={thr} block=1}},kv-prune{{keep={keep} recent=4}}"
    gen = Generator(lm, pipeline=pipe, target=None)
    logits, _ = gen.force(ids, prompt)
    sim = NumpyProgressive(lm, keep, 4, thr, _scales(gen))
    want = [sim.run(ids[:prompt], 0)] + [sim.run(ids[t : t + 1], t) for t in range(prompt, 40)]
    np.testing.assert_allclose(logits, np.concatenate(want), rtol=1e-3, atol=1e-3)
    for got, exp in zip(gen.survivors, sim.survivors, strict=True):
        np.testing.assert_array_equal(got, exp)
    np.testing.assert_allclose(gen.scores[: gen.length], sim.score, rtol=1e-4, atol=1e-5)
    assert any(sim.decisions) and not all(sim.decisions)
    # every decode bucket carries the same K scales (one int8 cache serves them all)
    assert gen.k_scales is not None and len(gen.k_scales) == lm.config.layers


def test_interpreter_progressive_decode_close_to_reference() -> None:
    """The interpreter runs the same progressive decode steps: the same argmax predictions on
    nearly every step, kv-prune survivors equal the reference's."""
    lm = _lm()
    ids = np.random.default_rng(1).integers(0, 96, size=44).astype(np.int32)
    pipe = "progressive-quant{threshold=0.25 block=1},kv-prune{keep=16 recent=4}"
    runs = [Generator(lm, pipeline=pipe, target=t) for t in (None, "spatten")]
    preds = [g.force(ids, 20)[0].argmax(-1) for g in runs]
    assert (preds[0] == preds[1]).mean() >= 0.9
    same = sum(a.tolist() == b.tolist() for a, b in zip(*(g.survivors for g in runs), strict=True))
    assert same >= 0.9 * len(runs[0].survivors)


# ---------------------------------------------------------------- the op alone

S, N, H, D = 31, 1, 2, 16
Q = 12  # |q| bound: scores peaked enough on some heads, flat on others
KEYS = S + N


def _op_module(thr: float) -> Model:
    f = H * D
    pl = f"tensor<{H}x{KEYS}x{D}xi4>"  # head-major K planes with the new key's slot
    props = (
        f"heads = {H}, qk_dim = {D}, v_dim = {D}, scale = 0.25, causal = false,"
        f" threshold = {thr!r}, block = 1"
    )
    types = (
        f"tensor<1x{f}xi8>, tensor<{N}x{f}xi8>, tensor<1xf32>, tensor<1xf32>, tensor<{KEYS}xi32>,"
        f" {pl}, {pl}"
    )
    text = f"""
func.func @main(%q: tensor<1x{f}xi8>, %k: tensor<{N}x{f}xi8>, %v: tensor<{KEYS}x{f}xf32>, %mask: tensor<{KEYS}xi32>, %msb: {pl}, %lsb: {pl}) -> (tensor<1x{f}xf32>, tensor<{KEYS}xf32>) {{
  %sq = nn.weight @sq : tensor<1xf32>
  %sk = nn.weight @sk : tensor<1xf32>
  %o = quant.progressive_kv_attention %q, %k, %v, %sq, %sk, %mask, %msb, %lsb {{{props}}} : (tensor<1x{f}xi8>, tensor<{N}x{f}xi8>, tensor<{KEYS}x{f}xf32>, tensor<1xf32>, tensor<1xf32>, tensor<{KEYS}xi32>, {pl}, {pl}) -> tensor<1x{f}xf32>
  %s = quant.progressive_kv_importance %q, %k, %sq, %sk, %mask, %msb, %lsb {{{props}}} : ({types}) -> tensor<{KEYS}xf32>
  func.return %o, %s : tensor<1x{f}xf32>, tensor<{KEYS}xf32>
}}"""
    w = WeightStore({"sq": np.array([0.05], np.float32), "sk": np.array([0.04], np.float32)})
    return Model("pkv", parse_module(text), w)


def _op_inputs(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    kq = rng.integers(-128, 128, (KEYS, H * D))
    kq[:, D:] //= 3  # head 1 flatter than head 0
    mask = (rng.random(KEYS) < 0.7).astype(np.int32)
    mask[-1] = 1
    x = {
        "q": rng.integers(-Q, Q + 1, (1, H * D)).astype(np.int8),
        "k": kq[S:].astype(np.int8),
        "v": rng.standard_normal((KEYS, H * D)).astype(np.float16).astype(np.float32),
        "mask": mask,
        # head-major planes [H, S + N, D]: the top nibble in [-8, 7], the low nibble's bits as
        # int4; the new key's slot holds garbage the op must ignore
        "msb": np.full((H, KEYS, D), 7, np.int8),
        "lsb": np.full((H, KEYS, D), -3, np.int8),
    }
    for h in range(H):
        c = kq[:S, h * D : (h + 1) * D]
        x["msb"][h, :S] = c >> 4
        x["lsb"][h, :S] = ((c & 15) ^ 8) - 8
    return x, kq


def _op_formula(x: dict[str, np.ndarray], kq: np.ndarray, thr: float):
    """The op's docstring, stated again: per head P from the MSB plane under the mask, the full K
    below the threshold; the importance = Σ_h P."""
    deq = np.float32(np.float32(0.05) * np.float32(0.04))
    out, score, dec = np.zeros((1, H * D)), np.zeros(KEYS, np.float32), []
    for h in range(H):
        c = slice(h * D, (h + 1) * D)

        def probs(kk: np.ndarray, c: slice = c) -> np.ndarray:
            s = (x["q"][:, c].astype(np.int64) @ kk[:, c].T).astype(np.float32) * deq
            s = s * np.float32(0.25)
            s[:, x["mask"] == 0] = -np.inf
            e = np.exp(s - s.max())
            return e / e.sum()

        p = probs((kq // 16) * 16)
        dec.append(bool(p.max() < np.float32(thr)))
        if dec[-1]:
            p = probs(kq)
        score += p[0]
        out[:, c] = p @ x["v"][:, c]
    return out, score, dec


def test_op_formula_interpreter_and_dram() -> None:
    thr = 0.1
    model = _op_module(thr)
    progs = {t: compile_module(_op_module(t).module, model.weights, "spatten").program
             for t in (0.0, thr, 2.0)}  # fmt: skip
    decisions = []
    for seed in range(6):
        x, kq = _op_inputs(seed)
        want, score, dec = _op_formula(x, kq, thr)
        decisions += dec
        ref = reference.run(model, x)
        np.testing.assert_allclose(ref["out0"], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ref["out1"], score, rtol=1e-6, atol=1e-7)
        runs = {t: npu_run(p, x) for t, p in progs.items()}
        npu = runs[thr]
        # the same decisions and fp32 probabilities: the importance is equal bit for bit
        np.testing.assert_array_equal(npu.outputs["out1"], ref["out1"])
        np.testing.assert_allclose(npu.outputs["out0"], ref["out0"], rtol=2e-2, atol=2e-2)
        # DRAM bytes read from the inputs (cached planes, V, mask, q, k): never refetching reads
        # the MSB plane only; each refetching head adds its LSB plane (the same bytes per head),
        # nothing else changes
        b = {t: r.report.dram_by_region["inputs"] for t, r in runs.items()}
        lsb_head = (b[2.0] - b[0.0]) / H
        assert lsb_head >= KEYS * D // 2
        assert b[thr] == b[0.0] + sum(dec) * lsb_head, (seed, dec)
        for r in runs.values():
            assert sum(r.report.dram_by_region.values()) == r.report.dram_read + r.report.dram_write
    assert any(decisions) and not all(decisions)


def test_progressive_after_kv_prune_is_refused() -> None:
    lm = _lm()
    gen = Generator(lm, pipeline="kv-prune{keep=8},progressive-quant", target=None)
    with pytest.raises(WispError, match="put progressive-quant before kv-prune"):
        gen.prepare(4, 3)
