"""The reference executor against an independent, deliberately plain numpy forward of each zoo family.

The forwards below are written from the architecture definitions (ViT/DeiT, BERT, GPT-2), not from the
IR: they read weights from the WeightStore by name, compute in float64 with per-head loops, an explicit
patch loop for the conv patch embedding, `math.erf` for exact GELU and an explicit causal mask. Nothing is
imported from `compiler.reference` except `run`, the thing under test.

Run with `-s` to see the max abs errors.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
from frontdoor_util import (
    FAMILY,
    REDUCED,
    build_reduced,
    max_abs,
    random_inputs,
    randomize_weights,
    require_digits,
)

from compiler import reference
from compiler.errors import WispError
from compiler.model import Model
from compiler.models import build

F64 = np.float64


class Weights:
    """Reads weights by name as float64 and records which names were read."""

    def __init__(self, model: Model) -> None:
        self.store = model.weights
        self.used: set[str] = set()

    def __call__(self, name: str) -> np.ndarray:
        self.used.add(name)
        return np.asarray(self.store[name], dtype=F64)


# ---- building blocks, float64, written out longhand ---------------------------------------------


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """PyTorch nn.Linear: w is [out, in]."""
    y = np.einsum("ti,oi->to", x, w)
    return y if b is None else y + b[None, :]


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    out = np.empty_like(x)
    n = x.shape[-1]
    for t in range(x.shape[0]):
        row = x[t]
        mu = sum(row) / n
        var = sum((v - mu) ** 2 for v in row) / n
        out[t] = (row - mu) / math.sqrt(var + eps) * g + b
    return out


_erf = np.vectorize(math.erf, otypes=[F64])


def gelu_erf(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def attention(x: np.ndarray, w: Weights, prefix: str, heads: int, causal: bool) -> np.ndarray:
    """Multi-head self-attention with separate q/k/v projections and an output projection."""
    q = linear(x, w(f"{prefix}.q.weight"), w(f"{prefix}.q.bias"))
    k = linear(x, w(f"{prefix}.k.weight"), w(f"{prefix}.k.bias"))
    v = linear(x, w(f"{prefix}.v.weight"), w(f"{prefix}.v.bias"))
    tokens, dim = x.shape
    dh = dim // heads
    out = np.zeros((tokens, dim), F64)
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        qh, kh, vh = q[:, cols], k[:, cols], v[:, cols]
        for i in range(tokens):
            scores = np.array([float(qh[i] @ kh[j]) / math.sqrt(dh) for j in range(tokens)])
            if causal:
                scores[i + 1 :] = -np.inf
            p = np.exp(scores - scores.max())
            p /= p.sum()
            out[i, cols] = p @ vh
    return linear(out, w(f"{prefix}.proj.weight"), w(f"{prefix}.proj.bias"))


def mlp(
    x: np.ndarray, w: Weights, prefix: str, act: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    hidden = act(linear(x, w(f"{prefix}.fc1.weight"), w(f"{prefix}.fc1.bias")))
    return linear(hidden, w(f"{prefix}.fc2.weight"), w(f"{prefix}.fc2.bias"))


def ln(x: np.ndarray, w: Weights, prefix: str, eps: float) -> np.ndarray:
    return layer_norm(x, w(f"{prefix}.weight"), w(f"{prefix}.bias"), eps)


# ---- the three families -------------------------------------------------------------------------


def vit_forward(model: Model, image: np.ndarray) -> np.ndarray:
    """ViT/DeiT: conv patch embedding, CLS concat, + pos, pre-LN blocks (erf GELU), final LN on CLS, head."""
    c = model.meta["config"]
    w = Weights(model)
    img = np.asarray(image, F64)
    p, dim, eps = c["patch"], c["dim"], c["eps"]
    assert eps == 1e-6  # timm's ViT/DeiT LayerNorm eps
    channels, size = c["channels"], c["image"]
    assert img.shape == (channels, size, size)
    kernel = w("patch_embed.weight").reshape(dim, channels, p, p)  # conv weight [D, C, p, p]
    bias = w("patch_embed.bias")
    grid = size // p
    patches = np.zeros((grid * grid, dim), F64)
    for gi in range(grid):
        for gj in range(grid):
            window = img[:, gi * p : (gi + 1) * p, gj * p : (gj + 1) * p]
            patches[gi * grid + gj] = np.einsum("dchw,chw->d", kernel, window) + bias
    x = np.concatenate([w("cls_token").reshape(1, dim), patches], axis=0) + w("pos_embed")
    for i in range(c["layers"]):
        b = f"blocks.{i}"
        x = x + attention(ln(x, w, f"{b}.norm1", eps), w, f"{b}.attn", c["heads"], causal=False)
        x = x + mlp(ln(x, w, f"{b}.norm2", eps), w, f"{b}.mlp", gelu_erf)
    cls = ln(x[0:1], w, "norm", eps)
    out = linear(cls, w("head.weight"), w("head.bias"))
    assert w.used == set(model.weights), f"weights not read: {set(model.weights) - w.used}"
    return out


def bert_forward(model: Model, ids: np.ndarray) -> np.ndarray:
    """BERT: word + position + token-type(row 0) embeddings, LN, post-LN blocks, tanh pooler, classifier."""
    c = model.meta["config"]
    w = Weights(model)
    eps = c["eps"]
    assert eps == 1e-12
    seq = len(ids)
    word = w("embeddings.word.weight")
    pos = w("embeddings.position.weight")
    segment = w("embeddings.token_type.weight")
    x = np.stack([word[int(t)] + pos[i] + segment[0] for i, t in enumerate(ids)])
    assert x.shape == (seq, c["dim"])
    x = ln(x, w, "embeddings.norm", eps)
    for i in range(c["layers"]):
        b = f"blocks.{i}"
        x = ln(x + attention(x, w, f"{b}.attn", c["heads"], causal=False), w, f"{b}.norm1", eps)
        x = ln(x + mlp(x, w, f"{b}.mlp", gelu_erf), w, f"{b}.norm2", eps)
    pooled = np.tanh(linear(x[0:1], w("pooler.weight"), w("pooler.bias")))
    out = linear(pooled, w("classifier.weight"), w("classifier.bias"))
    assert w.used == set(model.weights), f"weights not read: {set(model.weights) - w.used}"
    return out


def gpt2_forward(model: Model, ids: np.ndarray) -> np.ndarray:
    """GPT-2: wte + wpe, pre-LN causal blocks (tanh GELU), final LN, logits tied to wte."""
    c = model.meta["config"]
    w = Weights(model)
    eps = c["eps"]
    assert eps == 1e-5
    wte = w("wte.weight")
    wpe = w("wpe.weight")
    x = np.stack([wte[int(t)] + wpe[i] for i, t in enumerate(ids)])
    for i in range(c["layers"]):
        b = f"blocks.{i}"
        x = x + attention(ln(x, w, f"{b}.norm1", eps), w, f"{b}.attn", c["heads"], causal=True)
        x = x + mlp(ln(x, w, f"{b}.norm2", eps), w, f"{b}.mlp", gelu_tanh)
    x = ln(x, w, "norm", eps)
    logits = linear(x, wte, None)
    assert w.used == set(model.weights), f"weights not read: {set(model.weights) - w.used}"
    return logits


FORWARD: dict[str, Callable[[Model, np.ndarray], np.ndarray]] = {
    "vit": vit_forward,
    "bert": bert_forward,
    "gpt2": gpt2_forward,
}


def numpy_forward(model: Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    (x,) = inputs.values()
    return FORWARD[FAMILY[model.name]](model, x)


# ---- tests --------------------------------------------------------------------------------------


def _rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs error relative to the output's magnitude (the zoo init gives small outputs)."""
    return max_abs(got, want) / float(np.max(np.abs(want)))


@pytest.mark.parametrize("randomized", [True, False], ids=["random-weights", "zoo-init"])
@pytest.mark.parametrize("name", sorted(REDUCED))
def test_reference_matches_numpy(name: str, randomized: bool) -> None:
    model = build_reduced(name)
    if randomized:
        randomize_weights(model)
    inputs = random_inputs(model)
    want = numpy_forward(model, inputs)
    assert np.all(np.isfinite(want))
    # The oracle must not be trivially small: a forward that returns ~0 would match anything.
    assert float(np.std(want)) > (1e-3 if randomized else 1e-6)

    got64 = reference.run(model, inputs, dtype=np.float64)["out0"]
    got32 = reference.run(model, inputs)["out0"]
    assert got64.dtype == np.float64 and got32.dtype == np.float32
    assert got64.shape == want.shape == got32.shape
    err64, err32 = max_abs(got64, want), max_abs(got32, want)
    print(
        f"\n{name} ({'random' if randomized else 'zoo-init'}): max|y|={np.max(np.abs(want)):.3g}"
        f"  f64 max abs err {err64:.3g}  f32 max abs err {err32:.3g}"
    )
    assert _rel_err(got64, want) < 1e-9
    assert _rel_err(got32, want) < 1e-4


def test_gpt2_is_causal_in_the_reference() -> None:
    """Changing the last token changes only the last row of GPT-2's logits (and the numpy oracle agrees)."""
    model = randomize_weights(build_reduced("gpt2"))
    inputs = random_inputs(model)
    ids2 = inputs["ids"].copy()
    ids2[-1] = (ids2[-1] + 1) % REDUCED["gpt2"]["vocab"]
    a = reference.run(model, inputs, dtype=np.float64)["out0"]
    b = reference.run(model, {"ids": ids2}, dtype=np.float64)["out0"]
    np.testing.assert_array_equal(a[:-1], b[:-1])
    assert max_abs(a[-1], b[-1]) > 1e-6
    np.testing.assert_allclose(b, numpy_forward(model, {"ids": ids2}), rtol=0, atol=1e-9)


def test_bert_position_and_pooler_matter() -> None:
    """Swapping two tokens changes BERT's pooled output (positions are added), in both executors."""
    model = randomize_weights(build_reduced("bert-tiny"))
    inputs = random_inputs(model)
    ids = inputs["ids"].copy()
    ids[[1, 2]] = ids[[2, 1]]
    if ids[1] == ids[2]:
        ids[1] = (ids[1] + 1) % REDUCED["bert-tiny"]["vocab"]
    a = reference.run(model, inputs, dtype=np.float64)["out0"]
    b = reference.run(model, {"ids": ids}, dtype=np.float64)["out0"]
    assert max_abs(a, b) > 1e-6
    np.testing.assert_allclose(b, numpy_forward(model, {"ids": ids}), rtol=0, atol=1e-9)


def test_digits_vit_full_model_matches_numpy() -> None:
    """The full default digits-vit (trained weights) on a few bundled test images."""
    require_digits()
    from compiler.datasets import load_digits_test

    model = build("digits-vit")
    images, labels = load_digits_test()
    worst64 = worst32 = 0.0
    for image in images[:4]:
        want = numpy_forward(model, {"image": image})
        got64 = reference.run(model, {"image": image}, dtype=np.float64)["out0"]
        got32 = reference.run(model, {"image": image})["out0"]
        worst64, worst32 = max(worst64, max_abs(got64, want)), max(worst32, max_abs(got32, want))
        assert _rel_err(got64, want) < 1e-9
        assert _rel_err(got32, want) < 1e-4
    print(
        f"\ndigits-vit (trained, 4 images): f64 max abs err {worst64:.3g}  f32 max abs err {worst32:.3g}"
    )


def test_digits_vit_architecture_matches_numpy() -> None:
    """The default digits-vit shape (1×16×16, patch 2, 65 tokens, 4 layers), with random weights, so it
    is covered before the trained weights are bundled."""
    from compiler.models import ZOO, trace
    from compiler.models.vit import ViT

    config = ZOO["digits-vit"].config
    inputs_spec = {"image": ((config.channels, config.image, config.image), np.float32)}
    meta = {"config": dataclasses.asdict(config)}
    model = trace(ViT(config), inputs_spec, seed=0, name="digits-vit", meta=meta)
    randomize_weights(model)
    inputs = random_inputs(model)
    want = numpy_forward(model, inputs)
    got64 = reference.run(model, inputs, dtype=np.float64)["out0"]
    got32 = reference.run(model, inputs)["out0"]
    print(
        f"\ndigits-vit shape (random): f64 max abs err {max_abs(got64, want):.3g}"
        f"  f32 max abs err {max_abs(got32, want):.3g}"
    )
    assert _rel_err(got64, want) < 1e-9
    assert _rel_err(got32, want) < 1e-4


# ---- the executor's own input checks ------------------------------------------------------------


def test_reference_rejects_wrong_inputs() -> None:
    model = build_reduced("gpt2")
    ids = random_inputs(model)["ids"]
    with pytest.raises(WispError, match=r"missing input 'ids'"):
        reference.run(model, {})
    with pytest.raises(WispError, match=r"input 'ids' has shape \[5\], the model expects \[10\]"):
        reference.run(model, {"ids": ids[:5]})


@pytest.mark.parametrize("bad", [-1, REDUCED["gpt2"]["vocab"]])
def test_reference_rejects_out_of_range_token_ids(bad: int) -> None:
    model = build_reduced("gpt2")
    ids = random_inputs(model)["ids"]
    ids[3] = bad
    with pytest.raises(WispError, match="nn.gather"):
        reference.run(model, {"ids": ids})
