"""`wisp run` on .s, .npubin and directories: outputs, report and trace files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend import npubin
from backend.asm import assemble
from compiler.cli.wisp import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "int8_matmul_requant.s"


def test_run_asm_writes_outputs_report_trace(tmp_path: Path, capsys) -> None:
    y, r, t = tmp_path / "y.npz", tmp_path / "r.json", tmp_path / "t.json"
    rc = main(["run", str(EXAMPLE), "--output", str(y), "--report", str(r), "--trace", str(t)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "out: int8[8, 8]" in out and "cycles" in out
    with np.load(y) as npz:
        assert npz["out"].shape == (8, 8)
    rep = json.loads(r.read_text())
    assert rep["cycles"] > 0 and rep["macs_useful"]["int8"] > 0
    assert any(e.get("ph") == "X" for e in json.loads(t.read_text())["traceEvents"])


def test_run_npubin_directory_and_input(tmp_path: Path, capsys) -> None:
    prog = assemble(EXAMPLE.read_text(), str(EXAMPLE))
    (tmp_path / "program.npubin").write_bytes(npubin.write(prog))
    inputs = {
        s.name: np.zeros(s.shape, s.dtype.np_dtype)
        for s in prog.symbols.values()
        if s.kind == "input"
    }
    x = tmp_path / "x.npz"
    np.savez(x, **inputs)  # type: ignore[arg-type]
    y = tmp_path / "y.npz"
    assert main(["run", str(tmp_path), "--input", str(x), "--output", str(y)]) == 0
    with np.load(y) as npz:
        assert not npz["out"].any()  # zero inputs → zero accumulators → requant of 0
    assert main(["run", str(tmp_path), "--timing-only", "--config", "edge"]) == 0
    assert "timing only" in capsys.readouterr().out


def test_run_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path)]) == 1
    assert "no program.npubin" in capsys.readouterr().err
    assert main(["run", str(EXAMPLE), "--config", "nope"]) == 1
    assert "no such config" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["garbage", ""])
def test_run_bad_binary(tmp_path: Path, capsys, bad: str) -> None:
    p = tmp_path / "p.npubin"
    p.write_bytes(bad.encode())
    assert main(["run", str(p)]) == 1
    assert "error" in capsys.readouterr().err
