"""Malformed nodes (a required input absent or given as the empty name): `wisp compile` prints one
error line naming the file, the node and the missing input, exits 1 and writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

I64 = lambda name, *v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
F32 = lambda name, *s: numpy_helper.from_array(np.ones(s, np.float32), name)  # noqa: E731

# (case, node, initializers, expected message after "node 'n' (op OP, #0): ")
CASES: list[tuple[str, Any, list[Any], str]] = [
    (
        "slice_no_bounds",
        helper.make_node("Slice", ["x"], ["y"], name="n"),
        [],
        "required input #1 (starts) is missing",
    ),
    (
        "slice_empty_starts",
        helper.make_node("Slice", ["x", "", "e"], ["y"], name="n"),
        [I64("e", 3)],
        "required input #1 (starts) is missing",
    ),
    (
        "slice_no_ends",
        helper.make_node("Slice", ["x", "s"], ["y"], name="n"),
        [I64("s", 1)],
        "required input #2 (ends) is missing",
    ),
    (
        "slice_bounds_lengths",
        helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="n"),
        [I64("s", 1, 0), I64("e", 3), I64("a", 1, 2)],
        "Slice starts, ends, axes and steps differ in length (2, 1, 2, 2)",
    ),
    (
        "add_one_operand",
        helper.make_node("Add", ["x"], ["y"], name="n"),
        [],
        "required input #1 (B) is missing",
    ),
    (
        "sub_empty_operand",
        helper.make_node("Sub", ["x", ""], ["y"], name="n"),
        [],
        "required input #1 (B) is missing",
    ),
    # Mul goes through the GELU matcher (raise_norm.try_gelu) before conversion.
    (
        "mul_one_operand",
        helper.make_node("Mul", ["x"], ["y"], name="n"),
        [],
        "required input #1 (B) is missing",
    ),
    (
        "div_empty_first",
        helper.make_node("Div", ["", "x"], ["y"], name="n"),
        [],
        "required input #0 (A) is missing",
    ),
    (
        "identity_empty",
        helper.make_node("Identity", [""], ["y"], name="n"),
        [],
        "required input #0 (input) is missing",
    ),
    (
        "concat_empty_part",
        helper.make_node("Concat", ["x", "", "c"], ["y"], name="n", axis=1),
        [F32("c", 1, 2, 8)],
        "input #1 is empty (Concat inputs are not optional)",
    ),
]


def _save(path: Path, node: Any, inits: list[Any]) -> None:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(path))


@pytest.mark.parametrize(("case", "node", "inits", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_node_one_line_nothing_written(
    tmp_path: Path, case: str, node: Any, inits: list[Any], message: str
) -> None:
    bad = tmp_path / "bad.onnx"
    _save(bad, node, inits)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "compiler.cli.wisp", "compile", str(bad), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"bad.onnx: node 'n' (op {node.op_type}, #0): {message}" in r.stderr, r.stderr
    assert not out.exists()
