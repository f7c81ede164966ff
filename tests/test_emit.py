"""`wisp compile --emit`: which artifacts are written, the DRAM image stored once, outputs that
load back to the same program (new and old layouts), a short repr of compiled objects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from frontdoor_util import run_cli

from backend.asm import assemble, disassemble
from backend.npubin import data_span, write
from compiler.api import compile_model, load_compiled, parse_emit
from compiler.errors import WispError

OPTS = {"layers": 1, "image": 8, "patch": 4, "dim": 16, "heads": 2, "mlp_dim": 32, "classes": 3}


@pytest.fixture(scope="module")
def compiled():
    return compile_model("deit-tiny", "", "spatten", **OPTS)


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and "ir" not in p.parts}


def test_default_stores_the_image_once(compiled, tmp_path: Path) -> None:
    out = tmp_path / "o"
    compiled.save(out)
    assert _files(out) == {".wisp-output", "compile.json", "config.json", "model.mlir",
                           "model.weights.npz", "program.npubin", "program.s", "report.json"}  # fmt: skip
    blob = (out / "program.npubin").read_bytes()
    data = compiled.compiled.program.data
    off, size = data_span(blob)
    assert blob[off : off + size] == data and blob.count(data) == 1
    assert f'.incbin "program.npubin", {hex(off)}, {size}' in (out / "program.s").read_text()
    again = assemble((out / "program.s").read_text(), str(out / "program.s"))
    assert write(again) == blob
    assert json.loads((out / "compile.json").read_text())["emit"] == sorted(parse_emit(None))


def test_asm_without_binary_writes_the_image_beside_it(compiled, tmp_path: Path) -> None:
    out = tmp_path / "o"
    compiled.save(out, emit="asm,model")
    assert _files(out) == {".wisp-output", "compile.json", "config.json", "model.mlir",
                           "model.weights.npz", "program.s", "program.data"}  # fmt: skip
    assert (out / "program.data").read_bytes() == compiled.compiled.program.data
    loaded = load_compiled(out)  # assembled from program.s
    assert write(loaded.compiled.program) == write(compiled.compiled.program)
    x = {"image": np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)}
    got, want = loaded.run(x).outputs, compiled.run(x).outputs
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_binary_only_and_old_layout_load(compiled, tmp_path: Path) -> None:
    out = tmp_path / "o"
    compiled.save(out, emit="binary,model")
    assert "program.s" not in _files(out) and "program.data" not in _files(out)
    assert write(load_compiled(out).compiled.program) == write(compiled.compiled.program)
    # an output written before --emit: program.s with `.incbin "program.data"` beside the binary
    (out / "program.data").write_bytes(compiled.compiled.program.data)
    (out / "program.s").write_text(disassemble(compiled.compiled.program, incbin="program.data"))
    again = assemble((out / "program.s").read_text(), str(out / "program.s"))
    assert write(again) == write(compiled.compiled.program)
    assert write(load_compiled(out).compiled.program) == write(compiled.compiled.program)


def test_without_model_load_says_why(compiled, tmp_path: Path) -> None:
    out = tmp_path / "o"
    compiled.save(out, emit="binary")
    with pytest.raises(WispError, match="no model.mlir"):
        load_compiled(out)


@pytest.mark.parametrize(
    ("emit", "msg"), [("asm,bogus", "unknown artifact 'bogus'"), (",", "no artifact")]
)
def test_bad_emit(emit: str, msg: str) -> None:
    with pytest.raises(WispError, match=msg):
        parse_emit(emit)


def test_cli_bad_emit_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = run_cli("wisp", "compile", "deit-tiny", "--layers", "1", "--emit", "asm,x", "-o", out)
    assert r.returncode != 0 and "unknown artifact 'x'" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_incbin_span_must_lie_inside_the_file(tmp_path: Path) -> None:
    (tmp_path / "d.bin").write_bytes(bytes(range(10)))
    src = tmp_path / "p.s"
    src.write_text('.incbin "d.bin", 2, 3\nfinish\n')
    assert assemble(src.read_text(), str(src)).data == bytes([2, 3, 4])
    src.write_text('.incbin "d.bin", 8, 3\nfinish\n')
    with pytest.raises(Exception, match=r"p.s:1:.*not inside the file"):
        assemble(src.read_text(), str(src))


def test_short_repr(compiled) -> None:
    text = repr(compiled)
    assert len(text) < 400 and "instructions=" in text and "\\x" not in text
    assert len(repr(compiled.compiled)) < 400 and len(repr(compiled.compiled.program)) < 300
