"""The figures in README.md and docs/*.md are what the code measures now: every generated region is
regenerated (scripts/refresh_docs.py) and compared with the file, machine-dependent columns (wall
times) masked. The fast regions run in the default suite; the slow ones (minutes each) with --run-slow.
Fails when a doc is stale: run `python scripts/refresh_docs.py NAME` and commit."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import refresh_docs  # noqa: E402

FAST = [n for n, r in refresh_docs.REGIONS.items() if r.fast]
SLOW = [n for n, r in refresh_docs.REGIONS.items() if not r.fast]


def test_every_marked_region_is_registered_and_every_registered_region_is_marked() -> None:
    found: set[str] = set()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        begins = re.findall(r"<!-- BEGIN generated:([\w-]+) -->", text)
        ends = re.findall(r"<!-- END generated:([\w-]+) -->", text)
        assert begins == ends, f"{path.name}: unbalanced generated regions"
        for name in begins:
            assert name in refresh_docs.REGIONS, f"{path.name}: unknown region {name}"
            assert refresh_docs.REGIONS[name].file == str(path.relative_to(ROOT))
        found |= set(begins)
    assert found == set(refresh_docs.REGIONS)


def test_masking_hides_only_the_volatile_columns() -> None:
    body = "Timings (`s`): x\n\n| a | s |\n|---|---|\n| 1 | 2.5 |\n\n| b |\n|---|\n| 3 |"
    masked = refresh_docs.deterministic(body, ["s"])
    assert masked.splitlines() == [
        "Timings (...)", "", "| a | s |", "|---|---|", "| 1 |*|", "", "| b |", "|---|", "| 3 |",
    ]  # fmt: skip
    assert refresh_docs.deterministic(body.replace("| 1 |", "| 9 |"), ["s"]) != masked


@pytest.mark.parametrize("name", FAST)
def test_fast_region_is_fresh(name: str) -> None:
    doc, fresh = refresh_docs.check(name)
    assert doc == fresh, f"stale: python scripts/refresh_docs.py {name}"


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_slow_region_is_fresh(name: str) -> None:
    doc, fresh = refresh_docs.check(name)
    assert doc == fresh, f"stale: python scripts/refresh_docs.py {name}"
