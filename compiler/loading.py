"""Resolve a MODEL argument: a zoo name, a NAME.mlir (+ weights), or a compiled OUTDIR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compiler.errors import WispError
from compiler.model import Model
from compiler.models.zoo import ZOO, build

MANIFEST = "compile.json"


def load_model(
    spec: str,
    *,
    weights: str | None = None,
    seed: int = 0,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    **options: Any,
) -> Model:
    """A zoo name (with shape options), a path to NAME.mlir or MODEL.onnx, or a directory written by
    `wisp compile`. `input_shapes` fixes an ONNX model's dynamic input dims."""
    path = Path(spec)
    if path.suffix == ".onnx":
        if any(v is not None for v in options.values()):
            raise WispError(f"{spec}: shape options apply to zoo models only; use --input-shape")
        from compiler.frontends.onnx import import_onnx

        return import_onnx(path, input_shapes)
    if input_shapes:
        raise WispError(f"{spec}: --input-shape applies to .onnx models only")
    if spec in ZOO:
        return build(spec, seed=seed, **options)
    if path.is_dir():
        from compiler.io_util import is_staging_leftover

        if is_staging_leftover(path):
            raise WispError(f"{spec}: a leftover staging directory of an interrupted write")
        manifest = path / MANIFEST
        if not manifest.exists():
            raise WispError(f"{spec}: not a wisp compile output (no {MANIFEST})")
        meta = json.loads(manifest.read_text())
        model = Model.load(path / "model.mlir", path / "model.weights.npz")
        model.name = meta.get("model", model.name)
        model.meta = dict(meta.get("meta", {}))
        return model
    if path.suffix == ".mlir":
        if not path.exists():
            raise WispError(f"{spec}: no such file")
        if any(v is not None for v in options.values()):
            raise WispError(f"{spec}: shape options apply to zoo models only")
        return Model.load(path, weights)
    raise WispError(
        f"unknown model '{spec}'; give a zoo name ({', '.join(ZOO)}), a .mlir or .onnx file or a compile output directory"
    )
