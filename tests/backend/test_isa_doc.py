"""docs/isa.md is the generator's output for the current table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backend.isa import ISA
from backend.isa_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_docs_isa_md_is_up_to_date() -> None:
    doc = (ROOT / "docs" / "isa.md").read_text(encoding="utf-8")
    assert doc == render(), "regenerate: python -m backend.isa_doc > docs/isa.md"


def test_doc_covers_every_class_and_field() -> None:
    doc = render()
    for cls in ISA:
        assert f"## {cls.mnemonic}\n" in doc
        for f in cls.fields:
            assert f"| `{f.name}` |" in doc


def test_module_entry_point_prints_the_doc() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "backend.isa_doc"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        encoding="utf-8",
    ).stdout
    assert out == render()
