"""Search declarations: which options of a pass `wisp search` may set, and where the pass sits.

A pass declares its searchable options next to the option itself, in the dataclass field's
metadata (beside `help`), and its place in searched pipelines with a `search_stage` class attribute:

    @dataclass(frozen=True)
    class TokenPrunePass(ModulePass):
        name = "token-prune"
        search_stage: ClassVar[Stage] = Stage(40, "tokens")
        method: str = field(default="spatten", metadata={"search": Knob(METHODS)})
        keep: tuple[float, ...] = field(default=(0.7,), metadata={"search": Knob(grid(0.3, 0.9, 0.1))})

compiler/search/space.py derives the joint space from the pass registry; nothing else lists knobs.
A knob with one value is a fixed option of searched pipelines (e.g. `hw=` set to the search target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TARGET = "<target>"  # a knob value replaced by the search's --target (e.g. for `hw=`)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Knob:
    """A searchable option: the values the search may give it.

    `off`: at that value the pass instance is left out of the pipeline (e.g. a prune ratio of 0).
    `per`: the pass is instantiated once per value (e.g. one structured-prune per group kind), and
    its other knobs are searched separately for each instance, unless `shared` (one value for all
    the pass's instances)."""

    values: tuple[Any, ...]
    off: Any = UNSET
    per: bool = False
    shared: bool = False

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a search knob needs at least one value")
        if self.off is not UNSET and self.off not in self.values:
            raise ValueError(f"off={self.off!r} is not one of the knob's values")


@dataclass(frozen=True)
class Stage:
    """Where a searchable pass sits in searched pipelines: `order` (ascending) and `group`; passes
    sharing a group are alternatives (the search picks at most one of them)."""

    order: int
    group: str


def grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    """lo, lo+step, ..., hi (inclusive), rounded to 6 decimals so values print exactly."""
    n = round((hi - lo) / step)
    return tuple(round(lo + i * step, 6) for i in range(n + 1))
