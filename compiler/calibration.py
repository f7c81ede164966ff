"""Calibration data and the reference-executor implementation of passes.context.Executor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from compiler import reference
from compiler.autodiff import cross_entropy_grad, grad
from compiler.model import Model
from compiler.progress import tick
from compiler.weights import WeightStore
from passes.context import Calibration

DEFAULT_SAMPLES = 64


class ReferenceExecutor:
    """passes.context.Executor on the numpy reference executor and compiler.autodiff."""

    def values(
        self, module: ModuleOp, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]
    ) -> dict[SSAValue, np.ndarray]:
        tick("calibration run")
        values: dict[SSAValue, np.ndarray] = {}
        reference.run(_model(module, weights), inputs, values=values)
        return values

    def values_many(
        self,
        module: ModuleOp,
        weights: Mapping[str, np.ndarray],
        inputs: Sequence[Mapping[str, np.ndarray]],
    ) -> list[dict[SSAValue, np.ndarray]]:
        """`values` for each input, run as one batch (compiler/reference_batch.py: the same arrays)."""
        from compiler.reference_batch import values_per_input

        for _ in inputs:
            tick("calibration run")
        return values_per_input(_model(module, weights), list(inputs))

    def weight_grads(
        self,
        module: ModuleOp,
        weights: Mapping[str, np.ndarray],
        inputs: Mapping[str, np.ndarray],
        label: int | np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        tick("gradient run")
        model = _model(module, weights)
        logits = reference.run(model, inputs, dtype=np.float64)["out0"]
        rows = logits.reshape(-1, logits.shape[-1])
        if label is None:
            target = rows.argmax(axis=-1)
        else:
            target = np.broadcast_to(np.asarray(label), (rows.shape[0],))
        _, d = cross_entropy_grad(rows, target)
        _, grads = grad(model, inputs, {"out0": d.reshape(logits.shape)})
        return grads


def _model(module: ModuleOp, weights: Mapping[str, np.ndarray]) -> Model:
    store = weights if isinstance(weights, WeightStore) else WeightStore(dict(weights))
    return Model("calibration", module, store)


def calibration_for(model: Model, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Calibration:
    """The model's calibration split if it has a dataset (never its test split), real decode steps
    for a language model's decode form (compiler/generation/calibration.py), else seeded random
    inputs: standard-normal images, uniform token ids."""
    from compiler.evaluate import CALIBRATION

    if str(model.meta.get("form", "")).startswith("decode"):  # a generation step: real text
        from compiler.generation.calibration import decode_calibration

        return decode_calibration(model, samples)
    dataset = model.meta.get("dataset")
    if dataset in CALIBRATION:
        images, labels = CALIBRATION[dataset]()
        (name,) = model.input_specs()
        n = min(samples, len(labels))
        return Calibration(
            [{name: images[i]} for i in range(n)], [int(v) for v in labels[:n]], ReferenceExecutor()
        )
    rng = np.random.default_rng(seed)
    vocab = model.meta.get("config", {}).get("vocab", 2)
    bounds = _index_bounds(model)
    inputs = []
    for _ in range(samples):
        sample = {}
        for name, (shape, dtype) in model.input_specs().items():
            if dtype.kind == "f":
                sample[name] = rng.standard_normal(shape).astype(dtype)
            else:
                sample[name] = rng.integers(0, bounds.get(name, vocab), shape).astype(dtype)
        inputs.append(sample)
    return Calibration(inputs, None, ReferenceExecutor())


def _index_bounds(model: Model) -> dict[str, int]:
    """For each integer input that indexes tables (nn.gather, nn.scatter), the smallest table's row count, so
    random ids stay in range (token types index a 2-row table, ids the vocabulary)."""
    from xdsl.dialects.builtin import TensorType

    bounds: dict[str, int] = {}
    names = list(model.input_specs())
    for name, arg in zip(names, model.main.body.block.args, strict=True):
        for use in arg.uses:
            op = use.operation
            table = op.operands[0].type
            # nn.gather's ids and nn.scatter's slots (a resident KV cache's rows) index rows
            if (
                op.name in ("nn.gather", "nn.scatter")
                and use.index == 1
                and isinstance(table, TensorType)
            ):
                rows = int(table.get_shape()[0])
                bounds[name] = min(bounds.get(name, rows), rows)
    return bounds
