"""A float64 evaluation of an ONNX graph, independent of wisp and of onnxruntime: every float tensor
(initializers, Constant values, graph inputs/outputs, Cast targets) is rewritten to double and the graph
runs on `onnx.reference.ReferenceEvaluator` (numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def _double(t: TensorProto) -> TensorProto:
    return numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name)


def as_float64(path: Path) -> onnx.ModelProto:
    m = onnx.load(str(path))  # external data is loaded from beside the file
    for init in m.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(_double(init))
    for vi in [*m.graph.input, *m.graph.output]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    del m.graph.value_info[:]
    for node in m.graph.node:
        for a in node.attribute:
            if a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.DOUBLE
            if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(_double(a.t))
    return m


def run_float64(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    doubled = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in feeds.items()}
    return list(ReferenceEvaluator(as_float64(path)).run(None, doubled))  # type: ignore[arg-type]
