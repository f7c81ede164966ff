"""The ONNX backend node tests (`onnx.backend.test.loader.load_model_tests(kind="node")`) for the ops
wisp's importer converts, run through the importer and the reference executor against the expected
outputs. Only the case modules of those ops are loaded (all 1,900 cases take ~13 s to generate); cases
that cannot apply to wisp are skipped by the explicit list SKIPS with the reason."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import onnx.backend.test.loader as loader  # noqa: E402
from node_lift import opset_for, prepare  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.frontends.onnx import import_onnx  # noqa: E402

# ONNX op type → the case module in onnx.backend.test.case.node
OPS: dict[str, str] = {
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "MatMul": "matmul",
    "Gemm": "gemm",
    "Reshape": "reshape",
    "Flatten": "flatten",
    "Unsqueeze": "unsqueeze",
    "Squeeze": "squeeze",
    "Transpose": "transpose",
    "Softmax": "softmax",
    "Relu": "relu",
    "Tanh": "tanh",
    "Gelu": "gelu",
    "Identity": "identity",
    "Dropout": "dropout",
    "LayerNormalization": "layernormalization",
    "Gather": "gather",
    "Slice": "slice",
    "Split": "split",
    "Concat": "concat",
    "Conv": "conv",
}

# Cases that do not apply, by name pattern (re.fullmatch), with the reason.
BATCH = "wisp reads dim 0 as a batch of 1"
SKIPS: dict[str, str] = {
    r"test_div_u?int\d+|test_div_int32_trunc": "integer division truncates; nn.div divides floats "
    "(integer run-time values are ids and masks)",
    r"test_matmul_(bcast|1d_3d|4d_1d|1d_1d)": "broadcast or 1-D MatMul of two run-time values: "
    "nn.matmul takes equal batch dims, rank >= 2 (exporters write Q·Kᵀ and P·V of equal ranks)",
    r"test_gemm_.*": f"Gemm is 2-D, so its M rows are dim 0 and {BATCH}; these cases have M > 1 "
    "(Gemm with M = 1 is covered in test_onnx_ops.py)",
    r"test_flatten_.*": f"Flatten merges dim 0 with other dims and {BATCH} (these cases have dim 0 > 1)",
    r"test_squeeze": f"squeezes axis 0, the batch axis ({BATCH})",
    r"test_reshape_allowzero_reordered|test_split_zero_size_splits_opset\d+": "zero-size dims: "
    "shape inference leaves them dynamic",
    r"test_dropout_(default|random)_old": "opset 11 (wisp takes 13-21)",
    r"test_training_dropout(_default)?(_mask)?": "training-mode Dropout is random; wisp imports "
    "inference graphs, where Dropout is the identity",
    r"test_layer_normalization_(4d_axis(0|1|2|_negative_[234])|3d_axis(0|1|_negative_[23])_epsilon"
    r"|2d_axis(0|_negative_2))": "LayerNormalization over more than the last axis "
    "(nn.layer_norm normalizes the last axis, as transformers do)",
    r"test_gather_(0|1|2d_indices|negative_indices)": "Gather of run-time data by an index tensor "
    "(wisp gathers rows of a constant table by run-time ids, or one constant index of run-time data)",
    r"test_slice_neg_steps": "negative slice steps (nn.slice has unit steps)",
    r"test_(basic_conv_with(out)?_padding|conv_with_strides_.*|conv_with_autopad_same)": "Conv is "
    "imported only as a patch embedding (kernel = stride, no padding)",
}


def _load() -> list[Any]:
    def only_supported(_package: Any) -> None:
        for module in OPS.values():
            importlib.import_module(f"onnx.backend.test.case.node.{module}")

    real = loader.import_recursive
    loader.import_recursive = only_supported  # type: ignore[assignment]
    try:
        cases = loader.load_model_tests(kind="node")
    finally:
        loader.import_recursive = real  # type: ignore[assignment]
    # one-node cases only (function-expanded variants are many nodes of other ops)
    return [
        c for c in cases if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in OPS
    ]


CASES = _load()


def _skip_reason(case: Any) -> str | None:
    for pattern, why in SKIPS.items():
        if re.fullmatch(pattern, case.name):
            return why
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case: Any, tmp_path: Path) -> None:
    why = _skip_reason(case)
    if why:
        pytest.skip(why)
    if opset_for(case.model) is None:
        pytest.skip(f"{case.model.graph.node[0].op_type} changed after opset 21 (wisp takes 13-21)")
    for inputs, expected in case.data_sets:
        model, feeds, lifted = prepare(case.model, [np.asarray(a) for a in inputs])
        path = tmp_path / f"{case.name}.onnx"
        onnx.save(model, str(path))
        imported = import_onnx(path)
        got = reference.run(imported, dict(zip(imported.input_specs(), feeds, strict=True)))
        for i, want in enumerate(expected[: len(got)]):
            want = np.asarray(want)
            want = want if lifted else want[0]
            assert got[f"out{i}"].shape == want.shape
            np.testing.assert_allclose(
                got[f"out{i}"], want, rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-6)
            )


def test_selection_covers_every_supported_op() -> None:
    assert {c.model.graph.node[0].op_type for c in CASES} == set(OPS)
    runnable = [c for c in CASES if _skip_reason(c) is None and opset_for(c.model) is not None]
    assert len(runnable) >= 100
