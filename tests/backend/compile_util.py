"""Helpers for the compile tests: build models from IR text, run compiled programs vs the oracle."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.compile import Compiled, compile_module
from backend.interpreter import run
from compiler import reference
from compiler.ir import parse_module
from compiler.model import Model
from compiler.models.zoo import build
from compiler.weights import WeightStore

CONFIGS = ("spatten", "fact", "edge")


def model_from_ir(body: str, args: str, result: str, weights: dict[str, np.ndarray]) -> Model:
    """A model whose @main is ``func.func @main(args) -> result { body }``."""
    text = f"builtin.module {{\n  func.func @main({args}) -> {result} {{\n{body}\n  }}\n}}\n"
    return Model("t", parse_module(text), WeightStore(weights))


def small_zoo(name: str, **kw: Any) -> Model:
    """A reduced zoo model with weights scaled up (std 0.1) so outputs are O(1): a real oracle."""
    m = build(name, **kw)
    for k in list(m.weights):
        if not k.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            m.weights[k] = (m.weights[k] * 5).astype(np.float32)
    return m


def random_inputs(m: Model, seed: int = 0, vocab: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for k, (shape, dt) in m.input_specs().items():
        if dt.kind == "i":
            out[k] = rng.integers(0, vocab, shape).astype(np.int32)
        else:
            out[k] = rng.standard_normal(shape).astype(np.float32)
    return out


def check(
    m: Model, config: Any, inputs: dict[str, np.ndarray] | None = None, rtol: float = 1e-2
) -> tuple[Compiled, Any]:
    """Compile, run on the interpreter, compare every output with the reference executor.

    Error bound: max |npu − ref| ≤ rtol · max(1, max |ref|) (fp16 activations, fp32 accumulation).
    """
    inputs = inputs if inputs is not None else random_inputs(m)
    c = compile_module(m.module, m.weights, config)
    res = run(c.program, inputs, config)
    ref = reference.run(m, inputs)
    assert c.output_names == sorted(ref)
    for k, want in ref.items():
        got = res.outputs[k].astype(np.float32)
        assert got.shape == want.shape, (k, got.shape, want.shape)
        err = float(np.abs(got - want).max()) if want.size else 0.0
        scale = max(1.0, float(np.abs(want).max()) if want.size else 0.0)
        print(f"{config} {k}: max abs err {err:.3e}, max rel err {err / scale:.3e}")
        assert err <= rtol * scale, f"{k}: max abs error {err} > {rtol} x {scale}"
    assert not res.report.unconsumed_tokens, res.report.unconsumed_tokens
    if data_independent(c.program.instrs):  # the static estimate is the measured figure
        assert c.static_report["cycles"] == res.report.cycles
    return c, res


def data_independent(instrs: list) -> bool:
    """No CMP (predicates from data) and no MATMUL precision mask (masked rows at the int4 rate):
    the only two ways a run's timing can depend on data (docs/hardware.md)."""
    return not any(i.cls.name == "CMP" or (i.cls.name == "MATMUL" and i["mask"]) for i in instrs)
