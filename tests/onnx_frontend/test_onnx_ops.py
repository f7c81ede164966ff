"""Single-op conversions against onnxruntime on random inputs, and bad model files: one error line
naming the file and node, exit 1, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.frontends.onnx import import_onnx  # noqa: E402

R = np.random.default_rng(0)
W = lambda *s: R.standard_normal(s).astype(np.float32)  # noqa: E731
I64 = lambda *v: np.array(v, np.int64)  # noqa: E731

# (op, input shape, initializers, attrs, opset)
OPS: list[tuple[str, tuple[int, ...], list[np.ndarray], dict[str, Any], int]] = [
    ("Add", (1, 5, 8), [W(8)], {}, 17),
    ("Sub", (1, 5, 8), [W(1, 5, 8)], {}, 17),
    ("Mul", (1, 5, 8), [W(5, 1)], {}, 17),
    ("Div", (1, 5, 8), [np.float32(2.5)], {}, 17),
    ("MatMul", (1, 5, 8), [W(8, 6)], {}, 17),
    ("Gemm", (1, 8), [W(6, 8), W(6)], {"transB": 1, "alpha": 0.5}, 17),
    ("Softmax", (1, 5, 8), [], {"axis": -1}, 13),
    ("Transpose", (1, 5, 8), [], {"perm": [0, 2, 1]}, 17),
    ("Reshape", (1, 6, 8), [I64(1, 3, -1)], {}, 17),
    ("Flatten", (1, 2, 3, 4), [], {"axis": 1}, 17),
    ("Unsqueeze", (1, 5, 8), [I64(2)], {}, 17),
    ("Relu", (1, 5, 8), [], {}, 17),
    ("Tanh", (1, 5, 8), [], {}, 17),
    ("Gelu", (1, 5, 8), [], {"approximate": "tanh"}, 20),
    ("Gelu", (1, 5, 8), [], {}, 20),
    ("LayerNormalization", (1, 5, 8), [W(8), W(8)], {"epsilon": 1e-5, "axis": -1}, 17),
    ("Concat", (1, 5, 8), [W(1, 2, 8)], {"axis": 1}, 17),
    ("Slice", (1, 5, 8), [I64(1, 2), I64(4, 7), I64(1, 2)], {}, 17),
    ("Gather", (1, 5, 8), [np.array(2, np.int64)], {"axis": 1}, 17),
    ("Split", (1, 5, 8), [I64(3, 5)], {"axis": 2}, 17),
    ("Identity", (1, 5, 8), [], {}, 17),
]


def _single(
    tmp: Path,
    op: str,
    shape: tuple[int, ...],
    consts: list[np.ndarray],
    attrs: dict[str, Any],
    opset: int,
) -> Path:
    names = [f"c{i}" for i in range(len(consts))]
    n_out = 2 if op == "Split" else 1
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, ["x", *names], outs, name=f"the_{op.lower()}", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        [numpy_helper.from_array(np.asarray(c), n) for c, n in zip(consts, names, strict=True)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp / f"{op}.onnx"
    onnx.save_model(model, str(path))
    return path


@pytest.mark.parametrize(
    "op,shape,consts,attrs,opset", OPS, ids=[f"{o[0]}-{i}" for i, o in enumerate(OPS)]
)
def test_single_op_matches_onnxruntime(
    tmp_path: Path,
    op: str,
    shape: tuple[int, ...],
    consts: list[np.ndarray],
    attrs: dict[str, Any],
    opset: int,
) -> None:
    path = _single(tmp_path, op, shape, consts, attrs, opset)
    x = W(*shape)
    want = ort.InferenceSession(str(path)).run(None, {"x": x})
    got = reference.run(import_onnx(path), {"x": x[0]})
    for i, w in enumerate(want):
        np.testing.assert_allclose(got[f"out{i}"], w[0], rtol=1e-5, atol=1e-5)


def _save(
    tmp: Path,
    nodes: list[Any],
    inputs: list[Any],
    outputs: list[str],
    inits: list[Any] = (),
    opset: int = 17,
    name: str = "m.onnx",
    **save: Any,
) -> Path:  # type: ignore[assignment]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp / name
    onnx.save_model(model, str(path), **save)
    return path


def _x(*shape: Any) -> Any:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))


def test_unknown_op_names_the_node(tmp_path: Path) -> None:
    p = _save(
        tmp_path,
        [
            helper.make_node("Relu", ["x"], ["h"], name="r"),
            helper.make_node("HardSwish", ["h"], ["y"], name="blocks.0/act"),
        ],
        [_x(1, 4)],
        ["y"],
    )
    with pytest.raises(
        WispError,
        match=r"m\.onnx: node 'blocks\.0/act' \(op HardSwish, #1\): unsupported op HardSwish",
    ):
        import_onnx(p)


def test_lone_erf_fails_closed(tmp_path: Path) -> None:
    p = _save(tmp_path, [helper.make_node("Erf", ["x"], ["y"], name="e")], [_x(1, 4)], ["y"])
    with pytest.raises(
        WispError, match=r"node 'e' \(op Erf, #0\): Erf \(part of GELU\) has no nn equivalent"
    ):
        import_onnx(p)


def test_dynamic_dim_says_how_to_fix(tmp_path: Path) -> None:
    p = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [_x("batch", "seq", 8)], ["y"])
    with pytest.raises(
        WispError,
        match=r"input 'x' has dynamic dim 'seq' at position 1; fix it with --input-shape x=1xNxN",
    ):
        import_onnx(p)
    assert import_onnx(p, {"x": (1, 3, 8)}).input_specs()["x"][0] == (3, 8)


def test_batch_above_one(tmp_path: Path) -> None:
    p = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [_x(2, 8)], ["y"])
    with pytest.raises(WispError, match="input 'x' has batch 2"):
        import_onnx(p)


def test_opset_out_of_range(tmp_path: Path) -> None:
    p = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [_x(1, 8)], ["y"], opset=11)
    with pytest.raises(WispError, match="opset 11 is outside the supported range 13-21"):
        import_onnx(p)


def test_not_onnx_and_truncated(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07hello, not protobuf \xff\xff")
    with pytest.raises(WispError, match=r"junk\.onnx: not a valid ONNX file"):
        import_onnx(junk)
    p = _save(
        tmp_path,
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [_x(1, 8)],
        ["y"],
        [numpy_helper.from_array(W(8, 8), "w")],
    )
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(WispError, match=r"cut\.onnx: not a valid ONNX file"):
        import_onnx(cut)


def _external(tmp: Path, location: str) -> Path:
    p = _save(
        tmp,
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [_x(1, 8)],
        ["y"],
        [numpy_helper.from_array(W(8, 8), "w")],
        save_as_external_data=True,
        location="m.onnx.data",
        size_threshold=0,
    )
    model = onnx.load(str(p), load_external_data=False)
    for e in model.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = location
    onnx.save_model(model, str(p))
    return p


def test_external_data_escaping_or_missing(tmp_path: Path) -> None:
    with pytest.raises(
        WispError,
        match=r"initializer 'w' points to external data '\.\./secret\.bin' outside the model's directory",
    ):
        import_onnx(_external(tmp_path, "../secret.bin"))
    with pytest.raises(
        WispError, match=r"external data file 'gone\.data' \(initializer 'w'\) is missing"
    ):
        import_onnx(_external(tmp_path, "gone.data"))
    ok = _external(tmp_path, "m.onnx.data")
    assert import_onnx(ok).weights["w"].shape == (8, 8)


def test_cli_bad_model_one_line_nothing_written(tmp_path: Path) -> None:
    p = _save(
        tmp_path, [helper.make_node("HardSwish", ["x"], ["y"], name="act")], [_x(1, 4)], ["y"]
    )
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "compiler.cli.wisp", "compile", str(p), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "node 'act' (op HardSwish, #0)" in r.stderr
    assert not out.exists()
