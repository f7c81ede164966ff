"""Helpers (no tests) for the depgraph tests: random weights, slot permutation, zeroing and removal in numpy."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from compiler.model import Model
from compiler.reference import run
from compiler.weights import WeightStore
from passes.depgraph import Group, Member


def randomize(model: Model, seed: int = 0) -> Model:
    """Replace every float weight by a random one (zero biases and unit norms hide missing members)."""
    rng = np.random.default_rng(seed)
    out = model.clone()
    for name, arr in model.weights.items():
        if arr.dtype.kind == "f":
            out.weights[name] = (rng.standard_normal(arr.shape) * 0.3).astype(arr.dtype)
    return out


def inputs_for(model: Model, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, (shape, dtype) in model.input_specs().items():
        if dtype.kind == "i":
            feeds[name] = rng.integers(0, 5, shape).astype(dtype)
        else:
            feeds[name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def output(model: Model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return run(model, feeds, dtype=np.float64)["out0"]


def _along(arr: np.ndarray, axis: int, idx: np.ndarray) -> np.ndarray:
    return np.take(arr, idx, axis=axis)


def permute(weights: WeightStore, members: Iterable[Member], perm: np.ndarray) -> WeightStore:
    """Move slot perm[s]'s entries to slot s's positions in every member."""
    out = weights.copy()
    for m in members:
        arr = np.array(out[m.symbol])
        moved = np.moveaxis(arr, m.axis, 0)
        src = np.moveaxis(np.asarray(out[m.symbol]), m.axis, 0)
        moved[m.indices.reshape(-1)] = src[m.indices[perm].reshape(-1)]
        out[m.symbol] = np.moveaxis(moved, 0, m.axis)
    return out


def zero(weights: WeightStore, groups: Iterable[Group], slots: list[int]) -> WeightStore:
    out = weights.copy()
    for g in groups:
        for m in g.members:
            arr = np.moveaxis(np.array(out[m.symbol]), m.axis, 0)
            arr[m.indices[slots].reshape(-1)] = 0
            out[m.symbol] = np.moveaxis(arr, 0, m.axis)
    return out


def remove(weights: WeightStore, groups: Iterable[Group], slots: list[int]) -> WeightStore:
    """Delete the slots' entries of every member (all deletions of one weight computed on the original)."""
    drop: dict[tuple[str, int], set[int]] = {}
    for g in groups:
        for m in g.members:
            drop.setdefault((m.symbol, m.axis), set()).update(
                int(i) for i in m.indices[slots].reshape(-1)
            )
    out = weights.copy()
    for (symbol, axis), idx in drop.items():
        out[symbol] = np.delete(out[symbol], sorted(idx), axis=axis)
    return out


def load_into(small: Model, weights: WeightStore) -> Model:
    """`small` (built independently at the pruned shapes) with the sliced weights; shapes must agree."""
    for name, arr in small.weights.items():
        assert weights[name].shape == arr.shape, (
            f"{name}: sliced {weights[name].shape} vs built {arr.shape}"
        )
    out = small.clone()
    out.weights = WeightStore({k: weights[k] for k in small.weights})
    return out
