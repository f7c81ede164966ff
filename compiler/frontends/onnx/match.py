"""Small helpers shared by the raising patterns: follow no-op nodes, split a binary node into its
run-time and constant operands, read reduce axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.frontends.onnx.state import Env

NOOPS = ("Identity", "Dropout")


def src(env: Env, name: str) -> str:
    """Follow Identity/Dropout (and float→float Cast) nodes upstream."""
    while True:
        node = env.producers.get(name)
        if node is None:
            return name
        if node.op_type in NOOPS or (node.op_type == "Cast" and _float_cast(env, node)):
            name = node.input[0]
            continue
        return name


def _float_cast(env: Env, node: Any) -> bool:
    from onnx.helper import tensor_dtype_to_np_dtype

    to = next((a.i for a in node.attribute if a.name == "to"), None)
    if to is None or np.dtype(tensor_dtype_to_np_dtype(to)).kind != "f":
        return False
    v = env.get(node.input[0])
    if v is None:
        return False
    from compiler.frontends.onnx.state import Const, Run
    from dialects.nn_base import element_of
    from dialects.types import numpy_dtype

    if isinstance(v, Run):
        return numpy_dtype(element_of(v.ssa.type)).kind == "f"
    if isinstance(v, Const):
        return v.array.dtype.kind == "f"
    # a pending value (inside a pattern, e.g. behind a run-time mask): float if made by a float-only op
    prod = env.producers.get(node.input[0])
    return prod is not None and prod.op_type in ("Softmax", "LayerNormalization", "Erf", "Sqrt")


def attrs_of(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded)."""
    from onnx.helper import get_attribute_value

    out: dict[str, Any] = {}
    for a in node.attribute:
        v = get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def node_of(env: Env, name: str, *op_types: str) -> Any | None:
    return env.producer(src(env, name), *op_types)


def split_const(env: Env, node: Any) -> tuple[str, np.ndarray, bool] | None:
    """(run-time input name, constant, constant is the right operand) of a binary node."""
    a, b = node.input[0], node.input[1]
    ca, cb = env.const(src(env, a)), env.const(src(env, b))
    if cb is not None and ca is None:
        return a, cb, True
    if ca is not None and cb is None:
        return b, ca, False
    return None


def scalar_of(arr: np.ndarray) -> float | None:
    flat = arr.reshape(-1)
    if flat.size == 0 or not np.all(flat == flat[0]):
        return None
    return float(flat[0])


def reduces_last(env: Env, node: Any, rank: int) -> bool:
    """A ReduceMean over the last axis that keeps dims."""
    axes = None
    if len(node.input) > 1 and node.input[1]:
        c = env.const(node.input[1])
        axes = None if c is None else [int(a) for a in c.reshape(-1)]
    for a in node.attribute:
        if a.name == "axes":
            axes = list(a.ints)
        if a.name == "keepdims" and a.i == 0:
            return False
    return axes is not None and len(axes) == 1 and axes[0] % rank == rank - 1


def same(env: Env, a: str, b: str) -> bool:
    return src(env, a) == src(env, b)
