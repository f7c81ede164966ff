"""Which slots to remove: pruning units, their importance and cost, and the three targets.

A *unit* is the smallest legal step:

- an `ffn` / `hidden` / `embed` group: its lowest-scored remaining slots, as many as bring the kept
  count down to the next multiple of `align` (never below `align`, never to 0);
- a `head` group: the whole head (never the last head of an attention);
- a `qk_dim` / `v_dim` tie (one per attention): the same number of channels from every remaining head
  (each head its own lowest ones), down to the next multiple of `align`.

Targets: `ratio` removes that fraction of each kind's slots (global ranking across layers, by
importance per slot); `macs` removes units in order of importance per MAC saved until the MACs drop
by the ratio; `latency` the same with modeled cycles: importance per cycle saved, Lat(d) − Lat(d−1)
from passes/latency.py at the current widths. With `eta` > 0 the ranking is NViT's latency-aware
saliency I' = I/ΣI − η·(Lat(d) − Lat(d−1))/Lat₀ instead (both terms as fractions of their totals).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation

from backend.config import Config
from dialects import nn
from passes.context import PassError
from passes.depgraph import DepGraph, Group
from passes.depgraph_plan import Removal, plan
from passes.latency import attention_attrs, module_cycles, module_macs

Selection = dict[str, list[int]]


@dataclass(frozen=True)
class Unit:
    kind: str
    key: str  # group id, or the tie of qk_dim / v_dim groups
    picks: dict[str, list[int]]  # group id → slots this step removes
    importance: float

    @property
    def slots(self) -> int:
        return sum(len(v) for v in self.picks.values())


def _step(size: int, kept: int, align: int) -> int:
    """Slots to remove to reach the next lower multiple of `align` (0: at the minimum)."""
    target = ((kept - 1) // align) * align
    return kept - target if target >= max(align, 1) else 0


class Selector:
    """Tracks the removal chosen so far and proposes legal next units with their cost deltas."""

    def __init__(
        self,
        dg: DepGraph,
        module: Operation,
        kinds: Sequence[str],
        scores: Mapping[str, np.ndarray],
        align: int,
        config: Config | None,
    ) -> None:
        self.dg, self.module, self.scores, self.align, self.config = (
            dg,
            module,
            scores,
            align,
            config,
        )
        self.groups = [g for g in dg.prunable() if g.kind in kinds]
        self.ties: dict[str, list[Group]] = {}
        for g in self.groups:
            if g.kind in ("qk_dim", "v_dim"):
                self.ties.setdefault(g.tie or g.id, []).append(g)
        self.heads: dict[Operation | None, list[Group]] = {}
        for g in dg.of_kind("head"):
            if g.attention is not None:
                self.heads.setdefault(g.attention, []).append(g)
        self.chosen: Selection = {}
        self._touch: dict[str, set[Operation]] | None = None

    # -- state -------------------------------------------------------------------------------------
    def removed(self, gid: str) -> list[int]:
        return self.chosen.get(gid, [])

    def head_gone(self, g: Group) -> bool:
        return any(
            self.chosen.get(h.id) for h in self.heads.get(g.attention, []) if h.head == g.head
        )

    def apply(self, unit: Unit) -> None:
        for gid, slots in unit.picks.items():
            self.chosen[gid] = sorted([*self.removed(gid), *slots])

    def removal(self, extra: Unit | None = None) -> Removal:
        sel = {k: list(v) for k, v in self.chosen.items()}
        for gid, slots in (extra.picks if extra else {}).items():
            sel[gid] = sorted([*sel.get(gid, []), *slots])
        return plan(self.dg, sel)

    # -- units -------------------------------------------------------------------------------------
    def _lowest(self, g: Group, n: int) -> list[int]:
        gone = set(self.removed(g.id))
        order = [int(s) for s in np.argsort(self.scores[g.id], kind="stable") if int(s) not in gone]
        return sorted(order[:n])

    def units(self) -> list[Unit]:
        out: list[Unit] = []
        for g in self.groups:
            if g.kind in ("qk_dim", "v_dim"):
                continue
            if g.kind == "head":
                live = [h for h in self.heads.get(g.attention, []) if not self.removed(h.id)]
                if not self.removed(g.id) and len(live) > 1:
                    out.append(Unit("head", g.id, {g.id: [0]}, float(self.scores[g.id][0])))
                continue
            n = _step(g.size, g.size - len(self.removed(g.id)), self.align)
            if n:
                picks = self._lowest(g, n)
                out.append(Unit(g.kind, g.id, {g.id: picks}, float(self.scores[g.id][picks].sum())))
        for tie, members in self.ties.items():
            live = [g for g in members if not self.head_gone(g)]
            if not live:
                continue
            n = _step(live[0].size, live[0].size - len(self.removed(live[0].id)), self.align)
            if n:
                picks = {g.id: self._lowest(g, n) for g in live}
                imp = sum(float(self.scores[gid][s].sum()) for gid, s in picks.items())
                out.append(Unit(live[0].kind, tie, picks, imp))
        return out

    # -- costs -------------------------------------------------------------------------------------
    def touched(self, unit: Unit) -> set[Operation]:
        """Ops whose cost a unit's removal can change (producers and users of its values and weights)."""
        if self._touch is None:
            by_symbol: dict[str, set[Operation]] = {}
            for op in self.module.walk():
                if isinstance(op, nn.WeightOp):
                    by_symbol.setdefault(op.symbol, set()).update(
                        u.operation for u in op.result.uses
                    )
            self._touch = {}
            for g in self.dg.groups:
                ops: set[Operation] = set()
                for v in g.values:
                    if isinstance(v.value.owner, Operation):
                        ops.add(v.value.owner)
                    ops.update(u.operation for u in v.value.uses)
                for m in g.members:
                    ops.update(by_symbol.get(m.symbol, set()))
                if g.attention is not None:
                    ops.add(g.attention)
                self._touch[g.id] = ops
        return set().union(*(self._touch[gid] for gid in unit.picks))

    def cost(self, removal: Removal, metric: str) -> int:
        def attrs(op: Operation) -> Mapping[str, int]:
            return removal.attention.get(op) or attention_attrs(op)

        if metric == "macs":
            return module_macs(self.module, removal.new_shape, attrs)
        assert self.config is not None
        return module_cycles(self.module, self.config, removal.new_shape, attrs)

    def at_minimum(self) -> str:
        """Why no unit is left (for error messages)."""
        parts = []
        for hs in self.heads.values():
            if sum(1 for h in hs if not self.removed(h.id)) == 1 and any(
                g.kind == "head" for g in self.groups
            ):
                parts.append(f"{hs[0].head[0] if hs[0].head else '?'} keeps 1 head")
        for g in self.groups:
            if g.kind not in ("head", "qk_dim", "v_dim"):
                kept = g.size - len(self.removed(g.id))
                parts.append(f"{g.id} keeps {kept} of {g.size}")
        return "; ".join(parts[:8]) + ("; ..." if len(parts) > 8 else "")


def select_ratio(sel: Selector, kinds: Sequence[str], ratio: float) -> None:
    """Remove `ratio` of each kind's slots (nearest whole units), lowest importance per slot first; the
    kinds go in order, so QK/V channels of heads removed before count as removed."""
    for kind in kinds:
        groups = [g for g in sel.groups if g.kind == kind]
        if not groups:
            continue
        total = sum(g.size for g in groups)
        goal = ratio * total
        # channels of heads already removed count as removed (they went with their head)
        removed = sum(g.size for g in groups if g.kind in ("qk_dim", "v_dim") and sel.head_gone(g))
        while True:
            cands = [u for u in sel.units() if u.kind == kind and removed + u.slots / 2 <= goal]
            if not cands:
                break
            best = min(cands, key=lambda u: u.importance / u.slots)
            sel.apply(best)
            removed += best.slots
        if removed + 0.5 < goal and not any(u.kind == kind for u in sel.units()):
            raise PassError(
                f"ratio={ratio} of kind '{kind}' cannot be removed ({removed} of {total} slots"
                f" possible): it would remove a whole layer or every head ({sel.at_minimum()})"
            )


def select_budget(sel: Selector, metric: str, ratio: float, eta: float) -> tuple[int, int]:
    """Remove units until `metric` (macs or cycles) drops by `ratio`; returns (before, after)."""
    before = sel.cost(sel.removal(), metric)
    goal = (1.0 - ratio) * before
    current = before
    total_importance = sum(float(s.sum()) for s in sel.scores.values()) or 1.0
    priority: Callable[[Unit, int], float]
    if eta > 0:  # NViT's subtractive latency-aware saliency
        priority = lambda u, saved: u.importance / total_importance - eta * saved / before  # noqa: E731
    else:  # importance per unit of cost saved (knapsack greedy)
        priority = lambda u, saved: u.importance / max(saved, 1e-9)  # noqa: E731
    saved: dict[str, tuple[dict[str, list[int]], int]] = {}  # unit key → (picks, cost saved)
    while current > goal:
        best: tuple[float, Unit, int] | None = None
        for unit in sel.units():
            hit = saved.get(unit.key)
            if hit is None or hit[0] != unit.picks:
                hit = saved[unit.key] = (unit.picks, current - sel.cost(sel.removal(unit), metric))
            p = priority(unit, hit[1])
            if best is None or p < best[0]:
                best = (p, unit, current - hit[1])
        if best is None:
            raise PassError(
                f"target={'latency' if metric == 'cycles' else metric} ratio={ratio} is out of reach ({metric} {before} -> {current}):"
                f" more would remove a whole layer or every head ({sel.at_minimum()})"
            )
        sel.apply(best[1])
        current = sel.cost(sel.removal(), metric)
        changed = sel.touched(best[1])  # units sharing an op with it now save a different amount
        for key in [
            k for k, (picks, _) in saved.items() if changed & sel.touched(Unit("", k, picks, 0))
        ]:
            del saved[key]
    return before, current
