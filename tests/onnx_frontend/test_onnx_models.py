"""Whole models in both torch exporters' shapes (built with onnx.helper): the raised IR has one
nn.attention per block and no decomposed attention left, and its outputs match onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import onnx_graphs as graphs  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.frontends.onnx import import_onnx  # noqa: E402
from compiler.ir import print_module  # noqa: E402

CASES = [(fam, style) for fam in ("vit", "bert", "gpt2") for style in ("torchscript", "dynamo")]


def feeds_for(sess: object, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for i in sess.get_inputs():  # type: ignore[attr-defined]
        shape = [1 if isinstance(s, str) or s is None else s for s in i.shape]
        if i.type == "tensor(int64)":
            hi = 2 if "type" in i.name else 30
            out[i.name] = rng.integers(0, hi, shape).astype(np.int64)
        else:
            out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def ops_of(text: str) -> dict[str, int]:
    ops: dict[str, int] = {}
    for line in text.splitlines():
        if "= nn." in line:
            op = line.split("= ", 1)[1].split()[0]
            ops[op] = ops.get(op, 0) + 1
    return ops


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    d = tmp_path_factory.mktemp("onnx")
    return {(f, s): getattr(graphs, f)(d / f"{f}-{s}.onnx", s) for f, s in CASES}


@pytest.mark.parametrize("family,style", CASES)
def test_import_matches_onnxruntime(built: dict, family: str, style: str) -> None:
    path = built[(family, style)]
    sess = ort.InferenceSession(str(path))
    rng = np.random.default_rng(0)
    model = import_onnx(path)
    ops = ops_of(print_module(model.module))
    assert ops.get("nn.attention") == 2, ops
    for leftover in ("nn.matmul", "nn.softmax", "nn.transpose", "nn.div", "nn.mul"):
        assert leftover not in ops, ops
    assert ops.get("nn.layer_norm", 0) >= 5 and ops.get("nn.gelu") == 2
    text = print_module(model.module)
    assert ("causal = true" in text) == (family == "gpt2")
    assert not any("onnx::" in n or n.startswith("val_") for n in model.weights)
    for _ in range(3):
        feeds = feeds_for(sess, rng)
        want = sess.run(None, feeds)
        got = reference.run(model, {k: v[0] for k, v in feeds.items()})
        assert len(got) == len(want)  # every graph output (bert: hidden states and logits)
        for i, w in enumerate(want):
            w0 = w[0]
            span = float(w0.max() - w0.min()) or 1.0
            assert got[f"out{i}"].shape == w0.shape
            assert np.abs(got[f"out{i}"] - w0).max() <= 1e-4 * span


def test_readable_weight_names(built: dict) -> None:
    ts = import_onnx(built[("bert", "torchscript")])
    # TorchScript stores MatMul weights transposed as onnx::MatMul_*: named from the node scope
    assert "encoder.layer.0.attention.query.weight" in ts.weights
    assert ts.weights["encoder.layer.0.attention.query.weight"].shape == (32, 32)
    # [out, in] through a Transpose node: the original name; the fused qkv is split as in the zoo
    dyn = import_onnx(built[("vit", "dynamo")])
    assert "blocks.0.attn.qkv.weight" not in dyn.weights
    assert dyn.weights["blocks.0.attn.k.weight"].shape == (32, 32)
    assert dyn.weights["blocks.0.attn.v.bias"].shape == (32,)
    assert {"patch_embed.proj.weight", "cls_token", "pos_embed", "head.weight"} <= set(dyn.weights)


def test_compiled_program_matches_onnxruntime(built: dict) -> None:
    from compiler.api import compile_model

    path = built[("vit", "dynamo")]
    sess = ort.InferenceSession(str(path))
    feeds = feeds_for(sess, np.random.default_rng(1))
    want = sess.run(None, feeds)[0][0]
    prog = compile_model(str(path), pipeline="canonicalize,cse", target="spatten")
    got = prog.run({"pixel_values": feeds["pixel_values"][0]}).outputs["out0"]
    span = float(want.max() - want.min())
    assert np.abs(got - want).max() <= 2e-2 * span  # fp16 on the NPU
