"""The progress display: on stderr only, never in pipes (unless WISP_PROGRESS=1), never with --quiet,
and no effect on any output (stdout, files)."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
from frontdoor_util import run_cli

from compiler import progress
from compiler.evaluate import evaluate
from compiler.models import build


def test_evaluate_identical_with_and_without_progress(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = build("digits-vit")
    monkeypatch.setenv("WISP_PROGRESS", "0")
    quiet = evaluate(model, limit=12)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("WISP_PROGRESS", "1")
    shown = evaluate(model, limit=12)
    err = capsys.readouterr().err
    assert "/12 " in err and "sample" in err  # the display was really on
    assert shown == quiet


def test_not_shown_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WISP_PROGRESS", raising=False)
    assert not progress.enabled()  # pytest captures stderr: not a terminal
    monkeypatch.setenv("WISP_PROGRESS", "1")
    assert progress.enabled()
    token = progress.QUIET.set(True)
    try:
        assert not progress.enabled()
    finally:
        progress.QUIET.reset(token)


def _env(value: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WISP_PROGRESS"}
    if value is not None:
        env["WISP_PROGRESS"] = value
    return env


def test_cli_outputs_identical_with_and_without_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["compile", "digits-vit", "-p", "canonicalize,quantize{samples=4}"]
    monkeypatch.delenv("WISP_PROGRESS", raising=False)
    piped = run_cli("wisp", *args, "-o", tmp_path / "a", timeout=300)
    monkeypatch.setenv("WISP_PROGRESS", "1")
    shown = run_cli("wisp", *args, "-o", tmp_path / "b", timeout=300)
    quiet = run_cli("wisp", "--quiet", *args, "-o", tmp_path / "c", timeout=300)
    assert piped.returncode == shown.returncode == quiet.returncode == 0
    assert piped.stderr == "" and quiet.stderr == ""  # a pipe, and --quiet: no display
    assert "passes:" in shown.stderr and "calibration run" in shown.stderr
    assert "compile for spatten" in shown.stderr
    assert shown.stdout.replace("/b:", "/a:") == piped.stdout
    for name in ("program.npubin", "program.s", "report.json", "model.weights.npz"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
