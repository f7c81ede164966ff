"""SpAtten importance in the reference reuses the probabilities its nn.attention computed (same
q, k arrays): no second softmax, and the outputs are bit-identical to recomputing them."""

from __future__ import annotations

import numpy as np
import pytest

import compiler.reference as R
import compiler.reference_tokens as RT
from compiler.datasets import load_digits_test
from compiler.loading import load_model
from compiler.pipeline import run_pipeline


def test_received_importance_reuses_the_attention_probabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = load_model("digits-vit")
    run_pipeline(m, "token-prune{method=spatten keep=0.5}", quiet=True)
    images, _ = load_digits_test()
    cached = [R.run(m, {"image": x})["out0"] for x in images[:8]]

    def no_recompute(*args: object, **kw: object) -> np.ndarray:
        raise AssertionError("tokens.importance recomputed the attention probabilities")

    monkeypatch.setattr(RT, "attention_probs", no_recompute)
    again = [R.run(m, {"image": x})["out0"] for x in images[:8]]  # must not recompute
    monkeypatch.undo()

    class NoCache(dict):
        def __setitem__(self, key: object, value: object) -> None:
            pass

    init = R.Context.__init__

    def without_cache(self: R.Context, weights: object, dtype: object) -> None:
        init(self, weights, dtype)  # type: ignore[arg-type]
        self.probs = NoCache()

    monkeypatch.setattr(R.Context, "__init__", without_cache)
    recomputed = [R.run(m, {"image": x})["out0"] for x in images[:8]]
    for a, b, c in zip(cached, again, recomputed, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
