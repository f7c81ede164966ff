"""`wisp import` (NAME.mlir + NAME.weights.npz, both or neither, never over a file wisp did not write)
and `wisp eval --input x.npz` on an imported model, its .mlir and a compile output of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import onnx_graphs as graphs  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.cli.wisp import main  # noqa: E402
from compiler.model import Model  # noqa: E402


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return graphs.vit(tmp_path_factory.mktemp("cli") / "vit.onnx", "dynamo")


def wisp(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_writes_the_pair_and_matches_onnxruntime(
    vit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = wisp(capsys, "import", vit, "-o", tmp_path / "vit.mlir")
    assert code == 0 and "vit.weights.npz" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vit.mlir", "vit.weights.npz"]
    model = Model.load(tmp_path / "vit.mlir")
    assert "nn.attention" in (tmp_path / "vit.mlir").read_text()
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(str(vit)).run(None, {"pixel_values": x})[0][0]
    got = reference.run(model, {"pixel_values": x[0]})["out0"]
    assert np.abs(got - want).max() <= 1e-4 * float(want.max() - want.min())


def test_import_refuses_and_writes_nothing(
    vit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = wisp(capsys, "import", vit, "-o", tmp_path / "vit.txt")
    assert code == 1 and "NAME.mlir" in err
    notes = tmp_path / "vit.mlir"
    notes.write_text("my notes\n")
    code, _, err = wisp(capsys, "import", vit, "-o", notes)
    assert code == 1 and "does not look like a wisp output" in err
    assert notes.read_text() == "my notes\n" and not (tmp_path / "vit.weights.npz").exists()
    assert wisp(capsys, "import", vit, "-o", notes, "--force")[0] == 0
    assert notes.read_text().startswith("builtin.module")
    assert wisp(capsys, "import", vit, "-o", notes)[0] == 0  # a wisp output is replaced
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    code, _, err = wisp(capsys, "import", bad, "-o", tmp_path / "bad.mlir")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "bad.onnx" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.onnx",
        "vit.mlir",
        "vit.weights.npz",
    ]  # no partial pair, no temporary files


def test_import_failing_write_leaves_neither_file(
    vit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import compiler.import_output as io

    def boom(module: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "print_module", boom)  # the .mlir fails after the weights were written
    code, _, err = wisp(capsys, "import", vit, "-o", tmp_path / "vit.mlir")
    assert code == 1 and "No space left" in err
    assert list(tmp_path.iterdir()) == []


def test_eval_input_on_imported_and_compiled(
    vit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "x.npz", pixel_values=x)
    want = ort.InferenceSession(str(vit)).run(None, {"pixel_values": x})[0][0]
    mlir = tmp_path / "vit.mlir"
    assert wisp(capsys, "import", vit, "-o", mlir)[0] == 0
    for model in (vit, mlir):
        code, out, _ = wisp(capsys, "eval", model, "--input", tmp_path / "x.npz")
        assert code == 0 and "cycles" in out and f"argmax {int(np.argmax(want))}" in out
    assert wisp(capsys, "compile", mlir, "-p", "canonicalize", "-o", tmp_path / "out")[0] == 0
    code, out, _ = wisp(capsys, "eval", tmp_path / "out", "--input", tmp_path / "x.npz")
    assert code == 0 and "NPU interpreter" in out and "max |npu - ref|" in out
    code, _, err = wisp(capsys, "eval", mlir)
    assert code == 1 and "--input" in err
    np.savez(tmp_path / "y.npz", image=x)
    code, _, err = wisp(capsys, "eval", mlir, "--input", tmp_path / "y.npz")
    assert code == 1 and "unknown input(s) image" in err
