"""The README's and the docs' commands run as written, in a scratch directory, with this checkout's
`wisp` (scripts/run_readme.py). Running them takes minutes: marked slow."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import run_readme  # noqa: E402

DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
RUNNABLE = [d for d in DOCS if any(s.kind != "skip" for s in run_readme.steps(ROOT / d))]


@pytest.mark.parametrize("doc", DOCS)
def test_every_step_is_run_or_skipped_for_a_stated_reason(doc: str) -> None:
    for s in run_readme.steps(ROOT / doc):
        run, skipped = run_readme.plan(s)
        assert run or skipped, f"{doc}:{s.line}: nothing to run"
        assert all(r.strip() for r in skipped), f"{doc}:{s.line}: a skip without a reason"


@pytest.mark.parametrize("doc", DOCS)
def test_command_blocks_are_tagged_so_they_run(doc: str) -> None:
    """A fenced block of `wisp`/`python` commands without the `sh` tag would silently never run."""
    text = (ROOT / doc).read_text()
    for m in re.finditer(r"^```(\S*)\n(.*?)^```", text, re.M | re.S):
        tag, body = m.group(1), m.group(2)
        if tag in ("sh", "python"):
            continue
        line = text[: m.start()].count("\n") + 1
        cmds = [x for x in body.splitlines() if re.match(r"\s*(wisp|wisp-opt) [a-z]", x)]
        assert not cmds, (
            f"{doc}:{line}: untagged block of commands ({cmds[0].strip()!r}): tag it sh"
        )


def test_not_run_marker_skips_the_block_with_its_reason(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text(
        "```sh\nwisp passes\n```\n\n<!-- not run: an excerpt -->\n```python\nundefined_name\n```\n"
    )
    steps = run_readme.steps(md)
    assert [(s.kind, s.text) for s in steps] == [("sh", "wisp passes"), ("skip", "an excerpt")]
    assert run_readme.plan(steps[1]) == ("", ["an excerpt"])


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE)
def test_commands_run_as_written(doc: str) -> None:
    assert run_readme.main([doc]) == 0


def test_a_command_continued_with_a_backslash_is_one_step(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("```sh\nwisp search m \\\n    --trials 2  # note\nwisp passes\n```\n")
    steps = run_readme.steps(md)
    assert [(s.line, s.text) for s in steps] == [
        (2, "wisp search m --trials 2"),
        (4, "wisp passes"),
    ]
