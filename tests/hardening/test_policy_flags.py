"""`wisp --strict` (suspicious weights are errors) and `wisp --allow-lossy` (lossy input
conversions are the user's choice): the default refuses / warns, the flags change exactly that."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from backend.convert import ALLOW_LOSSY, convert

WISP = [sys.executable, "-c", "from compiler.cli.wisp import main; raise SystemExit(main())"]


def _wisp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WISP, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_convert_refuses_then_saturates_when_allowed() -> None:
    x = np.array([1.5, 300.0, -400.0])
    try:
        convert(x, np.dtype(np.int8), "input 'x'")
        raise AssertionError("a lossy conversion was accepted")
    except ValueError as e:
        assert "input 'x'" in str(e) and "--allow-lossy" in str(e)
    token = ALLOW_LOSSY.set(True)
    try:
        got = convert(x, np.dtype(np.int8), "input 'x'")
    finally:
        ALLOW_LOSSY.reset(token)
    assert got.tolist() == [1, 127, -128]  # saturated, truncated toward zero
    z = np.array([1 + 2j, -3 - 1j])
    token = ALLOW_LOSSY.set(True)
    try:
        assert convert(z, np.dtype(np.float32), "z").tolist() == [1.0, -3.0]
    finally:
        ALLOW_LOSSY.reset(token)


def test_cli_strict_turns_nan_weights_into_one_error(tmp_path: Path) -> None:
    assert (
        _wisp("compile", "bert-tiny", "--target", "none", "-o", "m", cwd=tmp_path).returncode == 0
    )
    w = dict(np.load(tmp_path / "m" / "model.weights.npz"))
    key = next(k for k, v in w.items() if v.dtype.kind == "f" and v.ndim == 2)
    w[key] = w[key].copy()
    w[key][0, 0] = np.nan
    np.savez(tmp_path / "m" / "model.weights.npz", **w)
    warned = _wisp("compile", "m/model.mlir", "--target", "none", "-o", "a", cwd=tmp_path)
    assert warned.returncode == 0 and "NaN" in warned.stderr
    strict = _wisp(
        "--strict", "compile", "m/model.mlir", "--target", "none", "-o", "b", cwd=tmp_path
    )
    assert strict.returncode == 1
    lines = [ln for ln in strict.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "NaN" in lines[0] and "Traceback" not in strict.stderr
    assert not (tmp_path / "b").exists()


def test_non_finite_inputs_warn_then_fail_under_strict(tmp_path: Path) -> None:
    assert _wisp("compile", "digits-vit", "-o", "p", cwd=tmp_path).returncode == 0
    x = np.zeros((1, 16, 16), np.float32)  # digits-vit's image input
    x[0, 0, 0] = np.nan
    np.savez(tmp_path / "x.npz", image=x)
    warned = _wisp("run", "p", "--input", "x.npz", cwd=tmp_path)
    assert warned.returncode == 0 and "NaN" in warned.stderr
    strict = _wisp("--strict", "run", "p", "--input", "x.npz", cwd=tmp_path)
    lines = [ln for ln in strict.stderr.splitlines() if ln.strip()]
    assert strict.returncode == 1 and len(lines) == 1 and "input 'image'" in lines[0]
