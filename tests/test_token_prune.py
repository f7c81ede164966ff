"""token-prune: identity at keep=1, cascade semantics against an independent numpy ViT forward that
prunes as the papers describe, BERT/GPT-2 behaviour and one-line errors for bad options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compiler import reference
from compiler.errors import WispError
from compiler.ir import print_module
from compiler.models import Linear, Module, build, trace
from compiler.pipeline import run_pipeline
from dialects import nn, tokens

VIT = {"layers": 3, "image": 8, "patch": 2, "dim": 32, "heads": 2, "mlp_dim": 64, "classes": 5}


def tiny_vit():
    return build("deit-tiny", seed=3, **VIT)


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((3, 8, 8)).astype(np.float32)


def pruned(spec: str, model=None):
    m = model or tiny_vit()
    run_pipeline(m, spec, quiet=True)
    return m


@pytest.mark.parametrize("method", ["spatten", "tps", "evit", "topk"])
def test_keep_one_is_the_identity(method: str) -> None:
    dense = tiny_vit()
    m = pruned(f"token-prune{{method={method} keep=1.0}}")
    assert print_module(m.module) == print_module(dense.module)
    x = {"image": image()}
    np.testing.assert_array_equal(reference.run(m, x)["out0"], reference.run(dense, x)["out0"])


# ---- an independent forward: pre-LN ViT with cascade pruning after each attention sublayer ----


def _ln(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * g + b


def _probs(q, k, heads):
    d = q.shape[1] // heads
    out = []
    for h in range(heads):
        s = q[:, h * d : (h + 1) * d] @ k[:, h * d : (h + 1) * d].T / math.sqrt(d)
        e = np.exp(s - s.max(1, keepdims=True))
        out.append(e / e.sum(1, keepdims=True))
    return np.array(out)


def _topk_keep_order(s, k, protect):
    s = s.copy()
    s[protect] = np.inf
    order = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]
    return sorted(order)


def vit_forward(w, img, counts, method):
    """The ViT forward of compiler/models/vit.py, with tokens pruned after each attention
    sublayer to `counts[l]`; returns logits and the original ids of the tokens alive per layer."""
    g = lambda n: w[n].astype(np.float64)  # noqa: E731
    c, p = img.shape[0], 2
    patches = img.reshape(c, 4, p, 4, p).transpose(1, 3, 0, 2, 4).reshape(16, -1)
    x = np.vstack([g("cls_token"), patches @ g("patch_embed.weight").T + g("patch_embed.bias")])
    x = x + g("pos_embed")
    ids = list(range(x.shape[0]))
    acc = np.zeros(x.shape[0])
    alive = []
    for layer in range(len(counts)):
        b = f"blocks.{layer}."
        lin = lambda t, n, b=b: t @ g(b + n + ".weight").T + g(b + n + ".bias")  # noqa: E731
        h = _ln(x, g(b + "norm1.weight"), g(b + "norm1.bias"), 1e-6)
        q, k, v = lin(h, "attn.q"), lin(h, "attn.k"), lin(h, "attn.v")
        P = _probs(q, k, 2)
        o = np.hstack([P[i] @ v[:, i * 16 : (i + 1) * 16] for i in range(2)])
        x = x + lin(o, "attn.proj")
        acc = acc + P.sum(axis=(0, 1))
        score = acc if method == "spatten" else P[:, 0, :].mean(0)
        n = counts[layer]
        if n < x.shape[0]:
            keep = _topk_keep_order(score, n, [0])
            x, acc, ids = x[keep], acc[keep], [ids[j] for j in keep]
        alive.append(ids)
        h = _ln(x, g(b + "norm2.weight"), g(b + "norm2.bias"), 1e-6)
        f = lin(h, "mlp.fc1")
        f = 0.5 * f * (1 + np.vectorize(math.erf)(f / math.sqrt(2)))
        x = x + lin(f, "mlp.fc2")
    y = _ln(x[0:1], g("norm.weight"), g("norm.bias"), 1e-6)
    return y @ g("head.weight").T + g("head.bias"), alive


@pytest.mark.parametrize("method", ["spatten", "topk"])
def test_cascade_matches_independent_forward(method: str) -> None:
    m = pruned(f"token-prune{{method={method} keep=0.9,0.6,0.4}}")
    counts = [15, 10, 7]  # round(f · 17 tokens)
    for seed in range(3):
        img = image(seed)
        values: dict = {}
        got = reference.run(m, {"image": img}, dtype=np.float64, values=values)["out0"]
        want, alive = vit_forward(m.weights, img.astype(np.float64), counts, method)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        # the same tokens survive, and a token pruned at layer l is absent from every later layer
        sel = [op for op in m.main.body.block.ops if isinstance(op, tokens.SelectOp)]
        ids = list(range(17))
        for layer, op in enumerate(sel):
            ids = [ids[j] for j in values[op.results[0]]]
            assert ids == alive[layer]
        for a, b in zip(alive, alive[1:], strict=False):
            assert set(b) <= set(a)


def test_shapes_shrink_downstream() -> None:
    m = pruned("token-prune{method=tps keep=0.5 schedule=step start=1}")
    rows = [
        op.query.type.get_shape()[0]
        for op in m.main.body.block.ops
        if isinstance(op, nn.AttentionOp)
    ]
    assert rows == [17, 17, 8]
    assert m.main.function_type.outputs.data[0].get_shape() == (1, 5)


def test_evit_adds_one_fused_token_within_the_count() -> None:
    m = pruned("token-prune{method=evit keep=0.5 schedule=step start=0}")
    fuse = [op for op in m.main.body.block.ops if isinstance(op, tokens.FuseOp)]
    assert len(fuse) == 1 and fuse[0].results[0].type.get_shape()[0] == 8


def test_bert_keeps_cls() -> None:
    m = build("bert-tiny", layers=2, seq=16, dim=32, heads=2, mlp_dim=64, vocab=50)
    ids = {"ids": np.arange(16, dtype=np.int32) % 50}
    run_pipeline(m, "token-prune{method=topk keep=0.5 start=0}", quiet=True)
    values: dict = {}
    reference.run(m, ids, values=values)
    for op in m.main.body.block.ops:
        if isinstance(op, tokens.SelectOp):
            assert values[op.results[0]][0] == 0


def gpt2():
    return build("gpt2", layers=2, seq=12, dim=32, heads=2, mlp_dim=64, vocab=40)


def test_gpt2_spatten_keeps_the_last_token() -> None:
    m = gpt2()
    run_pipeline(m, "token-prune{method=spatten keep=0.5 start=0}", quiet=True)
    values: dict = {}
    out = reference.run(m, {"ids": np.arange(12, dtype=np.int32)}, values=values)["out0"]
    sels = [op for op in m.main.body.block.ops if isinstance(op, tokens.SelectOp)]
    assert sels and all(values[s.results[0]][-1] == s.scores.type.get_shape()[0] - 1 for s in sels)
    assert out.shape[0] < 12


class _MLP(Module):
    def __init__(self):
        self.fc = Linear(8, 8)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize(
    ("model", "spec", "message"),
    [
        (tiny_vit, "token-prune{keep=1.5}", "keep=1.5: a keep ratio must be in (0, 1]"),
        (tiny_vit, "token-prune{keep=0.0}", "keep=0.0: a keep ratio must be in (0, 1]"),
        (tiny_vit, "token-prune{keep=0.9,0.8}", "keep: 2 values for 3 attention layers"),
        (tiny_vit, "token-prune{keep=0.5,0.8,0.4}", "keep: layer 1 keeps 0.8 > layer 0's 0.5"),
        (tiny_vit, "token-prune{start=3}", "start=3: the model has 3 attention layers (0..2)"),
        (tiny_vit, "token-prune{method=foo}", "method=foo: unknown"),
        (tiny_vit, "token-prune{schedule=cubic}", "schedule=cubic: unknown"),
        (
            tiny_vit,
            "token-prune{keep=0.5 protect=16 schedule=each start=0}",
            "protect=16: layer 1 (blocks.1) has 8 tokens, so token 16 does not exist",
        ),
        (
            gpt2,
            "token-prune{method=tps}",
            "method=tps scores tokens by their CLS attention, but layer 0 (blocks.0) is causal",
        ),
        (
            lambda: trace(_MLP(), {"x": ((4, 8), np.float32)}, seed=0, name="mlp"),
            "token-prune",
            "token-prune needs attention layers, and the model has no nn.attention",
        ),
    ],
)
def test_bad_options_are_one_line_errors(model, spec: str, message: str) -> None:
    with pytest.raises(WispError) as info:
        run_pipeline(model(), spec, quiet=True)
    text = str(info.value)
    assert text.startswith("pass 'token-prune': ") and message in text and "\n" not in text
