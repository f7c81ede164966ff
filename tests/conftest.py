"""Pytest configuration for tests/: fixtures shared by the front-door tests (helpers: frontdoor_util)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tmp_cwd(tmp_path: Path) -> Iterator[Path]:
    """Run the test inside its tmp_path (for CLIs that write relative paths)."""
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
