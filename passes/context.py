"""The pass context: xDSL's Context plus what compression passes need from above the pass layer —
the module's out-of-line weights, calibration inputs and an executor (the reference executor and its
gradients), injected by the compiler so that passes never import it."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue


class PassError(Exception):
    """A pass cannot run on this input (bad option, missing weights, unsupported op)."""


class Executor(Protocol):
    """Runs an nn module on numpy inputs (implemented by compiler/ on the reference executor)."""

    def values(
        self, module: ModuleOp, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]
    ) -> dict[SSAValue, np.ndarray]:
        """Every SSA value's array for one sample (float32)."""
        ...

    def weight_grads(
        self,
        module: ModuleOp,
        weights: Mapping[str, np.ndarray],
        inputs: Mapping[str, np.ndarray],
        label: int | np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        """∂loss/∂weight per symbol for one sample: cross-entropy against `label` (an int for one
        output row, an array per row), or against the model's own argmax when `label` is None."""
        ...


def values_many(
    calib: Calibration,
    module: ModuleOp,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[Mapping[str, np.ndarray]],
) -> list[dict[SSAValue, np.ndarray]]:
    """`calib.executor.values` for each input: in one batch when the executor can (`values_many`)."""
    many = getattr(calib.executor, "values_many", None)
    if many is not None:
        return many(module, weights, inputs)
    return [calib.executor.values(module, weights, x) for x in inputs]


@dataclass
class Calibration:
    """Calibration samples (input name → array) with optional labels, and the executor to run them."""

    inputs: Sequence[Mapping[str, np.ndarray]]
    labels: Sequence[int | np.ndarray] | None
    executor: Executor


@dataclass
class PassContext(Context):
    """A Context that also carries the WeightStore (symbol → array) the module's nn.weight ops name,
    and calibration data for data-driven passes."""

    weights: MutableMapping[str, np.ndarray] | None = field(default=None)
    calibration: Calibration | None = field(default=None)
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def weights_of(ctx: Context, pass_name: str) -> MutableMapping[str, np.ndarray]:
    """The weights a pass may read and replace; a clear error if the module came without them."""
    weights = ctx.weights if isinstance(ctx, PassContext) else None
    if weights is None:
        raise PassError("needs the model's weights (give FILE.weights.npz or --weights)")
    return weights


def add_report(ctx: Context, pass_name: str, report: Mapping[str, Any]) -> None:
    """Record what a pass did. Conventional keys: "before" and "after" (dicts of figures, e.g.
    passes.metrics.Metrics.as_dict() plus "cycles"), and free-form "notes" (a list of strings). The
    driver prints it after the pass and keeps it in compile.json."""
    if isinstance(ctx, PassContext):
        ctx.reports.append((pass_name, dict(report)))


def calibration_of(ctx: Context, pass_name: str) -> Calibration:
    """Calibration samples and executor; a clear error when the driver provided none."""
    calibration = ctx.calibration if isinstance(ctx, PassContext) else None
    if calibration is None or not calibration.inputs:
        raise PassError(f"pass '{pass_name}' needs calibration data, and none was provided")
    return calibration
