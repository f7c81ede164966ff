"""Generation with a KV cache: the prefill + cached decode steps give the logits of a full
recomputation (the plain GPT-2 forward over the whole sequence), on the reference executor and
on the interpreter; decode cost grows linearly with the cache; bad requests are one error line."""

from __future__ import annotations

import numpy as np
import pytest
from frontdoor_util import REDUCED, randomize_weights

from compiler import reference as ref
from compiler.generation.forms import BUCKET, LanguageModel
from compiler.generation.session import Generator, Sampler
from compiler.models import build

SHAPE = {**REDUCED["gpt2"], "vocab": 96}


def require_char_gpt() -> None:
    from importlib import resources

    if not (resources.files("compiler") / "data" / "char_gpt.weights.npz").is_file():
        pytest.skip("char-gpt weights not bundled")


def _lm() -> LanguageModel:
    return LanguageModel.of(randomize_weights(build("gpt2", seed=0, **SHAPE), seed=3))


def _full_logits(lm: LanguageModel, ids: np.ndarray) -> np.ndarray:
    """The oracle: the plain full-sequence forward (no cache) over all of ids."""
    full = build("gpt2", seed=0, **{**SHAPE, "seq": int(ids.size)})
    full.weights = lm.base.weights.copy()
    return ref.run(full, {"ids": ids})["out0"]


def _cached_logits(gen: Generator, ids: np.ndarray, prompt: int) -> np.ndarray:
    """Prefill ids[:prompt], then feed the rest one token at a time through the decode form."""
    return gen.force(ids, prompt)[0]


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


def test_decode_dram_grows_linearly_with_the_cache() -> None:
    """Dense decode: each 32 more cache slots add the same DRAM bytes, at least the new slots'
    K and V read once per layer; the cache is appended in place (DRAM writes do not grow)."""
    lm = _lm()
    gen = Generator(lm, target="spatten")
    assert gen.in_place  # the cache resident in DRAM: only ids, pos, mask and slot are inputs
    reads, writes = [], []
    for slots in (BUCKET, 2 * BUCKET, 3 * BUCKET):
        c = gen.decode_form(slots)
        assert c.compiled.input_names == ["ids", "pos", "mask", "slot"]
        inputs = {
            "ids": np.array([1], np.int32),
            "pos": np.array([slots], np.int32),
            "mask": np.ones(slots + 1, np.int32),
            "slot": np.array([slots], np.int32),
        }
        r = c.run(inputs, timing_only=True).report
        reads.append(r.dram_read)
        writes.append(r.dram_write)
    step = reads[1] - reads[0]
    assert reads[2] - reads[1] == step
    new_cache = SHAPE["layers"] * 2 * BUCKET * SHAPE["dim"] * 2  # K and V, fp16
    assert step >= new_cache
    assert writes[0] == writes[1] == writes[2]


BAD = [
    (["--prompt", ""], "--prompt is empty"),
    (
        ["--prompt", "déf ✓"],
        "outside the model's vocabulary (newline and printable ASCII): 'é', '✓'",
    ),
    (["--prompt", "x" * 257], "--prompt has 257 characters, longer than char-gpt's context of 256"),
    (["--prompt", "def ", "--tokens", "254"], "--tokens 254 after a 4-character prompt exceeds"),
    (["--prompt", "def ", "--tokens", "0"], "--tokens must be at least 1"),
    (["--prompt", "def ", "--temperature", "-1"], "--temperature must be positive"),
    (
        ["--prompt", "def ", "--target", "none", "-p", "token-prune"],
        "pipeline 'token-prune' cannot apply to the decode step",
    ),
    (
        ["--prompt", "def ", "-p", "kv-prune{keep=4 recent=5}"],
        "kv-prune{keep=4 recent=5}: need 1 ≤ recent ≤ keep",
    ),
    (
        ["--prompt", "def ", "--target", "none", "-p", "kv-prune{keep=8},head-prune{keep=2}"],
        "run head-prune before kv-prune",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m[:24] for _, m in BAD])
def test_generate_bad_input_is_one_error_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from compiler.cli.wisp import main

    require_char_gpt()
    code = main(
        ["generate", "char-gpt", *args, "--tokens", "2"]
        if "--tokens" not in args
        else ["generate", "char-gpt", *args]
    )
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("wisp: error: "), err
    assert message in lines[0]
    assert out == ""  # nothing streamed before the error


def _numpy_gpt(w: dict[str, np.ndarray], ids: np.ndarray, layers: int, heads: int) -> np.ndarray:
    """An independent float64 GPT-2 forward (pre-LN, causal, tanh GELU, tied head)."""

    def ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        m = x.mean(-1, keepdims=True)
        return (x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b

    n = ids.size
    x = w["wte.weight"][ids] + w["wpe.weight"][:n]
    d = x.shape[1] // heads
    hidden = np.triu(np.ones((n, n), bool), 1)
    for i in range(layers):
        p = f"blocks.{i}."
        h = ln(x, w[p + "norm1.weight"], w[p + "norm1.bias"])
        q, k, v = (
            (h @ w[f"{p}attn.{t}.weight"].T + w[f"{p}attn.{t}.bias"]).reshape(n, heads, d)
            for t in "qkv"
        )
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(d)
        s[:, hidden] = -np.inf
        e = np.exp(s - s.max(-1, keepdims=True))
        a = np.einsum("hqk,khd->qhd", e / e.sum(-1, keepdims=True), v).reshape(n, -1)
        x = x + a @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"]
        h = ln(x, w[p + "norm2.weight"], w[p + "norm2.bias"])
        h = h @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"]
        h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
        x = x + h @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]
    return ln(x, w["norm.weight"], w["norm.bias"]) @ w["wte.weight"].T


def test_lm_eval_matches_an_independent_forward() -> None:
    """`wisp eval`'s accuracy and bits/char for a language model, against a numpy GPT-2 over the
    same held-out windows (consecutive, non-overlapping, next character as the target)."""
    from compiler.generation.lm_eval import evaluate_lm, heldout_text
    from compiler.models.char_vocab import VOCAB

    seq = 24
    model = randomize_weights(build("gpt2", seed=0, **{**SHAPE, "seq": seq}), seed=5)
    got = evaluate_lm(model, limit=2)
    w = {k: model.weights[k].astype(np.float64) for k in model.weights}
    text = heldout_text()[: 2 * seq + 1]
    ids = np.array([VOCAB.index(ch) for ch in text])
    hits, nats = 0, 0.0
    for i in range(2):
        x, y = ids[i * seq : (i + 1) * seq], ids[i * seq + 1 : (i + 1) * seq + 1]
        logits = _numpy_gpt(w, x, SHAPE["layers"], SHAPE["heads"])
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nats -= logp[np.arange(seq), y].sum()
        hits += int((logits.argmax(-1) == y).sum())
    assert got.total == 2 * seq
    assert got.correct == hits
    assert abs(got.bits_per_char - nats / (2 * seq) / np.log(2)) < 1e-4


def test_greedy_generation_equals_repeated_full_forwards() -> None:
    """Greedy text from prefill + cached decode = argmax of the plain forward re-run on the
    growing sequence; sampling with a seed is reproducible."""
    from compiler.models.char_vocab import VOCAB, encode

    lm = _lm()
    prompt = "def f(x):\n    return "
    got = "".join(s.text for s in Generator(lm, target=None).generate(prompt, 6))
    ids = list(encode(prompt))
    for _ in range(6):
        ids.append(int(_full_logits(lm, np.array(ids, np.int32))[-1].argmax()))
    assert got == "".join(VOCAB[i] for i in ids[len(prompt) :])

    def sampled(seed: int) -> str:
        gen = Generator(lm, target=None)
        return "".join(s.text for s in gen.generate(prompt, 6, Sampler(1.0, seed)))

    assert sampled(3) == sampled(3)
