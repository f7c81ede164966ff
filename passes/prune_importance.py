"""Per-slot importance of pruning groups: l1 / l2 magnitude, activation (Wanda-style) and Fisher (NViT).

`slot_scores(groups, criterion, weights, calib, module)` → {group id: scores [size]} (raw, ≥ 0), and
`normalise(groups, raw)` makes them comparable across kinds: each slot's score is divided by the mean
score of its kind and multiplied by its group's `params_per_slot`, so an average slot of any kind is
worth the parameters it removes and layers of one kind compare directly (global ranking).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from passes.context import Calibration, PassError, values_many
from passes.depgraph import Group

CRITERIA = ("l1", "l2", "activation", "fisher")


def _rows(arr: np.ndarray, axis: int) -> np.ndarray:
    """The array as [len(axis), rest]: one row per index along `axis`."""
    a = np.moveaxis(np.asarray(arr, np.float64), axis, 0)
    return a.reshape(a.shape[0], -1)


def _per_slot(g: Group, row_stat: Mapping[str, Mapping[int, np.ndarray]]) -> np.ndarray:
    """Σ over members and their k indices of a per-row statistic of each member's weight."""
    out = np.zeros(g.size)
    for m in g.members:
        out += row_stat[m.symbol][m.axis][m.indices].sum(axis=1)
    return out


def _row_stats(
    groups: Sequence[Group], weights: Mapping[str, np.ndarray], fn: object
) -> dict[str, dict[int, np.ndarray]]:
    stats: dict[str, dict[int, np.ndarray]] = {}
    for g in groups:
        for m in g.members:
            per_axis = stats.setdefault(m.symbol, {})
            if m.axis not in per_axis:
                per_axis[m.axis] = fn(_rows(weights[m.symbol], m.axis))  # type: ignore[operator]
    return stats


def magnitude(
    groups: Sequence[Group], weights: Mapping[str, np.ndarray], p: int
) -> dict[str, np.ndarray]:
    """l1 (p=1): Σ|w| over the slot's entries in all members; l2 (p=2): sqrt(Σ w²)."""
    fn = (lambda r: np.abs(r).sum(axis=1)) if p == 1 else (lambda r: (r * r).sum(axis=1))
    stats = _row_stats(groups, weights, fn)
    out = {g.id: _per_slot(g, stats) for g in groups}
    return out if p == 1 else {k: np.sqrt(v) for k, v in out.items()}


def activation(
    groups: Sequence[Group],
    weights: Mapping[str, np.ndarray],
    calib: Calibration,
    module: ModuleOp,
    samples: int,
) -> dict[str, np.ndarray]:
    """Wanda-style: mean |activation| of the slot's channels (over calibration samples, tokens and the
    group's activations) × the l2 norm of its weight entries."""
    wnorm = magnitude(groups, weights, 2)
    acc = {g.id: np.zeros(g.size) for g in groups}
    for values in values_many(calib, module, weights, calib.inputs[:samples]):
        for g in groups:
            for v in g.values:
                x = np.abs(np.asarray(values[v.value], np.float64))
                lead = np.moveaxis(x, list(v.dims), list(range(len(v.dims))))
                flat = lead.reshape(int(np.prod([x.shape[d] for d in v.dims])), -1).mean(axis=1)
                acc[g.id] += flat[v.indices].mean(axis=1) / max(1, len(g.values))
    n = max(1, min(samples, len(calib.inputs)))
    return {g.id: acc[g.id] / n * wnorm[g.id] for g in groups}


def fisher(
    groups: Sequence[Group],
    weights: Mapping[str, np.ndarray],
    calib: Calibration,
    module: ModuleOp,
    samples: int,
) -> dict[str, np.ndarray]:
    """NViT: Σ_samples (Σ_{w ∈ slot} w · ∂L/∂w)², L the cross-entropy against the calibration label (the
    model's own prediction when there are no labels)."""
    acc = {g.id: np.zeros(g.size) for g in groups}
    labels = calib.labels
    for i, inputs in enumerate(calib.inputs[:samples]):
        label = labels[i] if labels is not None else None
        grads = calib.executor.weight_grads(module, weights, inputs, label)
        stats: dict[str, dict[int, np.ndarray]] = {}
        for g in groups:
            for m in g.members:
                per_axis = stats.setdefault(m.symbol, {})
                if m.axis not in per_axis:
                    wg = np.asarray(weights[m.symbol], np.float64) * grads[m.symbol]
                    per_axis[m.axis] = _rows(wg, m.axis).sum(axis=1)
        for g in groups:
            acc[g.id] += _per_slot(g, stats) ** 2
    return acc


def slot_scores(
    groups: Sequence[Group],
    criterion: str,
    weights: Mapping[str, np.ndarray],
    calib: Calibration | None,
    module: ModuleOp,
    samples: int,
) -> dict[str, np.ndarray]:
    """Raw per-slot scores of each group by `criterion`."""
    if criterion in ("l1", "l2"):
        return magnitude(groups, weights, 1 if criterion == "l1" else 2)
    if calib is None:
        raise PassError(f"criterion={criterion} needs calibration data")
    if criterion == "activation":
        return activation(groups, weights, calib, module, samples)
    if criterion == "fisher":
        return fisher(groups, weights, calib, module, samples)
    raise PassError(f"unknown criterion '{criterion}' (known: {', '.join(CRITERIA)})")


def normalise(groups: Sequence[Group], raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """score / mean score of the kind × params_per_slot (see the module docstring)."""
    kinds: dict[str, list[np.ndarray]] = {}
    for g in groups:
        kinds.setdefault(g.kind, []).append(raw[g.id])
    mean = {k: float(np.mean(np.concatenate(v))) for k, v in kinds.items()}
    return {
        g.id: raw[g.id] / (mean[g.kind] if mean[g.kind] > 0 else 1.0) * g.params_per_slot
        for g in groups
    }
