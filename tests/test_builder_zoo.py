"""The zoo and the torch-like builder: every model builds and verifies, parameter counts follow from the
dimensions (and match the published counts at full size), init is seeded, inputs are right, and bad
options are clear WispErrors."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from frontdoor_util import FAMILY, REDUCED, build_reduced, randomize_weights, require_digits

from compiler import reference
from compiler.errors import WispError
from compiler.ir import parse_module, print_module, verify
from compiler.models import ZOO, Linear, Module, Parameter, Tensor, build, trace
from compiler.models import functional as F
from compiler.models.builder import normal
from dialects.nn_base import ShapeError, shape_of


def block_params(d: int, h: int) -> int:
    """One transformer block: q, k, v, proj (D×D + D each), two LayerNorms, fc1 (D→H), fc2 (H→D)."""
    return 4 * (d * d + d) + 2 * 2 * d + (d * h + h) + (h * d + d)


def expected_params(family: str, c: dict[str, Any]) -> int:
    d, h, n = c["dim"], c["mlp_dim"], c["layers"]
    if family == "vit":
        tokens = (c["image"] // c["patch"]) ** 2 + 1
        patch = d * c["channels"] * c["patch"] ** 2 + d
        return (
            patch
            + d
            + tokens * d
            + n * block_params(d, h)
            + 2 * d
            + d * c["classes"]
            + c["classes"]
        )
    if family == "bert":
        emb = c["vocab"] * d + c["max_positions"] * d + c["type_vocab"] * d + 2 * d
        return emb + n * block_params(d, h) + (d * d + d) + (d * c["classes"] + c["classes"])
    if family == "gpt2":  # the LM head is tied to wte
        return c["vocab"] * d + c["max_positions"] * d + n * block_params(d, h) + 2 * d
    raise AssertionError(family)


# Published parameter counts (timm / Hugging Face) of the full-size architectures.
PUBLISHED = {
    "deit-tiny": 5_717_416,  # timm deit_tiny_patch16_224
    "deit-small": 22_050_664,  # timm deit_small_patch16_224
    "vit-base": 86_567_656,  # timm vit_base_patch16_224
    "bert-tiny": 4_385_920
    + 128 * 2
    + 2,  # google/bert_uncased_L-2_H-128_A-2 BertModel + 2-class head
    "bert-base": 109_482_240 + 768 * 2 + 2,  # bert-base-uncased BertModel + 2-class head
    "gpt2": 124_439_808,  # gpt2 (tied LM head)
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_formula_matches_published_counts(name: str) -> None:
    entry = ZOO[name]
    assert expected_params(entry.family, dataclasses.asdict(entry.config)) == PUBLISHED[name]


def test_full_size_bert_tiny_has_published_parameter_count() -> None:
    model = build("bert-tiny")
    assert model.weights.num_params == PUBLISHED["bert-tiny"]


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_zoo_builds_verifies_and_counts(name: str) -> None:
    model = build_reduced(name)
    verify(model.module)
    model.weights.check(model.module)
    config = model.meta["config"]
    for key, value in REDUCED[name].items():
        assert config[key] == value
    assert model.meta["family"] == FAMILY[name]
    assert model.weights.num_params == expected_params(FAMILY[name], config)
    assert all(a.dtype == np.float32 for a in model.weights.values())
    # the text form parses back into a module that verifies
    verify(parse_module(print_module(model.module)))


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_input_and_output_specs(name: str) -> None:
    model = build_reduced(name)
    c = model.meta["config"]
    family = FAMILY[name]
    if family == "vit":
        assert model.input_specs() == {
            "image": ((c["channels"], c["image"], c["image"]), np.float32)
        }
        want_out = (1, c["classes"])
    elif family == "bert":
        assert model.input_specs() == {"ids": ((c["seq"],), np.int32)}
        want_out = (1, c["classes"])
    else:
        assert model.input_specs() == {"ids": ((c["seq"],), np.int32)}
        want_out = (c["seq"], c["vocab"])
    (out_type,) = model.main.function_type.outputs.data
    assert shape_of(out_type) == want_out


@pytest.mark.parametrize("name", ["deit-tiny", "bert-tiny", "gpt2"])
def test_init_is_deterministic_by_seed(name: str) -> None:
    a, b, c = build_reduced(name, seed=7), build_reduced(name, seed=7), build_reduced(name, seed=8)
    assert list(a.weights) == list(b.weights) == list(c.weights)
    for key in a.weights:
        np.testing.assert_array_equal(a.weights[key], b.weights[key])
    assert print_module(a.module) == print_module(b.module) == print_module(c.module)
    random_keys = [
        k for k in a.weights if np.std(a.weights[k]) > 0
    ]  # biases and LN gains are constant
    assert random_keys
    for key in random_keys:
        assert not np.array_equal(a.weights[key], c.weights[key]), key


def test_zoo_init_statistics() -> None:
    """Truncated-normal(0.02) matrices, zero biases, unit LayerNorm gains."""
    model = build_reduced("bert-tiny", dim=64, mlp_dim=128)
    w = model.weights
    q = w["blocks.0.attn.q.weight"]
    assert abs(float(q.std()) - 0.02) < 0.002 and float(np.abs(q).max()) <= 0.04 + 1e-7
    np.testing.assert_array_equal(w["blocks.0.attn.q.bias"], 0)
    np.testing.assert_array_equal(w["blocks.0.norm1.weight"], 1)
    np.testing.assert_array_equal(w["blocks.0.norm1.bias"], 0)


@pytest.mark.parametrize(
    ("name", "options", "needle"),
    [
        ("resnet50", {}, "unknown model 'resnet50'"),
        ("deit-tiny", {"layers": 0}, "option 'layers' must be a positive integer, got 0"),
        ("gpt2", {"dim": -8}, "option 'dim' must be a positive integer, got -8"),
        ("bert-tiny", {"heads": True}, "option 'heads' must be a positive integer, got True"),
        ("bert-tiny", {"image": 32}, "option 'image' does not apply"),
        ("deit-tiny", {"vocab": 100}, "option 'vocab' does not apply"),
        ("gpt2", {"classes": 3}, "option 'classes' does not apply"),
        ("deit-tiny", {"bogus": 1}, "option 'bogus' does not apply"),
        ("digits-vit", {"layers": 2}, "digits-vit is a trained model"),
        (
            "deit-tiny",
            {"dim": 30, "heads": 4, "image": 16, "patch": 4, "layers": 1},
            "not divisible by heads",
        ),
        (
            "deit-tiny",
            {"image": 30, "patch": 4, "layers": 1, "dim": 16, "heads": 2},
            "must divide image",
        ),
        ("bert-tiny", {"seq": 600, "layers": 1}, "exceeds max_positions"),
    ],
)
def test_bad_options_raise_wisp_error(name: str, options: dict[str, Any], needle: str) -> None:
    with pytest.raises(WispError) as info:
        build(name, **options)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    if name in ZOO:
        assert message.startswith(name)


def test_unknown_name_lists_the_zoo() -> None:
    with pytest.raises(WispError) as info:
        build("resnet50")
    for name in ZOO:
        assert name in str(info.value)


def test_digits_vit_builds_with_trained_weights() -> None:
    require_digits()
    model = build("digits-vit")
    model.weights.check(model.module)
    assert model.meta["dataset"] == "digits"
    assert model.input_specs() == {"image": ((1, 16, 16), np.float32)}
    assert model.weights.num_params == expected_params("vit", model.meta["config"])


# ---- the builder API on a custom module ---------------------------------------------------------


class ResidualMLP(Module):
    """Two linear layers with a residual, a LayerNorm, a tied scale parameter, and a slice."""

    def __init__(self, dim: int, hidden: int) -> None:
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.gain = Parameter((dim,), normal(1.0))
        self.norm_g = Parameter((dim,), normal(1.0))
        self.norm_b = Parameter((dim,), normal(1.0))

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc2(F.relu(self.fc1(x)))
        y = (x + h) * self.gain
        y = F.layer_norm(y, self.norm_g, self.norm_b, eps=1e-5) * self.gain  # `gain` used twice
        return y[1:4, 2:7]


def _numpy_residual_mlp(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    x = x.astype(np.float64)
    h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0.0) @ w["fc2.weight"].T + w["fc2.bias"]
    y = (x + h) * w["gain"]
    mu = y.mean(-1, keepdims=True)
    var = ((y - mu) ** 2).mean(-1, keepdims=True)
    y = ((y - mu) / np.sqrt(var + 1e-5) * w["norm_g"] + w["norm_b"]) * w["gain"]
    return y[1:4, 2:7]


def test_builder_traces_custom_module() -> None:
    model = trace(ResidualMLP(8, 12), {"x": ((5, 8), np.float32)}, seed=3, name="resmlp")
    randomize_weights(model, seed=4)
    text = print_module(model.module)
    verify(parse_module(text))
    assert set(model.weights) == {
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "gain",
        "norm_g",
        "norm_b",
    }
    assert model.weights["fc1.weight"].shape == (12, 8)
    # a parameter used twice enters the IR once
    assert text.count("nn.weight @gain ") == 1
    ops = [op.name for op in model.main.body.block.ops]
    assert ops.count("nn.linear") == 2 and ops.count("nn.slice") == 1 and ops.count("nn.relu") == 1
    assert model.input_specs() == {"x": ((5, 8), np.float32)}
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    want = _numpy_residual_mlp(x, {k: v.astype(np.float64) for k, v in model.weights.items()})
    got = reference.run(model, {"x": x}, dtype=np.float64)["out0"]
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


class TwoOutputs(Module):
    def __init__(self) -> None:
        self.w = Parameter((6, 4), normal(1.0))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        t = x.reshape(2, -1).permute(1, 0)  # [3, 2]
        return F.matmul(x, x.graph.tensor(self.w), transpose_b=True), F.softmax(t, axis=0)


def test_builder_multiple_outputs_reshape_permute() -> None:
    model = trace(TwoOutputs(), {"x": ((3, 4), np.float32)}, seed=0)
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    out = reference.run(model, {"x": x}, dtype=np.float64)
    np.testing.assert_allclose(
        out["out0"], x.astype(np.float64) @ model.weights["w"].astype(np.float64).T
    )
    t = x.astype(np.float64).reshape(2, 6).T
    e = np.exp(t - t.max(0))
    np.testing.assert_allclose(out["out1"], e / e.sum(0), rtol=1e-12)


def test_builder_rejects_unregistered_parameter() -> None:
    stray = Parameter((4, 4), normal())

    class Stray(Module):
        def forward(self, x: Tensor) -> Tensor:
            return F.linear(x, stray)

    with pytest.raises(ValueError, match="not registered"):
        trace(Stray(), {"x": ((2, 4), np.float32)})


def test_builder_rejects_shape_mismatch_at_trace_time() -> None:
    class Bad(Module):
        def __init__(self) -> None:
            self.fc = Linear(5, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(x)

    with pytest.raises(ShapeError, match="input features 4 do not match weight in-features 5"):
        trace(Bad(), {"x": ((2, 4), np.float32)})
