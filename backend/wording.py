"""Printed text: natural order of names with numbers (`blocks.2` before `blocks.10`) and plurals."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing the digit runs of `name` as numbers: blocks.2 < blocks.10 < head."""
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in _DIGITS.split(name) if p)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """`1 pass`, `7 passes`, `2 heads` (`nouns`: the plural when it is not noun + s/es)."""
    if n == 1:
        return f"{n:,} {noun}"
    if nouns is None:
        nouns = noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{n:,} {nouns}"
