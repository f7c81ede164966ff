"""Generation with a KV cache: the prefill + cached decode steps give the logits of a full
recomputation (the plain GPT-2 forward over the whole sequence), on the reference executor and
on the interpreter; decode cost grows linearly with the cache; bad requests are one error line."""

from __future__ import annotations

import numpy as np
from frontdoor_util import REDUCED, randomize_weights

from compiler import reference as ref
from compiler.generation.forms import BUCKET, LanguageModel
from compiler.generation.session import Generator
from compiler.models import build

SHAPE = {**REDUCED["gpt2"], "vocab": 96}


def _lm() -> LanguageModel:
    return LanguageModel.of(randomize_weights(build("gpt2", seed=0, **SHAPE), seed=3))


def _full_logits(lm: LanguageModel, ids: np.ndarray) -> np.ndarray:
    """The oracle: the plain full-sequence forward (no cache) over all of ids."""
    full = build("gpt2", seed=0, **{**SHAPE, "seq": int(ids.size)})
    full.weights = lm.base.weights.copy()
    return ref.run(full, {"ids": ids})["out0"]


def _cached_logits(gen: Generator, ids: np.ndarray, prompt: int) -> np.ndarray:
    """Prefill ids[:prompt], then feed the rest one token at a time through the decode form."""
    logits, _ = gen.prefill(ids[:prompt])
    rows = [logits]
    for t in ids[prompt:]:
        row, _, _ = gen.decode(int(t))
        rows.append(row[None])
    return np.concatenate(rows)


def test_reference_cached_decode_equals_recomputation() -> None:
    lm = _lm()
    ids = np.random.default_rng(0).integers(0, 96, size=BUCKET + 6).astype(np.int32)
    prompt = BUCKET - 3  # decode steps cross from the first bucket into the second
    got = _cached_logits(Generator(lm, target=None), ids, prompt)
    want = _full_logits(lm, ids)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_interpreter_cached_decode_equals_recomputation() -> None:
    lm = _lm()
    ids = np.random.default_rng(1).integers(0, 96, size=BUCKET + 3).astype(np.int32)
    gen = Generator(lm, target="spatten")
    got = _cached_logits(gen, ids, BUCKET - 1)
    want = _full_logits(lm, ids)
    scale = float(np.abs(want).max())
    assert float(np.abs(got - want).max()) <= 2e-2 * scale  # fp16 activations and cache
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9
    assert set(gen._forms) == {f"prefill{BUCKET - 1}", f"decode{BUCKET}", f"decode{2 * BUCKET}"}
