"""The command lines, as a user runs them (subprocesses): `wisp models|passes|compile` and `wisp-opt`.

Bad input must give exactly one error line on stderr naming the place, a non-zero exit, no traceback,
and no half-written output. The bad-input runs are launched concurrently (they are independent) to keep
the suite fast."""

from __future__ import annotations

import contextlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from frontdoor_util import CliResult, random_inputs, run_cli

from backend.npubin import write
from compiler import reference
from compiler.ir import parse_module, print_module
from compiler.model import Model
from compiler.models import ZOO, build
from compiler.registry import PASSES
from compiler.weights import WeightStore

GOOD_IR = """\
builtin.module {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %w = nn.weight @w : tensor<8x8xf32>
    %0 = nn.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %1 = nn.reshape %0 : (tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %1 : tensor<4x8xf32>
  }
}
"""

MALFORMED_IR = GOOD_IR.replace(
    "(tensor<4x8xf32>, tensor<8x8xf32>) ->", "(tensor<4x8xf32>, tensor<8x8xf32> ->"
)
UNKNOWN_OP_IR = GOOD_IR.replace("nn.linear %x, %w", "nn.frobnicate %x, %w")
WRONG_SHAPE_IR = GOOD_IR.replace(
    "-> tensor<4x8xf32>\n    %1 = nn.reshape %0 : (tensor<4x8xf32>)",
    "-> tensor<4x7xf32>\n    %1 = nn.reshape %0 : (tensor<4x7xf32>)",
)

ZOO_ARGS = [
    "bert-tiny",
    "--layers",
    "1",
    "--dim",
    "16",
    "--heads",
    "2",
    "--mlp-dim",
    "24",
    "--seq",
    "6",
    "--vocab",
    "40",
]
ZOO_OPTIONS = {"layers": 1, "dim": 16, "heads": 2, "mlp_dim": 24, "seq": 6, "vocab": 40}

SENTINEL = "previous contents\n"


def _write_inputs(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "good.mlir").write_text(GOOD_IR)
    w = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    WeightStore({"w": w}).save(d / "good.weights.npz")
    (d / "bad.mlir").write_text(MALFORMED_IR)
    (d / "unk.mlir").write_text(UNKNOWN_OP_IR)
    (d / "shape.mlir").write_text(WRONG_SHAPE_IR)
    WeightStore({"w": w}).save(d / "shape.weights.npz")
    WeightStore({"v": w}).save(d / "missing.npz")
    WeightStore({"w": w[:, :7].copy()}).save(d / "badshape.npz")
    (d / "junk.npz").write_bytes(b"PK\x03\x04 definitely not a zip archive")
    (d / "garbage.mlir").write_text("this is { not ( an IR file\n")
    (d / "binary.mlir").write_bytes(bytes(range(256)) * 2)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@dataclass
class BadCase:
    tool: str
    args: list[str]
    needles: list[str]  # substrings the one error line must contain (the place, the culprit)
    precreate: dict[str, str] = field(default_factory=dict)  # outputs that exist before the run


BAD_CASES: dict[str, BadCase] = {
    "opt-malformed": BadCase(
        "wisp-opt",
        ["bad.mlir", "-p", "canonicalize", "-o", "out.mlir"],
        ["bad.mlir:4:", "')' expected"],
        {"out.mlir": SENTINEL},
    ),
    "opt-unknown-op": BadCase(
        "wisp-opt",
        ["unk.mlir", "-o", "out.mlir"],
        ["unk.mlir:4:", "nn.frobnicate"],
        {"out.mlir": SENTINEL},
    ),
    "opt-wrong-shape": BadCase(
        "wisp-opt",
        ["shape.mlir", "-p", "cse", "-o", "out.mlir"],
        ["shape.mlir:4:", "nn.linear", "4x7"],
    ),
    "opt-weight-missing": BadCase(
        "wisp-opt",
        ["good.mlir", "--weights", "missing.npz", "-p", "cse", "-o", "out.mlir"],
        ["@w", "missing"],
        {"out.mlir": SENTINEL},
    ),
    "opt-weight-shape": BadCase(
        "wisp-opt",
        ["good.mlir", "--weights", "badshape.npz", "-p", "cse", "-o", "out.mlir"],
        ["@w", "[8, 7]", "[8, 8]"],
    ),
    "opt-unknown-pass": BadCase(
        "wisp-opt",
        ["good.mlir", "-p", "canonicalize,frobnicate", "-o", "out.mlir"],
        ["frobnicate"],
        {"out.mlir": SENTINEL},
    ),
    "opt-bad-option": BadCase(
        "wisp-opt", ["good.mlir", "-p", "canonicalize{bogus=1}", "-o", "out.mlir"], ["bogus"]
    ),
    "opt-malformed-pipeline": BadCase(
        "wisp-opt", ["good.mlir", "-p", "canonicalize{", "-o", "out.mlir"], ["pass-pipeline:1:"]
    ),
    "opt-garbage-mlir": BadCase(
        "wisp-opt", ["garbage.mlir", "-o", "out.mlir"], ["garbage.mlir:1:"], {"out.mlir": SENTINEL}
    ),
    "opt-garbage-npz": BadCase(
        "wisp-opt",
        ["good.mlir", "--weights", "junk.npz", "-p", "cse", "-o", "out.mlir"],
        ["junk.npz"],
    ),
    "opt-no-such-file": BadCase("wisp-opt", ["nothere.mlir", "-o", "out.mlir"], ["nothere.mlir"]),
    "compile-unknown-zoo": BadCase(
        "wisp", ["compile", "resnet50", "-o", "out"], ["resnet50"], {"out/keep.txt": SENTINEL}
    ),
    "compile-bad-zoo-option": BadCase(
        "wisp", ["compile", "bert-tiny", "--layers", "0", "-o", "out"], ["bert-tiny", "layers"]
    ),
    "compile-option-not-applicable": BadCase(
        "wisp",
        ["compile", "gpt2", "--image", "32", "-o", "out"],
        ["gpt2", "image"],
        {"out/keep.txt": SENTINEL},
    ),
    "compile-malformed": BadCase(
        "wisp",
        ["compile", "bad.mlir", "--weights", "good.weights.npz", "-o", "out"],
        ["bad.mlir:4:"],
        {"out/keep.txt": SENTINEL},
    ),
    "compile-unknown-op": BadCase(
        "wisp",
        ["compile", "unk.mlir", "--weights", "good.weights.npz", "-o", "out"],
        ["unk.mlir:4:", "nn.frobnicate"],
    ),
    "compile-wrong-shape": BadCase(
        "wisp",
        ["compile", "shape.mlir", "-o", "out"],
        ["shape.mlir:4:", "nn.linear"],
        {"out/keep.txt": SENTINEL},
    ),
    "compile-weight-missing": BadCase(
        "wisp", ["compile", "good.mlir", "--weights", "missing.npz", "-o", "out"], ["@w", "missing"]
    ),
    "compile-weight-shape": BadCase(
        "wisp",
        ["compile", "good.mlir", "--weights", "badshape.npz", "-o", "out"],
        ["@w", "[8, 7]"],
        {"out/keep.txt": SENTINEL},
    ),
    "compile-unknown-pass": BadCase(
        "wisp",
        ["compile", "good.mlir", "-p", "frobnicate", "-o", "out"],
        ["frobnicate"],
        {"out/keep.txt": SENTINEL},
    ),
    "compile-bad-option": BadCase(
        "wisp", ["compile", "good.mlir", "-p", "cse{bogus=2}", "-o", "out"], ["bogus"]
    ),
    "compile-garbage-mlir": BadCase(
        "wisp", ["compile", "garbage.mlir", "-o", "out"], ["garbage.mlir:1:"]
    ),
    "compile-garbage-npz": BadCase(
        "wisp",
        ["compile", "good.mlir", "--weights", "junk.npz", "-o", "out"],
        ["junk.npz"],
        {"out/keep.txt": SENTINEL},
    ),
    "compile-no-weights": BadCase("wisp", ["compile", "unk.mlir", "-o", "out"], ["unk.mlir"]),
    "compile-not-an-outdir": BadCase(
        "wisp", ["compile", "sub", "-o", "out"], ["sub", "compile.json"], {"sub/x.txt": SENTINEL}
    ),
}

# Known product bugs: the case stays in the suite, expected to fail until fixed (see the report).
KNOWN_BAD: dict[str, str] = {}  # case name -> reason, for a bug still open (strict xfail)
BAD_CASES["opt-binary-mlir"] = BadCase(
    "wisp-opt", ["binary.mlir", "-o", "out.mlir"], ["binary.mlir"]
)
BAD_CASES["compile-binary-mlir"] = BadCase(
    "wisp", ["compile", "binary.mlir", "-o", "out"], ["binary.mlir"]
)


@dataclass
class BadRun:
    result: CliResult
    before: dict[str, bytes]
    after: dict[str, bytes]


def _prepare(d: Path, case: BadCase) -> dict[str, bytes]:
    _write_inputs(d)
    for rel, text in case.precreate.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    return _snapshot(d)


def _run_in_process(tool: str, args: list[str], cwd: Path) -> CliResult:
    """The same entry point the console script calls, in this process (fast; same error handling)."""
    from compiler.cli import wisp, wisp_opt

    main = {"wisp": wisp.main, "wisp-opt": wisp_opt.main}[tool]
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(old)
    return CliResult(code, out.getvalue(), err.getvalue())


# A subset run as real subprocesses (what users run); every case also runs in-process below.
SUBPROCESS_CASES = [
    "opt-malformed",
    "opt-weight-shape",
    "opt-unknown-pass",
    "opt-garbage-npz",
    "compile-unknown-zoo",
    "compile-wrong-shape",
    "compile-bad-option",
    "compile-weight-missing",
]


@pytest.fixture(scope="module")
def bad_subprocess_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BadRun]:
    root = tmp_path_factory.mktemp("bad")
    befores = {name: _prepare(root / name, BAD_CASES[name]) for name in SUBPROCESS_CASES}

    def go(name: str) -> CliResult:
        case = BAD_CASES[name]
        return run_cli(case.tool, *case.args, cwd=root / name)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(SUBPROCESS_CASES, pool.map(go, SUBPROCESS_CASES), strict=True))
    return {n: BadRun(results[n], befores[n], _snapshot(root / n)) for n in SUBPROCESS_CASES}


def _check_bad_run(case: BadCase, run: BadRun) -> None:
    r = run.result
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert len(r.error_lines) == 1, r.stderr
    line = r.error_lines[0]
    assert line.startswith(f"{case.tool}: error: "), line
    for needle in case.needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    # no half-written output: every file is as before, nothing new (no temp files, no OUTDIR)
    assert run.after == run.before


def _params(names: list[str]) -> list[object]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_BAD[n], strict=True))
        if n in KNOWN_BAD
        else n
        for n in names
    ]


@pytest.mark.parametrize("name", _params(SUBPROCESS_CASES))
def test_bad_input_subprocess(bad_subprocess_runs: dict[str, BadRun], name: str) -> None:
    _check_bad_run(BAD_CASES[name], bad_subprocess_runs[name])


@pytest.mark.parametrize("name", _params(list(BAD_CASES)))
def test_bad_input_in_process(tmp_path: Path, name: str) -> None:
    case = BAD_CASES[name]
    before = _prepare(tmp_path, case)
    result = _run_in_process(case.tool, case.args, tmp_path)
    _check_bad_run(case, BadRun(result, before, _snapshot(tmp_path)))


def test_debug_shows_a_traceback(tmp_path: Path) -> None:
    _write_inputs(tmp_path)
    r = run_cli("wisp", "--debug", "compile", "resnet50", "-o", "out", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "resnet50" in r.stderr
    r = run_cli("wisp-opt", "bad.mlir", "--debug", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr


# ---- the happy paths ----------------------------------------------------------------------------


def test_wisp_models_lists_the_zoo() -> None:
    r = run_cli("wisp", "models")
    assert r.returncode == 0 and r.stderr == ""
    names = [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]
    assert names == list(ZOO)
    (default,) = [ln for ln in r.stdout.splitlines() if "(default)" in ln]
    assert default.startswith("digits-vit")


def test_wisp_passes_lists_the_registry() -> None:
    r = run_cli("wisp", "passes")
    assert r.returncode == 0 and r.stderr == ""
    heads = [ln for ln in r.stdout.split("\n\n")[0].splitlines() if not ln.startswith(" ")]
    assert [ln.split()[0] for ln in heads] == sorted(PASSES)
    assert all(len(ln.split()) > 1 for ln in heads)  # each has a summary


@pytest.fixture(scope="module")
def two_compiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[CliResult]]:
    root = tmp_path_factory.mktemp("compile")
    a, b = root / "a", root / "b"
    args = [*ZOO_ARGS, "-p", "canonicalize,cse"]

    def go(out: Path, extra: list[str]) -> CliResult:
        return run_cli("wisp", "compile", *args, "-o", out, *extra, cwd=root)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(go, [a, b], [["--time-passes"], []]))
    return a, b, runs


def test_compile_writes_outdir(two_compiles: tuple[Path, Path, list[CliResult]]) -> None:
    out, _, runs = two_compiles
    r = runs[0]
    assert r.returncode == 0, r.stderr
    assert "canonicalize" in r.stdout and "total" in r.stdout  # --time-passes table
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert {"model.mlir", "model.weights.npz", "compile.json"} <= set(files)
    assert [f for f in files if f.startswith("ir/")] == [
        "ir/00-input.mlir",
        "ir/01-canonicalize.mlir",
        "ir/02-cse.mlir",
        "ir/03-npu-lowered.mlir",  # the default target (spatten) adds the npu dumps
        "ir/04-npu-scheduled.mlir",
    ]
    assert {"program.s", "program.npubin", "report.json"} <= set(files)
    assert "program.data" not in files  # the DRAM image is stored once, in program.npubin
    from backend.asm import assemble

    text = (out / "program.s").read_text()
    assert '.incbin "program.npubin", ' in text
    assert write(assemble(text, str(out / "program.s"))) == (out / "program.npubin").read_bytes()
    hidden = [f for f in files if Path(f).name.startswith(".")]
    assert hidden == [".wisp-output"]  # the output marker, and no staging leftovers
    manifest = json.loads((out / "compile.json").read_text())
    assert manifest["model"] == "bert-tiny"
    assert manifest["pipeline"] == "canonicalize,cse"
    assert [p["name"] for p in manifest["passes"]] == ["canonicalize", "cse"]
    assert (out / "ir" / "02-cse.mlir").read_text() == (out / "model.mlir").read_text()
    # the written model is the zoo model: same IR, same weights, same outputs
    compiled = Model.load(out / "model.mlir")
    zoo = build("bert-tiny", **ZOO_OPTIONS)
    assert manifest["params"] == zoo.weights.num_params
    assert print_module(compiled.module) == print_module(parse_module(print_module(zoo.module)))
    assert set(compiled.weights) == set(zoo.weights)
    for k in zoo.weights:
        np.testing.assert_array_equal(compiled.weights[k], zoo.weights[k])
    inputs = random_inputs(zoo)
    np.testing.assert_array_equal(
        reference.run(compiled, inputs)["out0"], reference.run(zoo, inputs)["out0"]
    )


def test_compile_is_deterministic(two_compiles: tuple[Path, Path, list[CliResult]]) -> None:
    a, b, runs = two_compiles
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert (a / "model.mlir").read_bytes() == (b / "model.mlir").read_bytes()
    for d in ("ir",):
        assert sorted(p.name for p in (a / d).iterdir()) == sorted(
            p.name for p in (b / d).iterdir()
        )
        for p in (a / d).iterdir():
            assert p.read_bytes() == (b / d / p.name).read_bytes()
    wa, wb = WeightStore.load(a / "model.weights.npz"), WeightStore.load(b / "model.weights.npz")
    assert list(wa) == list(wb)
    for k in wa:
        assert wa[k].dtype == wb[k].dtype
        np.testing.assert_array_equal(wa[k], wb[k])


def test_compile_replaces_an_existing_outdir_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    r = run_cli("wisp", "compile", *ZOO_ARGS, "-o", out, "-p", "cse", cwd=tmp_path)
    assert r.returncode == 1 and len(r.error_lines) == 1, r.stderr
    assert "not a wisp output" in r.error_lines[0] and "--force" in r.error_lines[0]
    assert (out / "stale.txt").read_text() == "old"
    r = run_cli(
        "wisp", "compile", *ZOO_ARGS, "-o", out, "--print-ir-after-all", "-p", "cse", "--force",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not (out / "stale.txt").exists()
    assert (out / "model.mlir").exists()
    assert "// -----// IR Dump After cse //----- //" in r.stdout


def test_wisp_opt_outputs_and_flags(tmp_path: Path) -> None:
    _write_inputs(tmp_path)
    r = run_cli(
        "wisp-opt", "good.mlir", "-p", "canonicalize,cse", "-o", "out.mlir", "--print-ir-after-all",
        "--ir-dump-dir", "dumps", "--time-passes", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = (tmp_path / "out.mlir").read_text()
    module = parse_module(out)
    assert (
        "nn.reshape" not in out and "nn.linear" in out
    )  # canonicalize folded the identity reshape
    assert print_module(module).rstrip("\n") == out.rstrip("\n")
    # weights beside the output, equal to the input's
    w_out = WeightStore.load(tmp_path / "out.weights.npz")
    np.testing.assert_array_equal(w_out["w"], WeightStore.load(tmp_path / "good.weights.npz")["w"])
    assert r.stdout.count("// -----// IR Dump After canonicalize //----- //") == 1
    assert r.stdout.count("// -----// IR Dump After cse //----- //") == 1
    assert sorted(p.name for p in (tmp_path / "dumps").iterdir()) == [
        "00-input.mlir",
        "01-canonicalize.mlir",
        "02-cse.mlir",
    ]
    assert (tmp_path / "dumps" / "02-cse.mlir").read_text().rstrip("\n") == out.rstrip("\n")
    assert "canonicalize" in r.stderr and "total" in r.stderr  # timing table on stderr
    assert "error" not in r.stderr


def test_wisp_opt_to_stdout_round_trips(tmp_path: Path) -> None:
    _write_inputs(tmp_path)
    r = run_cli("wisp-opt", "good.mlir", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == print_module(parse_module(GOOD_IR)).strip()
    assert not (tmp_path / "out.weights.npz").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_outputs_respect_the_umask(
    two_compiles: tuple[Path, Path, list[CliResult]], tmp_path: Path
) -> None:
    out, _, _ = two_compiles
    mask = _umask()
    _write_inputs(tmp_path)
    assert (
        _run_in_process("wisp-opt", ["good.mlir", "-p", "cse", "-o", "o.mlir"], tmp_path).returncode
        == 0
    )
    modes = {
        "OUTDIR": (out.stat().st_mode & 0o777, 0o777 & ~mask),
        "model.mlir": ((out / "model.mlir").stat().st_mode & 0o777, 0o666 & ~mask),
        "model.weights.npz": ((out / "model.weights.npz").stat().st_mode & 0o777, 0o666 & ~mask),
        "wisp-opt -o": ((tmp_path / "o.mlir").stat().st_mode & 0o777, 0o666 & ~mask),
        "wisp-opt weights": ((tmp_path / "o.weights.npz").stat().st_mode & 0o777, 0o666 & ~mask),
    }
    wrong = {k: f"{got:o} != {want:o}" for k, (got, want) in modes.items() if got != want}
    assert not wrong, wrong


def test_compile_output_is_a_model_argument(
    two_compiles: tuple[Path, Path, list[CliResult]], tmp_path: Path
) -> None:
    """A compile OUTDIR is itself a MODEL: recompiling it gives the same IR and weights."""
    out, _, _ = two_compiles
    r = _run_in_process("wisp", ["compile", str(out), "-p", "cse", "-o", "again"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again" / "model.mlir").read_text() == (out / "model.mlir").read_text()
    manifest = json.loads((tmp_path / "again" / "compile.json").read_text())
    assert manifest["model"] == "bert-tiny"
    w1, w2 = (
        WeightStore.load(out / "model.weights.npz"),
        WeightStore.load(tmp_path / "again" / "model.weights.npz"),
    )
    assert list(w1) == list(w2) and all(np.array_equal(w1[k], w2[k]) for k in w1)


def test_tampered_outdir_error_names_the_file(
    two_compiles: tuple[Path, Path, list[CliResult]], tmp_path: Path
) -> None:
    out, _, _ = two_compiles
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("compile.json", "model.weights.npz"):
        (copy / name).write_bytes((out / name).read_bytes())
    (copy / "model.mlir").write_text(
        (out / "model.mlir").read_text().replace("nn.linear", "nn.lineer", 1)
    )
    before = _snapshot(tmp_path)
    r = _run_in_process("wisp", ["compile", "copy", "-o", "o"], tmp_path)
    assert r.returncode == 1 and len(r.error_lines) == 1
    assert "model.mlir:" in r.error_lines[0] and "nn.lineer" in r.error_lines[0]
    assert _snapshot(tmp_path) == before


def test_failing_pass_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that fails mid-pipeline: one error line naming the pass; OUTDIR and -o files untouched."""
    from dataclasses import dataclass as _dataclass

    from xdsl.passes import ModulePass

    from passes.context import PassError

    @_dataclass(frozen=True)
    class Refuse(ModulePass):
        name = "test-refuse"

        def apply(self, ctx: object, op: object) -> None:
            raise PassError("cannot handle this model")

    monkeypatch.setitem(PASSES, "test-refuse", lambda: Refuse)
    _write_inputs(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text(SENTINEL)
    (tmp_path / "o.mlir").write_text(SENTINEL)
    before = _snapshot(tmp_path)
    for tool, args in [
        ("wisp", ["compile", "good.mlir", "-p", "cse,test-refuse", "-o", "out", "--force"]),
        ("wisp-opt", ["good.mlir", "-p", "cse,test-refuse", "-o", "o.mlir"]),
    ]:
        r = _run_in_process(tool, args, tmp_path)
        assert r.returncode == 1
        assert r.error_lines == [f"{tool}: error: pass 'test-refuse': cannot handle this model"]
        assert _snapshot(tmp_path) == before


def test_seed_option_changes_the_weights(tmp_path: Path) -> None:
    for seed in ("0", "1"):
        r = _run_in_process(
            "wisp", ["compile", *ZOO_ARGS, "--seed", seed, "-o", f"s{seed}"], tmp_path
        )
        assert r.returncode == 0, r.stderr
    a = WeightStore.load(tmp_path / "s0" / "model.weights.npz")
    b = WeightStore.load(tmp_path / "s1" / "model.weights.npz")
    assert not np.array_equal(a["embeddings.word.weight"], b["embeddings.word.weight"])
    np.testing.assert_array_equal(
        a["embeddings.word.weight"],
        build("bert-tiny", **ZOO_OPTIONS).weights["embeddings.word.weight"],
    )
