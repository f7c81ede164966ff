"""Turn a choice of slots to remove into a checked removal plan (what structured pruning deletes).

    removal = plan(dg, {"ffn0": [3, 7], "head5": [0]})
    new_weights = removal.slice_weights(store)      # {symbol: array with the entries deleted}
    removal.values[value][dims]                      # flat indices each activation loses
    removal.new_shape(value), removal.new_offsets(slice_op)
    removal.attention[attn_op]                       # {"heads": .., "qk_dim": .., "v_dim": ..} after

`plan` enforces the group constraints: no blocked group, slots in range, no weight axis or activation
emptied, at least one head left, equal QK and V widths across the remaining heads of an attention, and full grids for
reshape-factored views. Violations raise `PlanError` naming the group and the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.ir import Operation, SSAValue

from dialects import nn
from dialects.nn_base import shape_of
from passes.context import PassError
from passes.depgraph import DepGraph, Group


class PlanError(PassError):
    """A removal that would break a group constraint."""


@dataclass
class Removal:
    """What to delete: weight entries per (symbol, axis), activation entries per (value, dims) view, and
    the new head counts and widths of each affected nn.attention."""

    weights: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    values: dict[SSAValue, dict[tuple[int, ...], np.ndarray]] = field(default_factory=dict)
    attention: dict[Operation, dict[str, int]] = field(default_factory=dict)

    def new_shape(self, value: SSAValue) -> tuple[int, ...]:
        """The shape of an activation or nn.weight result after the removal (a factored view shrinks to
        its kept grid)."""
        shape = list(shape_of(value.type))
        owner = value.owner
        if isinstance(owner, nn.WeightOp):
            for axis, idx in self.weights.get(owner.symbol, {}).items():
                shape[axis] -= idx.size
        for dims, idx in self.values.get(value, {}).items():
            sizes = [shape_of(value.type)[d] for d in dims]
            kept = np.setdiff1d(np.arange(math.prod(sizes)), idx)
            for d, coords in zip(dims, np.unravel_index(kept, sizes), strict=True):
                shape[d] = len(np.unique(coords))
        return tuple(shape)

    def new_offsets(self, op: nn.SliceOp) -> tuple[int, ...]:
        """An nn.slice's offsets after the removal: each drops the removed input entries below it."""
        views = self.values.get(op.input, {})
        if any(len(dims) > 1 for dims in views):
            raise PlanError("nn.slice of a reshape-factored view: offsets are not per dim")
        return tuple(
            off - int(np.count_nonzero(views.get((d,), np.zeros(0, np.int64)) < off))
            for d, off in enumerate(op.ints_prop("offsets"))
        )

    def slice_weights(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """New arrays for the weights that change (the inputs are not modified)."""
        out: dict[str, np.ndarray] = {}
        for symbol, axes in self.weights.items():
            arr = weights[symbol]
            for axis, idx in sorted(axes.items()):
                arr = np.delete(arr, idx, axis=axis)
            out[symbol] = arr
        return out


def _add(table: dict, key: object, sub: object, idx: np.ndarray) -> None:  # type: ignore[type-arg]
    cur = table.setdefault(key, {}).get(sub)
    table[key][sub] = np.union1d(cur, idx) if cur is not None else np.unique(idx)


def _check_slots(g: Group, slots: Sequence[int]) -> list[int]:
    if not g.prunable:
        raise PlanError(f"group {g.id} is blocked by {g.blocked_by[0]}")
    chosen = sorted({int(s) for s in slots})
    if len(chosen) != len(slots):
        raise PlanError(f"group {g.id}: duplicate slots")
    if chosen and (chosen[0] < 0 or chosen[-1] >= g.size):
        raise PlanError(f"group {g.id}: slots must be in [0, {g.size})")
    return chosen


def _attention_shapes(
    dg: DepGraph, chosen: dict[str, list[int]]
) -> dict[Operation, dict[str, int]]:
    """New heads/qk_dim/v_dim per attention; the remaining heads must keep equal widths."""
    out: dict[Operation, dict[str, int]] = {}
    attns = {g.attention for g in dg.groups if g.attention is not None and g.id in chosen}
    for attn in attns:
        assert isinstance(attn, nn.AttentionOp)
        gone = {
            g.head[1]
            for g in dg.groups
            if g.kind == "head" and g.attention is attn and chosen.get(g.id) and g.head
        }
        heads = attn.int_prop("heads")
        if len(gone) >= heads:
            raise PlanError(f"{dg.dims.names[attn.results[0]]}: removing all {heads} heads")
        new = {"heads": heads - len(gone)}
        for kind, prop in (("qk_dim", "qk_dim"), ("v_dim", "v_dim")):
            counts: dict[int, int] = {}
            for g in dg.groups:
                if g.kind == kind and g.attention is attn:
                    if g.head is None:
                        raise PlanError(f"group {g.id} spans several heads")
                    if g.head[1] not in gone:
                        counts[g.head[1]] = len(chosen.get(g.id, []))
            if len(set(counts.values())) > 1:
                detail = ", ".join(f"head {h}: {n}" for h, n in sorted(counts.items()))
                raise PlanError(
                    f"{dg.dims.names[attn.results[0]]}: {kind} removals differ between heads ({detail});"
                    f" nn.attention has one {prop} for all heads"
                )
            new[prop] = attn.int_prop(prop) - (next(iter(counts.values())) if counts else 0)
        out[attn] = new
    return out


def _check_grids(dg: DepGraph, values: dict[SSAValue, dict[tuple[int, ...], np.ndarray]]) -> None:
    for value, views in values.items():
        for dims, idx in views.items():
            if len(dims) < 2:
                continue
            sizes = [shape_of(value.type)[d] for d in dims]
            kept = np.setdiff1d(np.arange(math.prod(sizes)), idx)
            coords = np.unravel_index(kept, sizes)
            grid = math.prod(len(np.unique(c)) for c in coords)
            if grid != kept.size:
                name = dg.dims.names.get(value, "%?")
                raise PlanError(
                    f"removal leaves the reshape-factored view {name}#{','.join(map(str, dims))}"
                    f" {sizes} ragged (remove the same inner channels of every row, or whole rows)"
                )


def plan(dg: DepGraph, selection: Mapping[str, Sequence[int]]) -> Removal:
    """Check a selection {group id: slots to remove} and gather everything it deletes."""
    chosen: dict[str, list[int]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    removal = Removal()
    for gid, slots in selection.items():
        try:
            g = dg.group(gid)
        except KeyError:
            raise PlanError(f"no group '{gid}'") from None
        chosen[gid] = _check_slots(g, slots)
        if not chosen[gid]:
            continue
        for m in g.members:
            shapes[m.symbol] = m.shape
            _add(removal.weights, m.symbol, m.axis, m.indices[chosen[gid]].reshape(-1))
        for v in g.values:
            _add(removal.values, v.value, v.dims, v.indices[chosen[gid]].reshape(-1))
    removal.attention = _attention_shapes(dg, chosen)
    for symbol, axes in removal.weights.items():
        for axis, idx in axes.items():
            if idx.size >= shapes[symbol][axis]:
                raise PlanError(f"removal empties axis {axis} of weight {symbol}")
    for value, views in removal.values.items():
        for dims, idx in views.items():
            if idx.size >= math.prod(shape_of(value.type)[d] for d in dims):
                name = dg.dims.names.get(value, "%?")
                raise PlanError(f"removal empties dims {list(dims)} of {name}")
    _check_grids(dg, removal.values)
    return removal
