"""Read an ONNX file: the protobuf, its external data (kept inside the model's directory), the opset,
the initializers as numpy arrays and the graph inputs with static shapes (batch 1)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler.errors import WispError

MIN_OPSET, MAX_OPSET = 13, 21


def onnx_module() -> Any:
    """The `onnx` package, or one error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise WispError(
            "importing ONNX models needs the 'onnx' package: pip install 'wisp[onnx]'"
        ) from None
    return onnx


@dataclass
class GraphInput:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class OnnxGraph:
    """What the importer needs from a ModelProto, with everything static."""

    path: Path
    opset: int
    nodes: list[Any]  # onnx.NodeProto, in the file's (topological) order
    initializers: dict[str, np.ndarray]
    inputs: list[GraphInput]
    outputs: list[str]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # from ONNX shape inference
    doc: dict[str, str] = field(default_factory=dict)


def parse_shape_overrides(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`name=1x3x224x224` strings (from `--input-shape`) → {name: shape}."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise WispError(
                f"--input-shape {spec!r}: expected NAME=DIMxDIM..., e.g. pixel_values=1x3x224x224"
            )
        out[name] = shape
    return out


def _external_data(onnx: Any, model: Any, path: Path) -> None:
    """Check every external tensor's file stays inside the model's directory and is long enough, then
    load the data into the protobuf."""
    from onnx.external_data_helper import (
        ExternalDataInfo,
        load_external_data_for_model,
        uses_external_data,
    )

    base = path.parent.resolve()
    external = False
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        external = True
        info = ExternalDataInfo(tensor)
        target = (base / info.location).resolve()
        if os.path.isabs(info.location) or not target.is_relative_to(base):
            raise WispError(
                f"{path}: initializer '{tensor.name}' points to external data '{info.location}'"
                f" outside the model's directory {base}; move the data file next to the model"
            )
        if not target.is_file():
            raise WispError(
                f"{path}: external data file '{info.location}' (initializer '{tensor.name}') is"
                f" missing; copy it next to the model"
            )
        end = (info.offset or 0) + (info.length or 0)
        if info.length is not None and end > target.stat().st_size:
            raise WispError(
                f"{path}: external data file '{info.location}' is truncated: initializer"
                f" '{tensor.name}' needs bytes up to {end}, the file has {target.stat().st_size}"
            )
    if external:
        try:
            load_external_data_for_model(model, str(base))
        except (OSError, ValueError) as e:
            raise WispError(f"{path}: cannot read external data ({e})") from None


def _input_dtype(onnx: Any, path: Path, v: Any) -> np.dtype:
    """The numpy dtype of a graph input; an unknown ONNX element type is a WispError naming it."""
    code = v.type.tensor_type.elem_type
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))
    except (KeyError, TypeError, ValueError):
        raise WispError(f"{path}: input '{v.name}' has unknown ONNX element type {code}") from None


def _input_shape(
    path: Path, value: Any, overrides: Mapping[str, tuple[int, ...]]
) -> tuple[int, ...]:
    name = value.name
    ttype = value.type.tensor_type
    if name in overrides:
        shape = overrides[name]
    else:
        if not ttype.HasField("shape"):
            raise WispError(
                f"{path}: input '{name}' has no shape; give one with --input-shape {name}=1x..."
            )
        dims: list[int] = []
        for i, d in enumerate(ttype.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif i == 0:
                dims.append(1)  # the batch dim: wisp runs batch 1
            else:
                what = d.dim_param or "?"
                raise WispError(
                    f"{path}: input '{name}' has dynamic dim '{what}' at position {i}; fix it with"
                    f" --input-shape {name}=" + "x".join(["1", *("N" for _ in ttype.shape.dim[1:])])
                )
        shape = tuple(dims)
    if not shape or shape[0] != 1:
        raise WispError(
            f"{path}: input '{name}' has batch {shape[0] if shape else 'none'} (shape"
            f" {list(shape)}); wisp runs batch 1: re-export with batch 1 or pass --input-shape"
            f" {name}=1x..."
        )
    return shape


def _infer_shapes(onnx: Any, model: Any, inputs: list[GraphInput]) -> dict[str, tuple[int, ...]]:
    """Static shapes of intermediate values (ONNX shape inference with the inputs fixed); a value
    whose shape stays symbolic is left out. Used for `Shape` of values the importer has not built."""
    fixed = {i.name: i.shape for i in inputs}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for v in m.graph.input:
        if v.name in fixed:
            dims = v.type.tensor_type.shape.dim
            del dims[:]
            for d in fixed[v.name]:
                dims.add().dim_value = d
    del m.graph.value_info[:]
    try:
        m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    except Exception:  # inference is a help, not a requirement
        return {}
    out: dict[str, tuple[int, ...]] = {}
    for v in [*m.graph.value_info, *m.graph.output]:
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[v.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    return out


def load_graph(
    path: str | os.PathLike[str], overrides: Mapping[str, tuple[int, ...]] | None = None
) -> OnnxGraph:
    """Load and check an ONNX file; errors name the file (and the initializer or input)."""
    onnx = onnx_module()
    from onnx import numpy_helper

    path = Path(path)
    overrides = dict(overrides or {})
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WispError(f"{path}: cannot read ({e.strerror})") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise WispError(f"{path}: not a valid ONNX file (truncated or not a model: {e})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise WispError(f"{path}: not a valid ONNX file (no graph nodes)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not MIN_OPSET <= opset <= MAX_OPSET:
        raise WispError(
            f"{path}: opset {opset} is outside the supported range {MIN_OPSET}-{MAX_OPSET};"
            f" re-export with opset_version={max(MIN_OPSET, min(opset or MIN_OPSET, MAX_OPSET))}"
        )
    _external_data(onnx, model, path)
    g = model.graph
    inits: dict[str, np.ndarray] = {}
    for t in g.initializer:
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:
            raise WispError(f"{path}: initializer '{t.name}' cannot be read ({e})") from None
        if arr.dtype.kind not in "biuf":  # strings, complex, objects: nothing wisp computes with
            raise WispError(
                f"{path}: initializer '{t.name}' has element type {arr.dtype}, not a number type"
            )
        inits[t.name] = arr
    inputs = [
        GraphInput(
            v.name,
            _input_shape(path, v, overrides),
            _input_dtype(onnx, path, v),
        )
        for v in g.input
        if v.name not in inits
    ]
    shapes = _infer_shapes(onnx, model, inputs)
    unknown = set(overrides) - {i.name for i in inputs}
    if unknown:
        raise WispError(
            f"{path}: --input-shape names unknown input(s) {sorted(unknown)}; the model takes"
            f" {[i.name for i in inputs]}"
        )
    return OnnxGraph(
        path=path,
        opset=int(opset),
        nodes=list(g.node),
        initializers=inits,
        inputs=inputs,
        outputs=[o.name for o in g.output],
        shapes=shapes,
        doc={p.key: p.value for p in model.metadata_props},
    )
