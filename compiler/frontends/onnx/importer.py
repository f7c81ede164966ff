"""The walk: every ONNX node in order is folded (all inputs constant), raised (a pattern ends at it) or
converted op by op; dead nn ops are removed at the end and the module is verified."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint
from xdsl.transforms.dead_code_elimination import region_dce

from compiler.errors import WispError
from compiler.frontends.onnx.convert import check_inputs, convert
from compiler.frontends.onnx.fold import fold
from compiler.frontends.onnx.load import OnnxGraph, load_graph, parse_shape_overrides
from compiler.frontends.onnx.match import attrs_of
from compiler.frontends.onnx.raise_attention import try_attention
from compiler.frontends.onnx.raise_linear import try_flat_linear, try_linear_bias, try_patch_embed
from compiler.frontends.onnx.raise_norm import try_gelu, try_layer_norm
from compiler.frontends.onnx.split_fused import split_fused_linears
from compiler.frontends.onnx.state import Const, Env, Pending, Run, Value, drop_axis
from compiler.model import Model
from dialects import nn
from dialects.nn_base import ShapeError, tensor
from dialects.types import element_type

Pattern = Callable[[Env, Any], "list[Value] | None"]

# Raising patterns by the op type of the node they end at, tried in order before op-by-op conversion.
PATTERNS: dict[str, list[Pattern]] = {
    "Add": [try_layer_norm, try_linear_bias],
    "Mul": [try_gelu],
    "Reshape": [try_attention, try_flat_linear],
    "Transpose": [try_patch_embed],
}

# Constant nodes whose outputs keep the initializer's name (content unchanged up to layout).
_KEEPS_ORIGIN = {
    "Identity",
    "Cast",
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Expand",
    "Slice",
    "Gather",
}


def parse_input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    return parse_shape_overrides(specs)


def _const_args(ins: Sequence[Value | None]) -> list[np.ndarray | None] | None:
    """The inputs' arrays (None for an omitted optional input) if every given input is a constant."""
    out: list[np.ndarray | None] = []
    for v in ins:
        if v is not None and not isinstance(v, Const):
            return None
        out.append(None if v is None else v.array)
    return out


def _step(env: Env, node: Any) -> None:
    ins: list[Value | None] = []
    for name in node.input:
        if not name:
            ins.append(None)
            continue
        v = env.get(name)
        if v is None:
            raise env.error(node, f"input '{name}' is not defined before use")
        ins.append(v)
    check_inputs(env, node, ins)
    pending = next((v for v in ins if isinstance(v, Pending)), None)
    attrs = attrs_of(node)
    outs: list[Value] | None = None
    known = env.graph.shapes.get(node.input[0]) if node.input else None
    if node.op_type == "Shape" and (isinstance(ins[0], Run) or known is not None):
        start, end = attrs.get("start", 0), attrs.get("end", None)
        dims = ins[0].shape if isinstance(ins[0], Run) else known
        outs = [Const(np.array(dims, np.int64)[start:end])]
    elif node.op_type == "Size" and isinstance(ins[0], Run):
        outs = [Const(np.array(int(np.prod(ins[0].shape)), np.int64))]
    elif (args := _const_args(ins)) is not None and node.domain in ("", "ai.onnx"):
        try:
            folded = fold(node.op_type, args, attrs, env.graph.opset, len(node.output))
        except Exception as e:
            raise env.error(node, f"cannot evaluate on constants ({e})") from None
        if folded is None:
            raise env.error(node, f"unsupported op {node.op_type} on constants")
        origin = (
            ins[0].origin
            if ins and isinstance(ins[0], Const) and node.op_type in _KEEPS_ORIGIN
            else None
        )
        outs = [Const(np.asarray(a), origin) for a in folded]
    if outs is None:
        for pattern in PATTERNS.get(node.op_type, ()):
            outs = pattern(env, node)
            if outs is not None:
                break
    if outs is None and pending is not None:
        outs = [pending for _ in node.output]
    if outs is None:
        outs = convert(env, node, ins, attrs)
    for name, v in zip(node.output, outs, strict=False):
        if name:
            env.values[name] = v


def _build(graph: OnnxGraph) -> Model:
    arg_types = []
    for i in graph.inputs:
        dt = np.dtype(np.int32) if i.dtype.kind in "iub" else np.dtype(np.float32)
        arg_types.append(tensor(drop_axis(i.shape, 0), element_type(dt)))
    block = Block(arg_types=arg_types)
    env = Env(graph, Builder(InsertPoint.at_end(block)))
    for gi, arg in zip(graph.inputs, block.args, strict=True):
        name = gi.name if isinstance(gi.name, str) else None  # a non-UTF-8 name stays bytes
        arg.name_hint = name if name is not None and name.isidentifier() else None
        env.values[gi.name] = Run(arg, gi.shape, 0)
    for name, arr in graph.initializers.items():
        env.values[name] = Const(arr, name)
    for node in graph.nodes:
        try:
            _step(env, node)
        except ShapeError as e:  # an nn op the node maps to rejects its shapes
            raise env.error(node, str(e)) from None
    results = []
    for name in graph.outputs:
        v = env.get(name)
        if isinstance(v, Pending):
            raise WispError(f"{graph.path}: {v.where}: {v.reason}")
        if isinstance(v, Const):
            raise WispError(f"{graph.path}: output '{name}' is a constant; nothing to compile")
        if v is None:
            raise WispError(f"{graph.path}: output '{name}' is not computed by any node")
        results.append(v.ssa)
    env.builder.insert(ReturnOp(*results))
    func = FuncOp("main", (arg_types, [r.type for r in results]), Region(block))
    region_dce(func.body)
    split_fused_linears(func, env.weights)
    used = {op.symbol for op in func.walk() if isinstance(op, nn.WeightOp)}
    for name in [n for n in env.weights if n not in used]:
        del env.weights[name]
    module = ModuleOp([func])
    try:
        module.verify()
    except Exception as e:
        raise WispError(f"{graph.path}: the imported IR does not verify: {e}") from None
    stem = graph.path.name.removesuffix(".onnx")
    meta = {
        "family": "onnx",
        "source": str(graph.path),
        "opset": graph.opset,
        "inputs": {i.name: list(i.shape) for i in graph.inputs},
        "outputs": list(graph.outputs),
    }
    return Model(name=stem, module=module, weights=env.weights, meta=meta)


def import_onnx(
    path: str | os.PathLike[str],
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> Model:
    """Import an ONNX file as an nn Model (batch squeezed, decomposed subgraphs raised)."""
    start = time.perf_counter()
    overrides = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    graph = load_graph(Path(path), overrides)
    model = _build(graph)
    model.meta["import_seconds"] = round(time.perf_counter() - start, 4)
    model.meta["onnx_nodes"] = len(graph.nodes)
    return model
