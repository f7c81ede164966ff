"""lower-to-npu and npu-schedule in the pass pipeline give exactly the instructions `wisp compile`'s
backend gives (lowering, then scheduling) for the same nn module, and their npu IR reads back."""

from __future__ import annotations

import copy

import pytest
from compile_util import small_zoo

from backend.compile import compile_module
from backend.npu_dialect import from_module, parse_instrs
from compiler.errors import WispError
from compiler.ir import print_module
from compiler.pipeline import run_pipeline


@pytest.mark.parametrize(
    ("name", "kw", "target", "nn_passes"),
    [
        ("gpt2", dict(layers=1, dim=32, heads=2, mlp_dim=64, seq=8, vocab=20), "edge", ""),
        ("deit-tiny", dict(layers=1, dim=32, heads=2, image=32, patch=8), "fact", "quantize,"),
    ],
)
def test_pipeline_backend_equals_compile(name: str, kw: dict, target: str, nn_passes: str) -> None:
    m = small_zoo(name, **kw)
    if nn_passes:
        run_pipeline(m, nn_passes.rstrip(","), quiet=True)
    nn_module = copy.deepcopy(m.module)
    want = compile_module(nn_module, m.weights, target)
    records = run_pipeline(
        m, f"lower-to-npu{{target={target}}},npu-schedule", keep_ir=True, quiet=True
    )
    got = from_module(m.module)
    assert got == want.program.instrs
    assert [i.comment for i in got] == [i.comment for i in want.program.instrs]
    lowered = parse_instrs(records[0].ir or "")
    assert lowered == want.lowered_instrs  # the IR after lower-to-npu, read back
    assert parse_instrs(print_module(m.module)) == want.program.instrs


def test_backend_passes_reject_the_wrong_order() -> None:
    m = small_zoo("gpt2", layers=1, dim=32, heads=2, mlp_dim=64, seq=8, vocab=20)
    with pytest.raises(WispError, match="not lowered to npu ops: run lower-to-npu first"):
        run_pipeline(m, "npu-schedule", quiet=True)
    with pytest.raises(WispError, match="already lowered"):
        run_pipeline(m, "lower-to-npu,lower-to-npu", quiet=True)
