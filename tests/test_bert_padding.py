"""BERT with an attention mask, token types and several outputs, against an independent numpy BERT.

The numpy forward below is written from HF's BertModel, in float64, and masks padding by *dropping* the
padded keys from each softmax (not by −inf), so it does not share the executor's formulation. Padded
tokens must not change the unpadded tokens' outputs, and the compiled NPU program must agree too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from frontdoor_util import randomize_weights

from backend.compile import compile_module
from backend.interpreter import run
from compiler import reference
from compiler.errors import WispError
from compiler.model import Model
from compiler.models import build

SHAPE = {"layers": 2, "dim": 32, "heads": 4, "mlp_dim": 48, "seq": 12, "vocab": 50, "classes": 3}


def _bert(**kw: object) -> Model:
    opts = {"attention_mask": True, "token_types": True, "outputs": "hidden,pooled,logits", **kw}
    return randomize_weights(build("bert-tiny", **SHAPE, **opts))  # type: ignore[arg-type]


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-12) * g + b


def numpy_bert(
    m: Model, ids: np.ndarray, mask: np.ndarray, types: np.ndarray
) -> dict[str, np.ndarray]:
    c = m.meta["config"]
    w = {k: np.asarray(v, np.float64) for k, v in m.weights.items()}

    def lin(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    x = np.stack(
        [
            w["embeddings.word.weight"][t] + w["embeddings.position.weight"][i]
            + w["embeddings.token_type.weight"][s]
            for i, (t, s) in enumerate(zip(ids, types, strict=True))
        ]
    )  # fmt: skip
    x = _ln(x, w["embeddings.norm.weight"], w["embeddings.norm.bias"])
    kept = [j for j in range(len(ids)) if mask[j] == 1]
    h, d = c["heads"], c["dim"] // c["heads"]
    for layer in range(c["layers"]):
        p = f"blocks.{layer}"
        q, k, v = (lin(x, f"{p}.attn.{n}") for n in "qkv")
        out = np.zeros_like(q)
        for hh in range(h):
            cols = slice(hh * d, (hh + 1) * d)
            for i in range(len(ids)):
                s = np.array([q[i, cols] @ k[j, cols] / math.sqrt(d) for j in kept])
                e = np.exp(s - s.max())
                out[i, cols] = sum(pj * v[j, cols] for pj, j in zip(e / e.sum(), kept, strict=True))
        x = _ln(x + lin(out, f"{p}.attn.proj"), w[f"{p}.norm1.weight"], w[f"{p}.norm1.bias"])
        f = lin(x, f"{p}.mlp.fc1")
        f = 0.5 * f * (1 + np.vectorize(math.erf)(f / math.sqrt(2)))
        x = _ln(x + lin(f, f"{p}.mlp.fc2"), w[f"{p}.norm2.weight"], w[f"{p}.norm2.bias"])
    pooled = np.tanh(lin(x[0:1], "pooler"))
    return {"hidden": x, "pooled": pooled, "logits": lin(pooled, "classifier")}


def _inputs(n_real: int, seed: int = 0, pad_id: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seq = SHAPE["seq"]
    ids = rng.integers(1, SHAPE["vocab"], seq).astype(np.int32)
    ids[n_real:] = pad_id
    types = (np.arange(seq) >= n_real // 2).astype(np.int32)
    types[n_real:] = 0
    mask = (np.arange(seq) < n_real).astype(np.int32)
    return {"ids": ids, "attention_mask": mask, "token_type_ids": types}


def test_inputs_and_outputs_are_declared() -> None:
    m = _bert()
    assert list(m.input_specs()) == ["ids", "attention_mask", "token_type_ids"]
    outs = reference.run(m, _inputs(7))
    assert [outs[k].shape for k in ("out0", "out1", "out2")] == [(12, 32), (1, 32), (1, 3)]


@pytest.mark.parametrize("n_real", [12, 7, 1])
def test_reference_matches_numpy_bert_with_padding(n_real: int) -> None:
    m = _bert()
    x = _inputs(n_real)
    got = reference.run(m, x, dtype=np.float64)
    want = numpy_bert(m, x["ids"], x["attention_mask"], x["token_type_ids"])
    for i, name in enumerate(("hidden", "pooled", "logits")):
        err = float(np.abs(got[f"out{i}"] - want[name]).max())
        assert err < 1e-9, (name, err)


def test_padding_does_not_change_real_tokens() -> None:
    """Other pad ids, other pad token types and more padding leave the real tokens' outputs equal."""
    m = _bert()
    a = _inputs(7)
    b = {k: v.copy() for k, v in a.items()}
    b["ids"][7:] = [3, 17, 44, 9, 1]
    b["token_type_ids"][7:] = 1
    ya, yb = reference.run(m, a), reference.run(m, b)
    np.testing.assert_allclose(ya["out0"][:7], yb["out0"][:7], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ya["out2"], yb["out2"], rtol=0, atol=1e-5)
    short = build("bert-tiny", **{**SHAPE, "seq": 7}, token_types=True, outputs="hidden")
    short.weights = m.weights  # same weights; position table rows 0..6 are the same rows
    ys = reference.run(short, {k: a[k][:7] for k in ("ids", "token_type_ids")})["out0"]
    np.testing.assert_allclose(ya["out0"][:7], ys, rtol=0, atol=1e-5)


def test_token_types_matter() -> None:
    m = _bert()
    a = _inputs(12)
    b = {**a, "token_type_ids": 1 - a["token_type_ids"]}
    assert np.abs(reference.run(m, a)["out0"] - reference.run(m, b)["out0"]).max() > 1e-3


def test_npu_matches_reference_and_ignores_padding() -> None:
    m = _bert(outputs="hidden,logits")
    c = compile_module(m.module, m.weights, "spatten")
    a = _inputs(7)
    b = {**a, "ids": np.where(a["attention_mask"] == 1, a["ids"], 31).astype(np.int32)}
    ra, rb = (run(c.program, x, "spatten").outputs for x in (a, b))
    ref = reference.run(m, a)
    for k in ("out0", "out1"):
        scale = max(1.0, float(np.abs(ref[k]).max()))
        assert float(np.abs(ra[k].astype(np.float32) - ref[k]).max()) <= 1e-2 * scale
    assert np.array_equal(ra["out0"][:7], rb["out0"][:7])  # padded keys are exactly excluded
    assert np.array_equal(ra["out1"], rb["out1"])


def test_bad_outputs_option() -> None:
    with pytest.raises(WispError, match="outputs must be distinct names"):
        build("bert-tiny", outputs="hidden,foo")
    with pytest.raises(WispError, match="does not apply"):
        build("gpt2", attention_mask=True)
