"""The README's commands (and the docs' command blocks listed here) run as written, in a scratch
directory, with this checkout's `wisp` (scripts/run_readme.py). Minutes: marked slow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import run_readme  # noqa: E402


def test_every_readme_step_is_run_or_skipped_for_a_stated_reason() -> None:
    steps = run_readme.steps(ROOT / "README.md")
    assert any("wisp eval" in s.text for s in steps) and any(s.kind == "python" for s in steps)
    for s in steps:
        run, skipped = run_readme.plan(s)
        assert run or skipped, f"README.md:{s.line}: nothing to run"


@pytest.mark.slow
@pytest.mark.parametrize("doc", ["README.md", "docs/lowering.md"])
def test_commands_run_as_written(doc: str) -> None:
    assert run_readme.main([doc]) == 0
