"""Evaluate one candidate pipeline: modeled cost (static estimate) and validation accuracy.

Runs in worker processes (local pool or Ray), so everything a task needs is in the `Task` and the
result is a plain dict. The cost is the shared cost model's static estimate for one inference on the
target: the list scheduler's cycles and DRAM bytes, the energy summed over the program's
instructions with `backend.cost.cost`, and the stored weight bytes (passes.metrics). Accuracy is
top-1 on the validation images: the model's calibration split minus the samples the passes
calibrate on (never the test split). Two cheap cut-offs skip most of the accuracy work:

- a candidate over a cost budget is only scored on the first `proxy` validation images;
- accuracy stops as soon as the candidate has more misses than `--max-drop` allows (the remaining
  images cannot bring it back), so a rejected candidate costs a few images, not the whole split.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from compiler.errors import WispError
from compiler.model import Model

CALIBRATION_SAMPLES = 64  # compiler.calibration.DEFAULT_SAMPLES: the passes calibrate on these


@dataclass(frozen=True)
class Task:
    """One candidate to evaluate. `max_misses`: stop counting once more images than this are
    wrong (None: score every image); `limits`: absolute cost budgets (cost name → maximum)."""

    model: str
    target: str
    pipeline: str
    max_misses: int | None = None
    limits: tuple[tuple[str, float], ...] = ()
    proxy: int = 32


@cache
def _base_model(name: str) -> Model:
    from compiler.loading import load_model

    return load_model(name)


@cache
def validation_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The validation images and labels of a model: its calibration split after the samples the
    passes calibrate on. The test split is never used here."""
    from compiler.evaluate import CALIBRATION

    model = _base_model(name)
    dataset = model.meta.get("dataset")
    if dataset not in CALIBRATION:
        raise WispError(
            f"model '{model.name}' has no bundled dataset to measure accuracy on "
            "(wisp search needs one, e.g. digits-vit)"
        )
    images, labels = CALIBRATION[dataset]()
    return images[CALIBRATION_SAMPLES:], labels[CALIBRATION_SAMPLES:]


def static_costs(model: Model, target: str) -> dict[str, float]:
    """Cycles, DRAM bytes, energy (pJ) and weight bytes of one inference: static estimate."""
    from backend.compile import compile_module
    from backend.config import load_config
    from backend.cost import cost
    from passes.metrics import measure

    config = load_config(target)
    compiled = compile_module(model.module, model.weights, config)
    report = compiled.static_report
    energy = sum(cost(i, config).energy_total for i in compiled.program.instrs)
    return {
        "cycles": int(report["cycles"]),
        "dram_bytes": int(report["dram_read"]) + int(report["dram_write"]),
        "energy_pj": float(energy),
        "weight_bytes": int(measure(model.module, model.weights).weight_bytes),
    }


CHUNK = 48  # images run through the batched reference at once


def count_correct(
    model: Model, images: np.ndarray, labels: np.ndarray, max_misses: int | None
) -> tuple[int, int]:
    """(correct, evaluated) by the reference executor (batched over `CHUNK` images: the same
    logits as one image at a time), stopping after max_misses + 1 misses."""
    from compiler.reference_batch import run_batch_fast

    (input_name,) = model.input_specs()
    correct = evaluated = 0
    for start in range(0, len(labels), CHUNK):
        out = run_batch_fast(model, {input_name: images[start : start + CHUNK]})["out0"]
        pred = np.asarray(out).reshape(len(out), -1).argmax(axis=1)
        for p, label in zip(pred, labels[start : start + CHUNK], strict=True):
            evaluated += 1
            correct += int(p) == int(label)
            if max_misses is not None and evaluated - correct > max_misses:
                return correct, evaluated
    return correct, evaluated


PREFIX_CACHE = 48  # models kept per worker process, keyed by (model, pipeline prefix)
_prefixes: OrderedDict[tuple[str, str], Model] = OrderedDict()


def split_pipeline(spec: str) -> list[str]:
    """`a{x=1,2},b` → ["a{x=1,2}", "b"]: the top-level passes of a pipeline string."""
    parts, depth, cur = [], 0, ""
    for ch in spec:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur] if p.strip()]


def apply_pipeline(name: str, spec: str) -> Model:
    """The model after `spec`, reusing the longest pipeline prefix this process has applied
    before (searched pipelines share their expensive first passes: pruning, 2:4 refit). Each pass
    is applied exactly as `run_pipeline` on the whole string would (same calibration data), so
    the result does not depend on what the cache holds."""
    from compiler.pipeline import run_pipeline

    parts = split_pipeline(spec)
    n = len(parts)
    while n > 0 and (name, ",".join(parts[:n])) not in _prefixes:
        n -= 1
    model = (_prefixes[(name, ",".join(parts[:n]))] if n else _base_model(name)).clone()
    if n:
        _prefixes.move_to_end((name, ",".join(parts[:n])))
    for i in range(n, len(parts)):
        run_pipeline(model, parts[i], quiet=True)
        _prefixes[(name, ",".join(parts[: i + 1]))] = model.clone()
        while len(_prefixes) > PREFIX_CACHE:
            _prefixes.popitem(last=False)
    return model


def evaluate_task(task: Task) -> dict[str, Any]:
    """Apply the pipeline, price it, score it; errors become a result with `error` set."""
    start = time.perf_counter()
    images, labels = validation_set(task.model)
    out: dict[str, Any] = {"pipeline": task.pipeline, "error": None}
    try:
        model = apply_pipeline(task.model, task.pipeline)
        out.update(static_costs(model, task.target))
    except WispError as e:
        out["error"] = str(e).splitlines()[0]
        out["seconds"] = time.perf_counter() - start
        return out
    over = [k for k, limit in task.limits if out[k] > limit]
    if over:
        images, labels = images[: task.proxy], labels[: task.proxy]
    correct, evaluated = count_correct(model, images, labels, None if over else task.max_misses)
    out.update(
        correct=correct,
        evaluated=evaluated,
        total=len(labels) if not over else len(validation_set(task.model)[1]),
        complete=not over and evaluated == len(labels),
        accuracy=correct / evaluated if evaluated else 0.0,
        seconds=time.perf_counter() - start,
    )
    return out
