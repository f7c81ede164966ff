"""Accuracy of a model on its bundled evaluation set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from compiler import reference
from compiler.errors import WispError
from compiler.model import Model

Runner = Callable[[Model, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from compiler.datasets import load_digits_test

    return load_digits_test()


DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {"digits": _digits}


@dataclass
class EvalResult:
    dataset: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def evaluate(model: Model, *, limit: int | None = None, runner: Runner | None = None) -> EvalResult:
    """Top-1 accuracy over the model's dataset, running each sample through `runner` (the reference
    executor by default)."""
    name = model.meta.get("dataset")
    if name is None:
        raise WispError(f"model '{model.name}' has no bundled evaluation set (digits-vit has one)")
    if name not in DATASETS:
        raise WispError(f"model '{model.name}': unknown dataset '{name}'")
    images, labels = DATASETS[name]()
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    (input_name,) = model.input_specs()
    run = runner or (lambda m, x: reference.run(m, x))
    correct = 0
    for image, label in zip(images, labels, strict=True):
        logits = run(model, {input_name: image})["out0"]
        correct += int(np.argmax(logits.reshape(-1)) == int(label))
    return EvalResult(name, correct, len(labels))
