"""kv-prune's keep-k on the NPU: `tokens.kv_accumulate` and `tokens.kv_evict` alone.

Oracle: the ops' rule stated again in plain Python (carried + step with the written slot reset;
the eligible slot of lowest score, ties to the lower slot, the newest `recent` and the empty
slots never chosen), on inputs with planted ties; the reference executor and the interpreter
must both give it exactly (fp32 adds, an index)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.compile import compile_module
from backend.interpreter.engine import run as npu_run
from compiler import reference
from compiler.errors import WispError
from compiler.ir import parse_module
from compiler.model import Model
from compiler.weights import WeightStore

N = 33


def _model(recent: int) -> Model:
    v, i = f"tensor<{N}xf32>", f"tensor<{N}xi32>"
    text = f"""
func.func @main(%carried: {v}, %step: {v}, %slot: tensor<1xi32>, %mask: {i}, %positions: {i}, %pos: tensor<1xi32>) -> ({v}, tensor<1xi32>) {{
  %c = tokens.kv_accumulate %carried, %step, %slot : ({v}, {v}, tensor<1xi32>) -> {v}
  %free = tokens.kv_evict %c, %mask, %positions, %pos {{recent = {recent}}} : ({v}, {i}, {i}, tensor<1xi32>) -> tensor<1xi32>
  func.return %c, %free : {v}, tensor<1xi32>
}}"""
    return Model("kvkeep", parse_module(text), WeightStore({}))


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    occupied = int(rng.integers(8, N + 1))
    mask = np.zeros(N, np.int32)
    mask[:occupied] = 1
    pos = 50 + seed
    positions = rng.permutation(np.arange(pos - occupied + 1, pos + 1)).astype(np.int32)
    positions = np.concatenate([positions, np.full(N - occupied, 7, np.int32)])
    slot = int(np.flatnonzero(positions == pos)[0])
    # scores on a coarse grid: many exact ties among the slots
    carried = rng.integers(0, 6, N).astype(np.float32) * np.float32(0.25)
    step = rng.integers(0, 4, N).astype(np.float32) * np.float32(0.125) * mask
    return {
        "carried": carried,
        "step": step.astype(np.float32),
        "slot": np.array([slot], np.int32),
        "mask": mask,
        "positions": positions,
        "pos": np.array([pos], np.int32),
    }


def _rule(x: dict[str, np.ndarray], recent: int) -> tuple[np.ndarray, int]:
    c = [float(a) + float(b) for a, b in zip(x["carried"], x["step"], strict=True)]
    c[int(x["slot"][0])] = float(x["step"][int(x["slot"][0])])
    pos = int(x["pos"][0])
    old = [j for j in range(N) if x["mask"][j] and x["positions"][j] <= pos - recent]
    return np.array(c, np.float32), min(old, key=lambda j: (c[j], j))


@pytest.mark.parametrize("recent", [1, 3, 8])
def test_kv_keep_ops_follow_the_rule(recent: int) -> None:
    model = _model(recent)
    program = compile_module(model.module, model.weights, "spatten").program
    ties = 0
    for seed in range(8):
        x = _inputs(seed)
        want_c, want_free = _rule(x, recent)
        c = want_c[x["mask"] != 0]
        ties += int(np.sum(c == c.min()) > 1)
        for out in (reference.run(model, x), npu_run(program, x).outputs):
            np.testing.assert_array_equal(out["out0"], want_c)
            assert int(out["out1"][0]) == want_free, (seed, recent)
    assert ties > 0  # the tie rule was exercised


def test_kv_evict_bad_operands() -> None:
    text = """
func.func @main(%s: tensor<8xf32>, %m: tensor<8xf32>, %p: tensor<8xi32>, %pos: tensor<1xi32>) -> tensor<1xi32> {
  %f = tokens.kv_evict %s, %m, %p, %pos {recent = 1} : (tensor<8xf32>, tensor<8xf32>, tensor<8xi32>, tensor<1xi32>) -> tensor<1xi32>
  func.return %f : tensor<1xi32>
}"""
    with pytest.raises(WispError, match="mask must be an integer vector"):
        parse_module(text)
