"""Model: an nn module plus its WeightStore, saved as NAME.mlir + NAME.weights.npz."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

from compiler.errors import WispError
from compiler.ir import parse_module, print_module
from compiler.weights import WeightStore
from dialects.nn_base import element_of, shape_of
from dialects.types import numpy_dtype


@dataclass
class Model:
    """A model: its nn IR (`func.func @main`), its weights and free-form metadata (e.g. its dataset)."""

    name: str
    module: ModuleOp
    weights: WeightStore
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> FuncOp:
        for op in self.module.ops:
            if isinstance(op, FuncOp) and op.sym_name.data == "main":
                return op
        raise WispError(f"{self.name}: the module has no func.func @main")

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Input names (from the IR's argument names, else arg0…) with shapes and dtypes."""
        specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for i, arg in enumerate(self.main.body.block.args):
            specs[arg.name_hint or f"arg{i}"] = (
                shape_of(arg.type),
                numpy_dtype(element_of(arg.type)),
            )
        return specs

    def clone(self) -> Model:
        return Model(self.name, self.module.clone(), self.weights.copy(), dict(self.meta))

    def save(
        self,
        directory: str | os.PathLike[str],
        stem: str | None = None,
        weights: WeightStore | None = None,
    ) -> Path:
        """Write STEM.mlir and STEM.weights.npz (``weights``, default the model's own) into
        `directory`; return the .mlir path."""
        directory = Path(directory)
        stem = stem or self.name
        mlir = directory / f"{stem}.mlir"
        mlir.write_text(print_module(self.module))
        (weights if weights is not None else self.weights).save(directory / f"{stem}.weights.npz")
        return mlir

    @staticmethod
    def load(
        mlir_path: str | os.PathLike[str], weights_path: str | os.PathLike[str] | None = None
    ) -> Model:
        """Load NAME.mlir and NAME.weights.npz (or the given weights file); check they agree."""
        mlir_path = Path(mlir_path)
        if weights_path is None:
            weights_path = mlir_path.with_name(
                mlir_path.name.removesuffix(".mlir") + ".weights.npz"
            )
        try:
            text = mlir_path.read_text()
        except OSError as e:
            raise WispError(f"{mlir_path}: cannot read ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise WispError(f"{mlir_path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
        module = parse_module(text, str(mlir_path))
        weights = WeightStore.load(weights_path)
        weights.widen_fp16(
            module
        )  # saved in program precision (`wisp compile --save-weights program`)
        weights.check(module)
        from compiler.weight_audit import audit_weights

        audit_weights(str(weights_path), weights, module)
        return Model(mlir_path.name.removesuffix(".mlir"), module, weights)
