"""The pass registry and pipeline driver: spec parsing, errors, canonicalize/cse behaviour, verification
after every pass, IR dumps and printing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from compiler import reference
from compiler.errors import WispError
from compiler.ir import parse_module, print_module
from compiler.model import Model
from compiler.pipeline import parse_pipeline, run_pipeline, timing_table
from compiler.registry import PASSES, pass_doc
from compiler.weights import WeightStore
from dialects import nn
from dialects.nn_base import element_of, tensor
from passes.context import PassError

# ---- deliberately simple test passes, registered only for the test that asks --------------------


@dataclass(frozen=True)
class OptionsPass(ModulePass):
    """Does nothing; has options of each type."""

    name = "test-options"
    n: int = 1
    ratio: float = 0.5
    label: str = "x"
    flag: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pass


@dataclass(frozen=True)
class BreakShapesPass(ModulePass):
    """Breaks the IR: gives the first nn.relu a result type its input does not have."""

    name = "test-break-shapes"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in op.walk():
            if isinstance(inner, nn.ReluOp):
                elem = element_of(inner.results[0].type)
                bad = nn.ReluOp.create(operands=[inner.input], result_types=[tensor((3, 3), elem)])
                Rewriter.replace_op(inner, bad)
                return


@dataclass(frozen=True)
class FailingPass(ModulePass):
    """Refuses to run, as a pass with a bad input does."""

    name = "test-fail"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        raise PassError("this input is not supported")


def _register_test_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (OptionsPass, BreakShapesPass, FailingPass):
        monkeypatch.setitem(PASSES, cls.name, lambda cls=cls: cls)


@pytest.fixture
def test_passes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _register_test_passes(monkeypatch)
    yield
    # monkeypatch restores PASSES


# ---- registry -----------------------------------------------------------------------------------


def test_registry_keys_equal_pass_names() -> None:
    assert {"canonicalize", "cse", "dce", "shape-check"} <= set(PASSES)
    for key, factory in PASSES.items():
        cls = factory()
        assert issubclass(cls, ModulePass), key
        assert cls.name == key
        assert pass_doc(key), f"pass {key} has no docstring"


def test_registry_is_restored_after_fixture() -> None:
    """Registers the test passes the way the fixture does, then checks they are gone afterwards
    (independent of test order: the registration happens here, not in an earlier test)."""
    before = dict(PASSES)
    with pytest.MonkeyPatch.context() as mp:
        _register_test_passes(mp)
        assert {"test-options", "test-break-shapes", "test-fail"} <= set(PASSES)
    assert "test-options" not in PASSES and "test-break-shapes" not in PASSES
    assert PASSES == before


# ---- spec parsing -------------------------------------------------------------------------------


def test_parse_empty_and_simple() -> None:
    assert parse_pipeline("") == ()
    assert parse_pipeline("  ") == ()
    names = [p.name for p in parse_pipeline("canonicalize,cse,dce,shape-check")]
    assert names == ["canonicalize", "cse", "dce", "shape-check"]
    assert [p.name for p in parse_pipeline("cse,cse")] == ["cse", "cse"]


def test_parse_options(test_passes: None) -> None:
    passes = parse_pipeline('canonicalize,test-options{n=3 ratio=0.25 label="hi" flag=true}')
    assert [p.name for p in passes] == ["canonicalize", "test-options"]
    opt = passes[1]
    assert isinstance(opt, OptionsPass)
    assert (opt.n, opt.ratio, opt.label, opt.flag) == (3, 0.25, "hi", True)
    (default,) = parse_pipeline("test-options")
    assert default == OptionsPass()
    (one,) = parse_pipeline("test-options{n=1}")
    assert one == OptionsPass(n=1)


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("frob", ["unknown pass frob", "canonicalize", "shape-check"]),
        ("canonicalize,frob", ["unknown pass frob"]),
        ("canonicalize{foo=1}", ["pass 'canonicalize': unknown option 'foo'", "none"]),
        ("test-options{m=1 n=2}", ["unknown option 'm'", "valid options: n, ratio, label, flag"]),
        ("test-options{n=abc}", ["bad pipeline", "test-options{n=abc}", "int"]),
        ("test-options{n=1.5}", ["bad pipeline", "int"]),
        ("test-options{flag=3}", ["bad pipeline", "bool"]),
        ("test-options{ratio=x}", ["bad pipeline", "float"]),
        ("test-options{n}", ["bad pipeline"]),
        ("canonicalize{", ["pass-pipeline:1:", "bad pipeline"]),
        ("canonicalize,,cse", ["pass-pipeline:1:14", "bad pipeline"]),
        ("{n=1}", ["bad pipeline"]),
        ("canonicalize}", ["bad pipeline"]),
        ("test-options{n=[1,2]}", ["bad pipeline"]),
    ],
)
def test_parse_errors(test_passes: None, spec: str, needles: list[str]) -> None:
    with pytest.raises(WispError) as info:
        parse_pipeline(spec)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


# ---- canonicalize and cse -----------------------------------------------------------------------

FOLDABLE_IR = """\
builtin.module {
  func.func @main(%x: tensor<4x6x2xf32>) -> tensor<6x2x4xf32> {
    %0 = nn.reshape %x : (tensor<4x6x2xf32>) -> tensor<4x6x2xf32>
    %1 = nn.transpose %0 {perm = [1, 0, 2]} : (tensor<4x6x2xf32>) -> tensor<6x4x2xf32>
    %2 = nn.transpose %1 {perm = [1, 0, 2]} : (tensor<6x4x2xf32>) -> tensor<4x6x2xf32>
    %3 = nn.relu %2 : (tensor<4x6x2xf32>) -> tensor<4x6x2xf32>
    %4 = nn.transpose %3 {perm = [1, 0, 2]} : (tensor<4x6x2xf32>) -> tensor<6x4x2xf32>
    %5 = nn.transpose %4 {perm = [0, 2, 1]} : (tensor<6x4x2xf32>) -> tensor<6x2x4xf32>
    func.return %5 : tensor<6x2x4xf32>
  }
}
"""


def _ops(model: Model) -> list[str]:
    return [op.name for op in model.main.body.block.ops]


def _model(text: str, weights: dict[str, np.ndarray] | None = None) -> Model:
    return Model("t", parse_module(text), WeightStore(weights or {}))


def test_canonicalize_folds_identity_reshape_and_transposes() -> None:
    model = _model(FOLDABLE_IR)
    x = np.random.default_rng(0).standard_normal((4, 6, 2)).astype(np.float32)
    before = reference.run(model, {"x": x})["out0"]
    # independent oracle for the whole function
    np.testing.assert_array_equal(before, np.maximum(x, 0).transpose(1, 2, 0))
    run_pipeline(model, "canonicalize")
    # reshape(identity) and transpose∘transpose = identity vanish; the last pair composes into one
    assert _ops(model) == ["nn.relu", "nn.transpose", "func.return"]
    (t,) = [op for op in model.main.body.block.ops if isinstance(op, nn.TransposeOp)]
    assert t.ints_prop("perm") == (1, 2, 0)
    np.testing.assert_array_equal(reference.run(model, {"x": x})["out0"], before)


def test_canonicalize_folds_full_slice_and_single_concat() -> None:
    text = """\
builtin.module {
  func.func @main(%x: tensor<3x5xf32>) -> tensor<3x5xf32> {
    %0 = nn.slice %x {offsets = [0, 0]} : (tensor<3x5xf32>) -> tensor<3x5xf32>
    %1 = nn.concat %0 {axis = 1} : (tensor<3x5xf32>) -> tensor<3x5xf32>
    %2 = nn.tanh %1 : (tensor<3x5xf32>) -> tensor<3x5xf32>
    %3 = nn.slice %2 {offsets = [1, 0]} : (tensor<3x5xf32>) -> tensor<2x5xf32>
    func.return %2 : tensor<3x5xf32>
  }
}
"""
    model = _model(text)
    x = np.linspace(-2, 2, 15, dtype=np.float32).reshape(3, 5)
    before = reference.run(model, {"x": x})["out0"]
    run_pipeline(model, "canonicalize")
    assert _ops(model) == ["nn.tanh", "func.return"]  # the dead slice is removed too
    np.testing.assert_array_equal(reference.run(model, {"x": x})["out0"], before)


def test_canonicalize_is_idempotent() -> None:
    model = _model(FOLDABLE_IR)
    run_pipeline(model, "canonicalize")
    once = print_module(model.module)
    run_pipeline(model, "canonicalize")
    assert print_module(model.module) == once


CSE_IR = """\
builtin.module {
  func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w1 = nn.weight @w : tensor<4x4xf32>
    %a = nn.linear %x, %w1 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %w2 = nn.weight @w : tensor<4x4xf32>
    %b = nn.linear %x, %w2 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %v = nn.weight @v : tensor<4x4xf32>
    %c = nn.linear %x, %v : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %s = nn.add %a, %b : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %t = nn.add %s, %c : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    func.return %t : tensor<2x4xf32>
  }
}
"""


def test_cse_merges_duplicate_weights() -> None:
    rng = np.random.default_rng(1)
    w = {
        "w": rng.standard_normal((4, 4)).astype(np.float32),
        "v": rng.standard_normal((4, 4)).astype(np.float32),
    }
    model = _model(CSE_IR, w)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    before = reference.run(model, {"x": x})["out0"]
    np.testing.assert_allclose(before, 2 * (x @ w["w"].T) + x @ w["v"].T, rtol=1e-5, atol=1e-6)
    assert _ops(model).count("nn.weight") == 3 and _ops(model).count("nn.linear") == 3
    run_pipeline(model, "cse")
    ops = _ops(model)
    # the two @w weights merge, and with them the two identical linears; @v stays distinct
    assert ops.count("nn.weight") == 2 and ops.count("nn.linear") == 2
    symbols = sorted(op.symbol for op in model.main.body.block.ops if isinstance(op, nn.WeightOp))
    assert symbols == ["v", "w"]
    np.testing.assert_array_equal(reference.run(model, {"x": x})["out0"], before)


def test_dce_removes_unused_ops() -> None:
    text = CSE_IR.replace("%t = nn.add %s, %c", "%t = nn.add %s, %s")
    model = _model(text, {"w": np.ones((4, 4), np.float32), "v": np.ones((4, 4), np.float32)})
    run_pipeline(model, "dce")
    assert "@v" not in print_module(model.module)
    assert _ops(model).count("nn.linear") == 2


# ---- driver: verification, errors, dumps, printing ----------------------------------------------

RELU_IR = """\
builtin.module {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = nn.relu %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %0 : tensor<4x8xf32>
  }
}
"""


def test_verify_after_every_pass_catches_a_broken_pass(test_passes: None) -> None:
    model = _model(RELU_IR)
    with pytest.raises(WispError) as info:
        run_pipeline(model, "canonicalize,test-break-shapes,cse")
    message = str(info.value)
    assert "(after pass 'test-break-shapes')" in message
    assert "nn.relu" in message or "func.return" in message
    assert "\n" not in message


def test_pass_error_names_the_pass(test_passes: None) -> None:
    with pytest.raises(WispError, match="^pass 'test-fail': this input is not supported$"):
        run_pipeline(_model(RELU_IR), "cse,test-fail")


def test_shape_check_reports_missing_and_wrong_weights() -> None:
    text = CSE_IR
    with pytest.raises(
        WispError, match=r"pass 'shape-check': nn.weight @v: missing from the weight store"
    ):
        run_pipeline(_model(text, {"w": np.zeros((4, 4), np.float32)}), "shape-check")
    bad = {"w": np.zeros((4, 4), np.float32), "v": np.zeros((4, 5), np.float32)}
    with pytest.raises(WispError, match=r"nn.weight @v: store shape \[4, 5\] != IR shape \[4, 4\]"):
        run_pipeline(_model(text, bad), "shape-check")
    good = {"w": np.zeros((4, 4), np.float32), "v": np.zeros((4, 4), np.float32)}
    run_pipeline(_model(text, good), "shape-check")


def test_ir_dump_dir_writes_numbered_files(tmp_path: Path) -> None:
    model = _model(FOLDABLE_IR)
    original = print_module(model.module)
    dump = tmp_path / "dumps" / "nested"
    records = run_pipeline(model, "canonicalize,cse,dce", dump_dir=dump)
    files = sorted(p.name for p in dump.iterdir())
    assert files == ["00-input.mlir", "01-canonicalize.mlir", "02-cse.mlir", "03-dce.mlir"]
    assert (dump / "00-input.mlir").read_text() == original
    assert (dump / "03-dce.mlir").read_text() == print_module(model.module)
    assert (dump / "01-canonicalize.mlir").read_text() != original
    for f in files:  # every dump parses back
        parse_module((dump / f).read_text(), f)
    assert [r.name for r in records] == ["canonicalize", "cse", "dce"]
    assert all(r.ir is None and r.seconds >= 0 for r in records)


def test_keep_ir_and_print_after_all() -> None:
    model = _model(FOLDABLE_IR)
    stream = io.StringIO()
    records = run_pipeline(
        model, "canonicalize,cse", keep_ir=True, print_ir_after_all=True, stream=stream
    )
    assert records[-1].ir == print_module(model.module)
    out = stream.getvalue()
    assert out.count("// -----// IR Dump After canonicalize //----- //") == 1
    assert out.count("// -----// IR Dump After cse //----- //") == 1
    assert out.index("After canonicalize") < out.index("After cse")
    table = timing_table(records)
    assert "canonicalize" in table and "cse" in table and "total" in table


def test_pipeline_on_zoo_model_keeps_outputs() -> None:
    from frontdoor_util import build_reduced, random_inputs

    model = build_reduced("gpt2")
    inputs = random_inputs(model)
    before = reference.run(model, inputs)["out0"]
    run_pipeline(model, "canonicalize,cse,dce,shape-check")
    np.testing.assert_array_equal(reference.run(model, inputs)["out0"], before)
