"""A short run of the fuzz campaign (benchmarks/fuzz.py): no crash, no hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_fuzz_campaign_smoke() -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fuzz.py"),
            "--n",
            "40",
            "--seed",
            "3",
            "--entry",
            "asm,npubin,config,npz",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["asm", "npubin", "config", "npz"], r.stdout
    assert all("uncaught    0  hang   0" in ln for ln in lines), r.stdout
