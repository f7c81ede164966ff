"""structured-prune: remove whole depgraph groups (FFN units, heads, head dims, embed channels).

    structured-prune{target=macs ratio=0.3 criterion=fisher refit=true hw=spatten}

Options:
- `target`: `ratio` (that fraction of each kind's slots), `macs` (until MACs drop by `ratio`) or
  `latency` (NViT latency-aware saliency until the modeled cycles on `hw` drop by `ratio`);
- `ratio` in [0, 1); `kinds` (default head, qk_dim, v_dim, ffn, hidden; `embed` on request);
- `criterion`: `l1`, `l2`, `activation` (Wanda-style) or `fisher` (NViT); see passes/prune_importance.py;
- `hw`: a config name or file (spatten, fact, edge, FILE) for cycles and alignment; `align`: kept widths
  are multiples of it (0: the config's MAC-array columns, or 1 without `hw`); `eta` > 0: NViT's I − η·ΔLat ranking instead of importance per cost saved;
- `refit`: least-squares refit of every linear that lost input columns, on calibration data;
- `samples`: calibration samples used for scores and refit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from backend.config import Config, load_config
from backend.errors import ConfigError
from backend.wording import plural
from passes.context import Calibration, PassError, add_report, calibration_of, weights_of
from passes.depgraph import analyze
from passes.latency import module_cycles
from passes.metrics import measure
from passes.prune_importance import CRITERIA, normalise, slot_scores
from passes.prune_rewrite import dense_outputs, refit, refit_targets, rewrite
from passes.prune_select import Selector, select_budget, select_ratio
from passes.search_decl import TARGET, Knob, Stage, grid

TARGETS = ("ratio", "macs", "latency")
PRUNABLE = ("embed", "head", "qk_dim", "v_dim", "ffn", "hidden")
# Default kinds: all but embed. Removing embed channels changes every layer norm's statistics, which
# first-order scores do not see (it collapses digits-vit without fine-tuning); ask for it with kinds=.
DEFAULT_KINDS = ("head", "qk_dim", "v_dim", "ffn", "hidden")
# Kinds `wisp search` prunes, one ratio each. Head dims are left out (kept widths align to the MAC
# array, and a 16-wide head dim has no aligned step below itself), and so are whole heads: removing
# them without fine-tuning collapses digits-vit (10% of heads: 99 -> 81%), and head-prune covers
# heads at run time.
SEARCH_KINDS = ("ffn",)
# What one slot of each kind is, for the report ("removed 368 FFN units, 7 heads").
_UNIT = {
    "embed": "embed channel",
    "head": "head",
    "qk_dim": "QK channel",
    "v_dim": "V channel",
    "ffn": "FFN unit",
    "hidden": "hidden channel",
}


@dataclass(frozen=True)
class StructuredPrunePass(ModulePass):
    """Remove whole channel groups (heads, FFN units, head dims, embed) by importance, to a target."""

    name = "structured-prune"
    search_stage: ClassVar[Stage] = Stage(10, "prune")

    target: str = field(
        default="ratio",
        metadata={
            "search": Knob(("ratio",)),
            "help": "ratio (of each kind's slots) | macs | latency (modeled cycles on hw)",
        },
    )
    ratio: float = field(
        default=0.3,
        metadata={
            "search": Knob(grid(0.0, 0.5, 0.1), off=0.0),
            "help": "fraction to remove, in [0, 1)",
        },
    )
    criterion: str = field(
        default="l2",
        metadata={
            "search": Knob(("l2", "activation"), shared=True),
            "help": "importance: l1 | l2 | activation | fisher",
        },
    )
    kinds: tuple[str, ...] = field(
        default=(),
        metadata={
            "search": Knob(tuple((k,) for k in SEARCH_KINDS), per=True),
            "help": "group kinds to prune (default head,qk_dim,v_dim,ffn,hidden; also embed)",
        },
    )
    hw: str = field(
        default="",
        metadata={
            "search": Knob((TARGET,)),
            "help": "NPU config name or .toml file for cycles and alignment",
        },
    )
    align: int = field(
        default=0,
        metadata={"help": "kept widths are multiples of this (0: hw's MAC-array columns, or 1)"},
    )
    eta: float = field(
        default=0.0,
        metadata={"help": "> 0: NViT's I - eta*dLat ranking instead of importance per cost saved"},
    )
    refit: bool = field(
        default=False,
        metadata={
            "search": Knob((False, True), shared=True),
            "help": "least-squares refit of linears that lost input columns",
        },
    )
    samples: int = field(default=64, metadata={"help": "calibration samples for scores and refit"})

    def _check(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise PassError(f"ratio must be in [0, 1), got {self.ratio}")
        if self.target not in TARGETS:
            raise PassError(f"unknown target '{self.target}' (known: {', '.join(TARGETS)})")
        if self.criterion not in CRITERIA:
            raise PassError(f"unknown criterion '{self.criterion}' (known: {', '.join(CRITERIA)})")
        for kind in self.kinds:
            if kind not in PRUNABLE:
                raise PassError(f"unknown kind '{kind}' (prunable kinds: {', '.join(PRUNABLE)})")
        if self.align < 0 or self.samples < 1:
            raise PassError("align must be >= 0 and samples >= 1")
        if self.target == "latency" and not self.hw:
            raise PassError("target=latency needs hw= (spatten, fact, edge or a config file)")

    def _config(self) -> Config | None:
        if not self.hw:
            return None
        try:
            return load_config(self.hw)
        except ConfigError as e:
            raise PassError(f"hw={self.hw}: {e}") from None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        self._check()
        config = self._config()
        align = self.align or (config.matrix.cols if config else 1)
        weights = weights_of(ctx, self.name)
        dg = analyze(op)
        kinds = list(self.kinds) or list(DEFAULT_KINDS)
        notes: list[str] = []
        blocked = [
            g
            for g in dg.blocked()
            if g.members
            and (
                g.kind in kinds
                or any(b.reason.startswith("no depgraph rule") for b in g.blocked_by)
            )
        ]
        if blocked:
            g, b = blocked[0], blocked[0].blocked_by[0]
            if self.kinds:  # pruning asked for explicitly: fail closed rather than skip silently
                raise PassError(f"group {g.id} ({g.kind}) is blocked by '{b.where}': {b.reason}")
            notes.append(
                f"{plural(len(blocked), 'group')} left alone, e.g. {g.id}: blocked by '{b.where}'"
            )
        needs_calib = self.refit or self.criterion in ("activation", "fisher")
        calib: Calibration | None = calibration_of(ctx, self.name) if needs_calib else None
        before = self._figures(op, weights, config)

        sel_groups = [g for g in dg.prunable() if g.kind in kinds]
        raw = slot_scores(sel_groups, self.criterion, weights, calib, op, self.samples)
        scores = raw if self.criterion == "fisher" else normalise(sel_groups, raw)
        sel = Selector(dg, op, kinds, scores, align, config)
        if self.ratio > 0:
            if self.target == "ratio":
                select_ratio(sel, kinds, self.ratio)
            else:
                select_budget(
                    sel, "macs" if self.target == "macs" else "cycles", self.ratio, self.eta
                )
        removal = sel.removal()
        chosen = {gid: s for gid, s in sel.chosen.items() if s}
        consumers = refit_targets(op, removal) if self.refit and chosen else []
        targets = dense_outputs(op, weights, calib, consumers, self.samples) if calib else {}
        rewrite(op, weights, removal)
        if consumers and calib is not None:
            refit(op, weights, calib, consumers, targets, removal, self.samples)
        by_kind: dict[str, int] = {}
        for gid, slots in chosen.items():
            kind = dg.group(gid).kind
            by_kind[kind] = by_kind.get(kind, 0) + len(slots)
        notes.insert(
            0,
            "removed " + (", ".join(plural(n, _UNIT[k]) for k, n in by_kind.items()) or "nothing"),
        )
        notes.append(f"align {align}, criterion {self.criterion}, target {self.target}")
        if consumers and calib is not None:
            used = min(self.samples, len(calib.inputs))
            notes.append(
                f"refit {plural(len(consumers), 'linear layer')} on {plural(used, 'sample')}"
            )
        add_report(
            ctx,
            self.name,
            {"before": before, "after": self._figures(op, weights, config), "notes": notes},
        )

    @staticmethod
    def _figures(op: ModuleOp, weights: Any, config: Config | None) -> dict[str, int]:
        m = measure(op, weights)
        out = {"params": m.params, "macs": m.macs, "weight_bytes": m.weight_bytes}
        if config is not None:
            out["cycles"] = module_cycles(op, config)
        return out
