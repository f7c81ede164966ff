"""Pytest configuration for tests/: fixtures shared by the front-door tests (helpers: frontdoor_util)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# wisp's matrices are small (batch-1 inference). Multi-threaded OpenBLAS on a loaded 2-core machine makes
# a 65x64x128 GEMM take ~16 ms instead of ~15 us; one BLAS thread keeps the suite fast. Set before numpy
# is imported (it reads these at load time), or through threadpoolctl if something imported it already.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if "numpy" in sys.modules:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - optional
        pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (minutes)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("WISP_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow (minutes): run with --run-slow or WISP_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tmp_cwd(tmp_path: Path) -> Iterator[Path]:
    """Run the test inside its tmp_path (for CLIs that write relative paths)."""
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
