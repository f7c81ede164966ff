"""`wisp compile --save-weights program` / `CompiledModel.save(weights="program")`: model.weights.npz in
the precision the program holds each weight (float16 where the image has only fp16 layouts), checked
against an independent rounding of the float32 weights; the program itself is unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from frontdoor_util import run_cli

from compiler import reference
from compiler.api import compile_model, load_compiled
from compiler.errors import WispError
from compiler.model import Model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, Path]:
    prog = compile_model("digits-vit", target="spatten")
    root = tmp_path_factory.mktemp("save")
    prog.save(root / "fp32")
    prog.save(root / "program", weights="program")
    return prog, root / "fp32", root / "program"


def test_program_precision_rounds_fp16_only_weights_and_keeps_the_rest(saved) -> None:  # noqa: ANN001
    prog, d32, d16 = saved
    w32 = np.load(d32 / "model.weights.npz")
    w16 = np.load(d16 / "model.weights.npz")
    assert sorted(w32.files) == sorted(w16.files)
    halved = 0
    for name in w32.files:
        a, b = w32[name], w16[name]
        layouts = prog.compiled.data_dtypes.get(name, frozenset())
        if a.dtype == np.float32 and layouts == {"FP16"}:
            assert b.dtype == np.float16
            np.testing.assert_array_equal(b, a.astype(np.float16))  # round to nearest even
            halved += 1
        else:
            assert b.dtype == a.dtype
            np.testing.assert_array_equal(a, b)
    # matrices (fp16 MATMUL operands) halve; biases and norms (fp32 rows in the image) stay
    assert halved and halved < len(w32.files)
    assert w16["blocks.0.mlp.fc1.weight"].dtype == np.float16
    # q/k/v are fused into one layout with their fp32 biases: kept whole (never rounds fp32 values)
    assert w16["blocks.0.attn.q.weight"].dtype == np.float32
    assert (d16 / "model.weights.npz").stat().st_size < (d32 / "model.weights.npz").stat().st_size
    assert (d16 / "program.npubin").read_bytes() == (d32 / "program.npubin").read_bytes()


def test_loaded_reference_runs_on_the_rounded_values(saved) -> None:  # noqa: ANN001
    prog, d32, d16 = saved
    loaded = load_compiled(d16)
    x = {"image": np.random.default_rng(0).random((1, 16, 16), dtype=np.float32)}
    # independent: the float32 model with its fp16-only weights rounded through numpy's float16
    m = Model.load(d32 / "model.mlir")
    for name, arr in list(m.weights.items()):
        if arr.dtype == np.float32 and prog.compiled.data_dtypes.get(name) == {"FP16"}:
            m.weights[name] = arr.astype(np.float16).astype(np.float32)
    want = reference.run(m, x)
    got = loaded.reference(x)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    # the NPU program is the same, so its outputs are the fp32 save's
    np.testing.assert_array_equal(
        loaded.run(x).outputs["out0"], load_compiled(d32).run(x).outputs["out0"]
    )


def test_bad_uses_are_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(WispError, match="--save-weights: unknown precision 'int3'"):
        compile_model("digits-vit", target="spatten").save(tmp_path / "a", weights="int3")
    r = run_cli("wisp", "compile", "digits-vit", "--target", "none", "--save-weights", "program",
                "-o", tmp_path / "b")  # fmt: skip
    assert r.returncode != 0 and len(r.error_lines) == 1
    assert "--save-weights program" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()
