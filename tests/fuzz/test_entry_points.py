"""Hypothesis drives benchmarks/fuzz.py's generators (one source of truth) over every entry point:
IR text, pipeline/pass options, assembly, binaries with CRC-fixed field mutations, hardware
configs, input .npz, weights and ONNX files. Every case must be accepted or refused with a clean
error (WispError/BackendError/PassError) — never an uncaught exception or a hang.

`python benchmarks/fuzz.py --entry all --n 10000` runs the full campaign.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("wisp_fuzz", ROOT / "benchmarks" / "fuzz.py")
assert _spec and _spec.loader
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["wisp_fuzz"] = fuzz
_spec.loader.exec_module(fuzz)

# cases per entry point in the default suite (the whole directory stays well under 30 s)
EXAMPLES = {"ir": 200, "pipeline": 150, "asm": 200, "npubin": 200, "config": 200, "npz": 200,
            "weights": 150, "onnx": 150}  # fmt: skip


@pytest.fixture(scope="module")
def workdir() -> object:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@pytest.mark.parametrize("entry", list(fuzz.CASES))
def test_entry_point_fails_cleanly(entry: str, workdir: Path) -> None:
    if entry == "onnx":
        pytest.importorskip("onnx")
    counter = iter(range(10**9))

    @settings(max_examples=EXAMPLES[entry], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.randoms(use_true_random=False))
    def one(rng: random.Random) -> None:
        res = fuzz.outcome(fuzz.CASES[entry](rng, workdir, next(counter)), 10)
        assert res.split(":")[0] in ("ok", "warned", "clean"), res

    one()


def test_negative_ratio_names_the_range() -> None:
    """`ratio=-1` (an integer) used to say "Incompatible types … expected float"."""
    from compiler.errors import WispError
    from compiler.pipeline import parse_pipeline, run_pipeline

    (p,) = parse_pipeline("structured-prune{ratio=-1}")
    assert p.ratio == -1.0  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as d:
        fuzz._apply_pipeline("canonicalize", Path(d))
        from compiler.loading import load_model

        m = load_model(str(Path(d) / "m.mlir"), weights=str(Path(d) / "m.weights.npz"))
        with pytest.raises(WispError, match=r"ratio must be in \[0, 1\)"):
            run_pipeline(m, "structured-prune{ratio=-1}")


def test_onnx_unknown_input_element_type(tmp_path: Path) -> None:
    """Found by the campaign: an input with element type 93 crashed with KeyError: 93."""
    onnx = pytest.importorskip("onnx")
    from compiler.errors import WispError
    from compiler.loading import load_model

    p = tmp_path / "m.onnx"
    fuzz.tiny_onnx(p)
    m = onnx.load(str(p))
    m.graph.input[0].type.tensor_type.elem_type = 93
    onnx.save(m, str(p))
    with pytest.raises(WispError, match="input 'x' has unknown ONNX element type 93"):
        load_model(str(p))


@pytest.mark.parametrize("case", [159, 929, 935, 4914, 6416, 9540])
def test_onnx_campaign_crashers_fail_cleanly(case: int, workdir: Path) -> None:
    """The mutated ONNX files of `fuzz.py --entry onnx --n 10000` (seed 0) that escaped as
    ShapeError, a bytes name or a string initializer: replayed exactly (the campaign's random
    stream advanced to the case), each now a clean one-line error."""
    pytest.importorskip("onnx")
    rng = random.Random("0:onnx")
    good = workdir / "good.onnx"
    raw = good.read_bytes() if good.exists() else fuzz.tiny_onnx(good)
    for _ in range(case):  # what case_onnx draws for each earlier case
        fuzz.flip_bytes(rng, raw)
    res = fuzz.outcome(fuzz.CASES["onnx"](rng, workdir, case), 10)
    assert res.split(":")[0] in ("ok", "warned", "clean"), res
