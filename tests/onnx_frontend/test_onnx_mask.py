"""HF BERT's attention mask in the forms exporters write it, raised to nn.attention's mask operand
and checked against onnxruntime on padded inputs (reference executor and compiled NPU program)."""

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

SEQ = 8
CASES = [
    ("torchscript", "classic"),
    ("torchscript", "inverted"),
    ("dynamo", "sdpa"),
    ("dynamo", "where"),
    ("dynamo", "gathernd"),  # transformers 5 (masking_utils), dynamo export
    ("torchscript", "flatgather"),  # transformers 5, TorchScript export
]


def _feeds(rng: np.random.Generator, n_real: int) -> dict[str, np.ndarray]:
    ids = rng.integers(0, 30, (1, SEQ)).astype(np.int64)
    types = rng.integers(0, 2, (1, SEQ)).astype(np.int64)
    mask = (np.arange(SEQ) < n_real).astype(np.int64)[None]
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    d = tmp_path_factory.mktemp("onnx_mask")
    return {(s, m): graphs.bert(d / f"bert-{s}-{m}.onnx", s, seq=SEQ, mask=m) for s, m in CASES}


@pytest.mark.parametrize("style,mask", CASES)
def test_masked_bert_matches_onnxruntime(built: dict, style: str, mask: str) -> None:
    path = built[(style, mask)]
    model = import_onnx(path)
    text = print_module(model.module)
    attn = [line for line in text.splitlines() if "nn.attention" in line]
    assert len(attn) == 2 and all("xi32>) ->" in line for line in attn), attn
    for leftover in ("nn.softmax", "nn.matmul", "nn.mul", "nn.sub"):
        assert leftover not in text
    sess = ort.InferenceSession(str(path))
    rng = np.random.default_rng(0)
    for n_real in (SEQ, 5, 1):
        feeds = _feeds(rng, n_real)
        want = sess.run(None, feeds)
        got = reference.run(model, {k: v[0] for k, v in feeds.items()})
        for i, w in enumerate(want):
            span = float(w[0].max() - w[0].min()) or 1.0
            err = float(np.abs(got[f"out{i}"] - w[0]).max())
            assert err <= 1e-4 * span, (n_real, i, err, span)


def test_compiled_masked_bert_matches_onnxruntime(built: dict) -> None:
    from compiler.api import compile_model

    path = built[("torchscript", "classic")]
    sess = ort.InferenceSession(str(path))
    feeds = _feeds(np.random.default_rng(3), 5)
    want = sess.run(None, feeds)
    prog = compile_model(str(path), pipeline="canonicalize,cse", target="spatten")
    got = prog.run({k: v[0].astype(np.int32) for k, v in feeds.items()}).outputs
    for i, w in enumerate(want):
        span = float(w[0].max() - w[0].min())
        assert np.abs(got[f"out{i}"] - w[0]).max() <= 2e-2 * span  # fp16 on the NPU
