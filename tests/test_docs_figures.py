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


# A measured figure: 12,345 cycles, 98.61 %, 52.73 uJ, 580,320 B, 2.772 bits/char.
FIGURE = re.compile(
    r"\b\d{1,3}(?:,\d{3})+\s*(?:est\.\s*|npu\s*|active\s*)?cycles\b|\b\d+\.\d+\s*%"
    r"|\b\d+(?:\.\d+)?\s*[uµ]J\b|\b\d{1,3}(?:,\d{3})+\s*B\b|\b\d+\.\d+\s*bits/char"
)
RECORD = re.compile(r"^> Record: measured .+ not regenerated")


def hand_written_figures(text: str) -> list[tuple[int, str]]:
    """Lines with a measured figure outside generated regions and outside sections marked as a record
    (a `> Record: measured …; not regenerated …` line under the heading covers the section). Inline
    code spans are not figures (they name an example or an option)."""
    out: list[tuple[int, str]] = []
    region, record_level, level = False, None, 0
    for n, line in enumerate(text.splitlines(), 1):
        if h := re.match(r"^(#+) ", line):
            level = len(h.group(1))
            if record_level is not None and level <= record_level:
                record_level = None
        if RECORD.match(line):
            record_level = level
        if "<!-- BEGIN generated:" in line:
            region = True
        elif "<!-- END generated:" in line:
            region = False
        elif not region and record_level is None and FIGURE.search(re.sub(r"`[^`]*`", "", line)):
            out.append((n, line.strip()))
    return out


def test_figure_finder_sees_figures_only_outside_regions_and_records() -> None:
    text = (
        "# A\nruns in 32,659 cycles\n<!-- BEGIN generated:x -->\n98.61 %\n<!-- END generated:x -->\n"
        "## B\n> Record: measured at commit abc; not regenerated.\n52.73 uJ\n### B.1\n1,000 B\n"
        "## C\n2.772 bits/char, a fold is 110 cycles\n"
    )
    assert [n for n, _ in hand_written_figures(text)] == [2, 12]


@pytest.mark.parametrize(
    "path", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
)
def test_measured_figures_are_generated_or_marked_as_a_record(path: str) -> None:
    """A figure copied by hand into the docs goes stale silently: put it in a generated region, or
    mark the analysis it belongs to as a dated record."""
    found = hand_written_figures((ROOT / path).read_text())
    assert not found, f"{path}:{found[0][0]}: hand-written figure: {found[0][1][:100]}"
