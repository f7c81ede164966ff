"""The importer's state: what each ONNX value has become (a constant, a run-time nn value with its
ONNX shape and batch axis, or a pending value that has no nn form), the nn builder and the weights."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.builder import Builder
from xdsl.ir import SSAValue

from compiler.errors import WispError
from compiler.frontends.onnx.load import OnnxGraph
from compiler.weights import WeightStore
from dialects import nn
from dialects.nn_base import NNOp, PropValue, element_of, shape_of, tensor
from dialects.types import element_type


@dataclass(frozen=True)
class Const:
    """A value known at import time (an initializer, a Constant, or folded shape arithmetic)."""

    array: np.ndarray
    origin: str | None = None  # the initializer it came from unchanged in content, for naming


@dataclass(frozen=True)
class Run:
    """A run-time value: an nn SSA value whose shape is the ONNX `shape` without its batch axis."""

    ssa: SSAValue
    shape: tuple[int, ...]
    batch: int

    def nn_axis(self, axis: int) -> int:
        axis %= len(self.shape)
        if axis == self.batch:
            raise ValueError("the batch axis")
        return axis if axis < self.batch else axis - 1


@dataclass(frozen=True)
class Pending:
    """A value that has no nn equivalent on its own; an error if anything but a raising pattern uses it."""

    where: str
    reason: str


Value = Const | Run | Pending

_UGLY = re.compile(r"^(onnx::|val_|_val|/|\d|arg\d|p_|b_|c_)|::")


def drop_axis(shape: Sequence[int], axis: int) -> tuple[int, ...]:
    return tuple(d for i, d in enumerate(shape) if i != axis)


class Env:
    """Values by ONNX name, the nn builder, and the WeightStore being filled."""

    def __init__(self, graph: OnnxGraph, builder: Builder) -> None:
        self.graph = graph
        self.builder = builder
        self.values: dict[str, Value] = {}
        self.producers: dict[str, Any] = {}
        self.position: dict[int, int] = {}
        self.weights = WeightStore()
        self._weight_ssa: dict[str, SSAValue] = {}
        for i, node in enumerate(graph.nodes):
            self.position[id(node)] = i
            for out in node.output:
                self.producers[out] = node

    # --- naming and errors ---

    def describe(self, node: Any) -> str:
        name = f"'{node.name}' " if node.name else ""
        return f"node {name}(op {node.op_type}, #{self.position.get(id(node), '?')})"

    def error(self, node: Any, message: str) -> WispError:
        return WispError(f"{self.graph.path}: {self.describe(node)}: {message}")

    # --- values ---

    def get(self, name: str) -> Value | None:
        return self.values.get(name) if name else None

    def const(self, name: str) -> np.ndarray | None:
        v = self.values.get(name)
        return v.array if isinstance(v, Const) else None

    def scalar(self, name: str) -> float | None:
        a = self.const(name)
        if a is None or a.size != 1 or a.dtype.kind not in "fiu":
            return None
        return float(a.reshape(-1)[0])

    def run(self, name: str) -> Run | None:
        v = self.values.get(name)
        return v if isinstance(v, Run) else None

    def producer(self, name: str, *op_types: str) -> Any | None:
        node = self.producers.get(name)
        if node is None or (op_types and node.op_type not in op_types):
            return None
        return node

    # --- building nn ---

    def emit(
        self,
        op_cls: type[NNOp],
        operands: Sequence[SSAValue],
        result_shape: Sequence[int] | None = None,
        **props: PropValue,
    ) -> SSAValue:
        rt = None if result_shape is None else tensor(result_shape, element_of(operands[0].type))
        op = op_cls.make(list(operands), rt, **props)
        op.verify()
        self.builder.insert(op)
        return op.results[0]

    def wrap(self, ssa: SSAValue, batch: int = 0) -> Run:
        s = list(shape_of(ssa.type))
        s.insert(batch, 1)
        return Run(ssa, tuple(s), batch)

    def reshape(self, x: Run, shape: Sequence[int], batch: int) -> Run:
        nn_shape = drop_axis(shape, batch)
        if nn_shape == shape_of(x.ssa.type):
            return Run(x.ssa, tuple(shape), batch)
        return Run(self.emit(nn.ReshapeOp, [x.ssa], nn_shape), tuple(shape), batch)

    def readable(self, origin: str | None, node: Any, role: str) -> str:
        """A weight name: the initializer's name if it reads well, else the node's scope + role."""
        if origin and not _UGLY.search(origin):
            base = origin
        else:
            scope = [p for p in (node.name or "").split("/") if p]
            if len(scope) > 1:
                base = ".".join(scope[:-1]) + f".{role}"
            elif origin:
                base = re.sub(r"[^\w.]+", ".", origin).strip(".") or role
            else:
                base = f"{node.op_type.lower()}{self.position.get(id(node), 0)}.{role}"
        base = re.sub(r"[^\w.\-]+", "_", base).strip("._") or role
        name, i = base, 1
        while name in self.weights:
            i += 1
            name = f"{base}.{i}"
        return name

    def weight(self, array: np.ndarray, origin: str | None, node: Any, role: str) -> SSAValue:
        """An nn.weight for an array (reused when the same initializer is used the same way)."""
        arr = np.ascontiguousarray(array)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.dtype == np.float64 or arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu" and arr.dtype != np.int32:
            arr = arr.astype(np.int32)
        elif arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        digest = hashlib.blake2b(arr.data.cast("B"), digest_size=16).hexdigest()
        key = f"{origin}:{arr.shape}:{arr.dtype}:{digest}"
        if key in self._weight_ssa:
            return self._weight_ssa[key]
        name = self.readable(origin, node, role)
        self.weights[name] = arr
        op = nn.WeightOp.of(name, tensor(arr.shape, element_type(arr.dtype)))
        self.builder.insert(op)
        self._weight_ssa[key] = op.result
        return op.result

    def operand(self, value: Value, like: Run, node: Any, role: str = "const") -> SSAValue:
        """An nn operand for `value` in an elementwise op with `like`: a constant loses the batch
        axis where it lines up with `like`'s (it must be 1 there); a run-time value must share it."""
        if isinstance(value, Run):
            if value.batch != like.batch and len(value.shape) == len(like.shape):
                raise self.error(node, "operands disagree on which axis is the batch axis")
            if len(value.shape) != len(like.shape):
                raise self.error(node, "broadcasting between run-time values of different ranks")
            return value.ssa
        if not isinstance(value, Const):
            raise self.error(node, "operand has no nn form")
        arr = value.array
        at = like.batch - (len(like.shape) - arr.ndim)
        if at >= 0:
            if arr.shape[at] != 1:
                raise self.error(
                    node, f"a constant of shape {list(arr.shape)} varies along the batch axis"
                )
            arr = arr.reshape(drop_axis(arr.shape, at))
        if arr.dtype.kind == "f" or arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        return self.weight(arr, value.origin, node, role)
