"""Every compression pass runs on an imported ViT, BERT and GPT-2 as on the zoo model of the same
shape: the raised IR has the zoo's ops (separate q/k/v projections feeding nn.attention), and each pass
gives the same groups, pruning, sparsity, quantized layers and kept tokens on both."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnx_graphs as graphs  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.frontends.onnx import import_onnx  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.models import build  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from dialects import nn  # noqa: E402
from passes.depgraph import analyze  # noqa: E402

# family → (zoo name, zoo shape options matching onnx_graphs' defaults, exporter style)
PAIRS: dict[str, tuple[str, dict[str, Any], str]] = {
    "vit": (
        "deit-tiny",
        {"layers": 2, "dim": 32, "heads": 2, "image": 8, "patch": 4, "classes": 5, "mlp_dim": 64},
        "dynamo",  # timm's fused qkv
    ),
    "bert": (  # token types in, hidden states and logits out, as onnx_graphs.bert
        "bert-tiny",
        {
            "layers": 2,
            "dim": 32,
            "heads": 4,
            "seq": 6,
            "vocab": 50,
            "classes": 3,
            "mlp_dim": 128,
            "token_types": True,
            "outputs": "hidden,logits",
        },
        "torchscript",
    ),
    "gpt2": ("gpt2", {"layers": 2, "dim": 32, "heads": 2, "seq": 8, "vocab": 40}, "dynamo"),
}
# Ops the zoo and the exporters spell differently: the CLS token is sliced before (zoo) or after a
# reshape (ONNX Gather); BERT's token-type embedding is a gather (ONNX) or a slice (zoo, one type).
COSMETIC = {"nn.reshape", "nn.slice", "nn.gather"}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Model, Model]]:
    d = tmp_path_factory.mktemp("onnx-passes")
    out = {}
    for fam, (zoo, options, style) in PAIRS.items():
        imported = import_onnx(getattr(graphs, fam)(d / f"{fam}.onnx", style))
        out[fam] = (imported, build(zoo, **options))
    return out


def op_counts(model: Model) -> Counter[str]:
    return Counter(op.name for op in model.main.body.block.ops if op.name != "nn.weight")


@pytest.mark.parametrize("fam", PAIRS)
def test_raised_ir_has_the_zoo_ops(pairs: dict, fam: str) -> None:
    imported, zoo = pairs[fam]
    a, b = op_counts(imported), op_counts(zoo)
    assert {k for k in (a - b) | (b - a)} <= COSMETIC, (a - b, b - a)
    for op in imported.main.body.block.ops:
        if isinstance(op, nn.AttentionOp):
            owners = [
                v.owner for v in op.operands[:3]
            ]  # q, k, v: one projection each, as in the zoo
            assert all(isinstance(o, nn.LinearOp) for o in owners) and len(set(owners)) == 3


def _run(model: Model, spec: str) -> tuple[Model, Any]:
    m = model.clone()
    return m, run_pipeline(m, spec, quiet=True)[-1].report


def _inputs(model: Model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, dtype) in model.input_specs().items():
        kind = np.dtype(dtype).kind
        out[name] = rng.integers(0, 2, shape) if kind in "iu" else rng.standard_normal(shape)
        out[name] = out[name].astype(dtype)
    return out


def _linear_density(model: Model) -> float:
    """Nonzero fraction of all nn.linear weights (embedding tables differ in size and stay dense)."""
    names = {
        op.weight.owner.symbol  # type: ignore[union-attr]
        for op in model.main.body.block.ops
        if isinstance(op, nn.LinearOp) and isinstance(op.weight.owner, nn.WeightOp)
    }
    nonzero = sum(int(np.count_nonzero(model.weights[n])) for n in names)
    return nonzero / sum(model.weights[n].size for n in names)


@pytest.mark.parametrize("fam", PAIRS)
def test_depgraph(pairs: dict, fam: str) -> None:
    groups = [
        Counter(
            (g.kind, g.size, bool(g.blocked_by))
            for g in analyze(m.module).groups
            if g.kind != "unused"
        )
        for m in pairs[fam]
    ]  # the zoo's GPT-2 position table has unused rows (1024 positions); the import folds it to seq
    assert groups[0] == groups[1]


@pytest.mark.parametrize("fam", PAIRS)
def test_structured_prune(pairs: dict, fam: str) -> None:
    results = [_run(m, "structured-prune{ratio=0.3}") for m in pairs[fam]]
    shrink = [r["after"]["macs"] / r["before"]["macs"] for _, r in results]
    assert shrink[0] == pytest.approx(shrink[1], abs=0.02) and shrink[0] < 0.9
    pruned = results[0][0]
    out = reference.run(pruned, _inputs(pruned))["out0"]
    assert np.isfinite(out).all()


@pytest.mark.parametrize("fam", PAIRS)
def test_sparsify_2_4(pairs: dict, fam: str) -> None:
    dens = [_linear_density(_run(m, "sparsify-2-4")[0]) for m in pairs[fam]]
    assert dens[0] == pytest.approx(dens[1], abs=0.02) and dens[0] <= 0.55


@pytest.mark.parametrize("fam", PAIRS)
def test_quantize(pairs: dict, fam: str) -> None:
    results = [_run(m, "quantize") for m in pairs[fam]]
    layers = [len(r["layers"]) for _, r in results]
    assert layers[0] == layers[1] > 0  # the same number of projections quantized
    imported, quantized = pairs[fam][0], results[0][0]
    x = _inputs(imported)
    want, got = reference.run(imported, x)["out0"], reference.run(quantized, x)["out0"]
    assert np.abs(got - want).max() <= 0.1 * (float(want.max() - want.min()) or 1.0)


@pytest.mark.parametrize("fam", PAIRS)
def test_token_prune(pairs: dict, fam: str) -> None:
    reports = [_run(m, "token-prune{keep=0.5 start=0}")[1] for m in pairs[fam]]
    tokens = [[t["tokens"] for t in r["tokens_per_layer"]] for r in reports]
    assert tokens[0] == tokens[1] and reports[0]["after"]["tokens"] < reports[0]["before"]["tokens"]


def test_token_prune_refuses_a_masked_bert_as_on_the_zoo(tmp_path: Path) -> None:
    from compiler.errors import WispError

    masked = import_onnx(graphs.bert(tmp_path / "bert.onnx", "torchscript", mask="torchscript"))
    zoo = build("bert-tiny", **PAIRS["bert"][1], attention_mask=True)  # type: ignore[arg-type]
    for m in (masked, zoo):
        with pytest.raises(WispError, match="key-padding mask"):
            _run(m, "token-prune{keep=0.5 start=0}")
