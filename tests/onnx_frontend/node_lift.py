"""Turn an ONNX backend node test into something wisp imports: wisp reads dim 0 of run-time values as a
batch of 1, so a case whose first input has another leading dim is *lifted*: every run-time input gets a
leading axis of 1 and the op's axis attributes / constant axis inputs shift by one (semantics unchanged).
Inputs after the first become initializers (shapes, axes, split sizes and weights are constants in
exported models), so the first input is the one run-time value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

Lift = Callable[[Any, list[np.ndarray]], list[np.ndarray]]


def _shift_axis_attr(node: Any, name: str = "axis") -> None:
    for a in node.attribute:
        if a.name == name and a.i >= 0:
            a.i += 1


def _shift_axes_input(consts: list[np.ndarray], index: int) -> None:
    if len(consts) > index and consts[index] is not None:
        axes = consts[index]
        consts[index] = np.where(axes >= 0, axes + 1, axes).astype(axes.dtype)


def _lift_axis(node: Any, consts: list[np.ndarray]) -> list[np.ndarray]:
    if node.op_type in ("Split", "Gather") and not any(a.name == "axis" for a in node.attribute):
        node.attribute.append(helper.make_attribute("axis", 0))  # the default, made explicit
    _shift_axis_attr(node)
    return consts


def _lift_transpose(node: Any, consts: list[np.ndarray]) -> list[np.ndarray]:
    perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
    rank = len(consts[0].shape) if consts and consts[0] is not None else None
    del node.attribute[:]
    if perm is None:
        assert rank is not None
        perm = list(reversed(range(rank)))
    node.attribute.append(helper.make_attribute("perm", [0] + [p + 1 for p in perm]))
    return consts


def _lift_reshape(node: Any, consts: list[np.ndarray]) -> list[np.ndarray]:
    consts[1] = np.concatenate([[1], consts[1]]).astype(np.int64)
    return consts


def _lift_axes1(node: Any, consts: list[np.ndarray]) -> list[np.ndarray]:
    _shift_axes_input(consts, 1)
    return consts


def _lift_slice(node: Any, consts: list[np.ndarray]) -> list[np.ndarray]:
    if len(consts) < 4 or consts[3] is None:
        axes = np.arange(len(consts[1]), dtype=np.int64)
        consts = [*consts[:3], axes, *consts[4:]] if len(consts) > 3 else [*consts, axes]
    _shift_axes_input(consts, 3)
    return consts


LIFTS: dict[str, Lift] = {
    "Add": lambda n, c: c,
    "Sub": lambda n, c: c,
    "Mul": lambda n, c: c,
    "Div": lambda n, c: c,
    "Relu": lambda n, c: c,
    "Tanh": lambda n, c: c,
    "Gelu": lambda n, c: c,
    "Identity": lambda n, c: c,
    "Dropout": lambda n, c: c,
    "MatMul": lambda n, c: c,
    "Softmax": _lift_axis,
    "LayerNormalization": _lift_axis,
    "Concat": _lift_axis,
    "Gather": _lift_axis,
    "Split": _lift_axis,
    "Transpose": _lift_transpose,
    "Reshape": _lift_reshape,
    "Unsqueeze": _lift_axes1,
    "Squeeze": _lift_axes1,
    "Slice": _lift_slice,
}


# Ops whose float inputs all stay run-time (a run-time × run-time product is nn.matmul).
ALL_RUNTIME = {"MatMul"}
MAX_OPSET = 21
# Training-time extra outputs (LayerNormalization's Mean/InvStdDev, Dropout's mask) are not imported.
FIRST_OUTPUT_ONLY = {"LayerNormalization", "Dropout"}


def opset_for(model: Any) -> int | None:
    """An opset ≤ 21 under which the node means the same as under the case's opset, if any. The
    selected ops' versions after 21 (22-25) only add element types (bfloat16, float8/4, int4/2), so a
    case is restamped to 21 when the op's inputs, outputs and attributes are the same there."""
    from onnx.defs import get_schema

    op = model.graph.node[0].op_type
    case = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if case <= MAX_OPSET:
        return case
    try:
        old, new = get_schema(op, MAX_OPSET), get_schema(op, case)
    except Exception:  # noqa: BLE001 - the op does not exist at opset 21
        return None
    same = (
        [i.name for i in old.inputs] == [i.name for i in new.inputs]
        and [o.name for o in old.outputs] == [o.name for o in new.outputs]
        and set(old.attributes) == set(new.attributes)
    )
    return MAX_OPSET if same else None


def prepare(model: Any, inputs: list[np.ndarray]) -> tuple[Any, list[np.ndarray], bool]:
    """A one-node model with input 0 (all float inputs for ALL_RUNTIME ops) run-time and the rest
    initializers, at an opset ≤ 21; lifted if input 0's leading dim is not 1. Returns (model, wisp's
    run-time inputs without the batch axis, lifted)."""
    graph = model.graph
    node = onnx.NodeProto()
    node.CopyFrom(graph.node[0])
    names = list(node.input)
    x = inputs[0]
    runtime = 1
    if node.op_type in ALL_RUNTIME:
        runtime = len(inputs)
    lifted = any(a.ndim == 0 or a.shape[0] != 1 for a in inputs[:runtime])
    consts: list[Any] = list(inputs)
    # optional inputs absent from the test are absent here too
    while len(consts) < len(names):
        consts.append(None)
    if lifted:
        if node.op_type not in LIFTS or x.ndim == 0:
            raise NotImplementedError(
                f"{node.op_type}: leading dim {x.shape[:1]} is not a batch of 1"
            )
        consts = LIFTS[node.op_type](node, consts)
        # constant operands of elementwise ops keep their rank: broadcasting aligns the trailing axes
    while len(node.input) < len(consts):
        node.input.append(f"extra_{len(node.input)}")
    inits, ins, feeds = [], [], []
    for i, (name, c) in enumerate(zip(node.input, consts, strict=False)):
        if c is None or not name:
            continue
        if i < runtime:
            a = np.asarray(c)
            shape = [1, *a.shape] if lifted else list(a.shape)
            ins.append(
                helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), shape)
            )
            feeds.append(a if lifted else a[0])
        else:
            inits.append(numpy_helper.from_array(np.asarray(c), name))
    keep = graph.output[:1] if node.op_type in FIRST_OUTPUT_ONLY else graph.output
    del node.output[len(keep) :]
    outs = [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None) for o in keep]
    new_graph = helper.make_graph([node], graph.name, ins, outs, inits)
    opset = opset_for(model)
    assert opset is not None
    new = helper.make_model(
        new_graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=model.ir_version
    )
    return new, feeds, lifted
