"""Search objectives and constraints: what `--objectives`, `--max-drop` and `--budget` name.

Accuracy is top-1 on the validation images (never the test split); the costs are the static
estimate of the shared cost model for one inference on the target (backend.cost via the scheduler).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from compiler.errors import WispError


@dataclass(frozen=True)
class Objective:
    name: str
    key: str  # the field of an evaluation result
    direction: str  # "maximize" | "minimize"
    unit: str


OBJECTIVES: dict[str, Objective] = {
    "accuracy": Objective("accuracy", "accuracy", "maximize", "%"),
    "cycles": Objective("cycles", "cycles", "minimize", "cycles"),
    "energy": Objective("energy", "energy_pj", "minimize", "pJ"),
    "dram": Objective("dram", "dram_bytes", "minimize", "B"),
    "weight_bytes": Objective("weight_bytes", "weight_bytes", "minimize", "B"),
}
COSTS = tuple(n for n in OBJECTIVES if n != "accuracy")


def parse_objectives(text: str | Sequence[str]) -> list[Objective]:
    """`accuracy,cycles` → objectives; unknown or repeated names are errors."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise WispError(f"--objectives: empty (known: {', '.join(OBJECTIVES)})")
    for n in names:
        if n not in OBJECTIVES:
            raise WispError(
                f"--objectives: unknown objective '{n}' (known: {', '.join(OBJECTIVES)})"
            )
    if len(set(names)) != len(names):
        raise WispError(f"--objectives: '{text}' names an objective twice")
    if len(names) < 2:
        raise WispError(
            "--objectives: a search needs at least two objectives (e.g. accuracy,cycles)"
        )
    return [OBJECTIVES[n] for n in names]


def parse_budgets(items: Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """`cycles=0.33` (a fraction of the dense model's cost) → {"cycles": 0.33}."""
    if isinstance(items, Mapping):
        pairs = [(k, str(v)) for k, v in items.items()]
    else:
        pairs = []
        for item in items:
            for part in item.split(","):
                if "=" not in part:
                    raise WispError(f"--budget {part}: expected COST=FRACTION, e.g. cycles=0.33")
                k, v = part.split("=", 1)
                pairs.append((k.strip(), v.strip()))
    out: dict[str, float] = {}
    for k, v in pairs:
        if k not in COSTS:
            raise WispError(f"--budget {k}={v}: unknown cost '{k}' (known: {', '.join(COSTS)})")
        try:
            f = float(v)
        except ValueError:
            raise WispError(f"--budget {k}={v}: not a number") from None
        if not 0.0 < f:
            raise WispError(f"--budget {k}={v}: the fraction of the dense cost must be > 0")
        out[k] = f
    return out
