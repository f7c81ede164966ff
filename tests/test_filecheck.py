"""Run the lit + FileCheck suite (tests/filecheck) as one pytest test, so `pytest tests` covers it too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parent / "filecheck"


def _lit_command() -> list[str]:
    """The `lit` console script beside this Python (or on PATH); else lit's main() run by this Python
    (lit 23 has no `__main__`, so `python -m lit` does not work)."""
    beside = Path(sys.executable).with_name("lit")
    if beside.exists() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which("lit")
    if on_path is not None:
        return [on_path]
    return [sys.executable, "-c", "import sys, lit.main; sys.exit(lit.main.main())"]


def test_lit_filecheck_suite() -> None:
    for tool in ("wisp-opt", "filecheck"):
        if shutil.which(tool) is None and not Path(sys.executable).with_name(tool).exists():
            pytest.fail(f"'{tool}' is not installed (pip install -e '.[test]')")
    env = dict(os.environ)
    # The tools beside this Python come first, so lit finds the wisp-opt of this environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(
        [*_lit_command(), "-v", str(SUITE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    print(proc.stdout)
    print(proc.stderr, file=sys.stderr)
    assert proc.returncode == 0, f"lit failed (exit {proc.returncode}); its output is above"
