"""Accuracy of a model on its bundled evaluation set, with the modeled cost per inference when the
runner is the NPU interpreter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler import reference
from compiler.errors import WispError
from compiler.model import Model
from compiler.progress import track

# A runner maps one sample's inputs to (outputs, cost report or None).
Runner = Callable[[Mapping[str, np.ndarray]], tuple[Mapping[str, np.ndarray], Any]]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from compiler.datasets import load_digits_test

    return load_digits_test()


def _digits_calibration() -> tuple[np.ndarray, np.ndarray]:
    from compiler.datasets import load_digits_calibration

    return load_digits_calibration()


# Evaluation sets (held out) and calibration sets (drawn from training data), by dataset name.
DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {"digits": _digits}
CALIBRATION: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "digits": _digits_calibration
}


@dataclass
class EvalResult:
    dataset: str
    correct: int
    total: int
    predictions: list[int] = field(default_factory=list)
    cycles: float = 0.0  # means per inference (interpreter runs only)
    dram_bytes: float = 0.0
    energy_uj: float = 0.0
    time_us: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def dataset_of(model: Model, limit: int | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    name = model.meta.get("dataset")
    if name is None:
        raise WispError(
            f"model '{model.name}' has no bundled evaluation set (digits-vit has one); "
            "give its inputs with --input x.npz"
        )
    if name not in DATASETS:
        raise WispError(f"model '{model.name}': unknown dataset '{name}'")
    images, labels = DATASETS[name]()
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return name, images, labels


def evaluate(model: Model, *, limit: int | None = None, runner: Runner | None = None) -> EvalResult:
    """Top-1 accuracy over the model's dataset; `runner` defaults to the reference executor."""
    name, images, labels = dataset_of(model, limit)
    (input_name,) = model.input_specs()
    run: Runner = runner or (lambda x: (reference.run(model, x), None))
    result = EvalResult(name, 0, len(labels))
    what = "interpreter" if runner is not None else "reference executor"
    samples = track(list(zip(images, labels, strict=True)), f"{name} on the {what}", unit="sample")
    for image, label in samples:
        outputs, report = run({input_name: image})
        pred = int(np.argmax(np.asarray(outputs["out0"]).reshape(-1)))
        result.predictions.append(pred)
        result.correct += int(pred == int(label))
        if report is not None:
            result.cycles += report.cycles / len(labels)
            result.dram_bytes += (report.dram_read + report.dram_write) / len(labels)
            result.energy_uj += report.energy_total_pj / 1e6 / len(labels)
            result.time_us += report.time_us / len(labels)
    return result


def compare(
    model: Model, run_npu: Callable[[dict[str, np.ndarray]], Any], *, limit: int | None = None
) -> tuple[EvalResult, EvalResult, int]:
    """The dataset on the NPU (``run_npu(inputs)`` returns an interpreter result: ``.outputs``,
    ``.report``) and on the reference executor, and how many of their predictions agree."""

    def on_npu(x: Mapping[str, np.ndarray]) -> tuple[Mapping[str, np.ndarray], Any]:
        r = run_npu(dict(x))
        return r.outputs, r.report

    npu = evaluate(model, limit=limit, runner=on_npu)
    ref = evaluate(model, limit=limit)
    agree = sum(a == b for a, b in zip(npu.predictions, ref.predictions, strict=True))
    return npu, ref, agree
