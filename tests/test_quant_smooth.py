"""SmoothQuant migration (passes/smooth.py): the float model's function is unchanged, smoothed inputs
and weights are balanced as the formula says, and inputs it cannot fold are left alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "backend"))
from compile_util import model_from_ir  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.calibration import ReferenceExecutor, calibration_for  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.models.zoo import build  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from passes.context import Calibration  # noqa: E402
from passes.quantize import collect_inputs, quantizable_layers  # noqa: E402
from passes.smooth import smooth_layers  # noqa: E402


def _smooth(m: Model, calib: Calibration, alpha: float) -> tuple[list[str], dict]:
    chosen = quantizable_layers(m.module)
    inputs = list(dict.fromkeys(lay.op.input for lay in chosen))
    acts = collect_inputs(m.module, m.weights, calib, inputs, len(calib.inputs))
    notes = smooth_layers(m.module, m.weights, chosen, acts, alpha)
    return notes, {"chosen": chosen, "inputs": inputs, "acts": acts}


def test_digits_vit_function_unchanged_and_balanced() -> None:
    m = build("digits-vit")
    calib = calibration_for(m, samples=4)
    before = [reference.run(m, s)["out0"] for s in calib.inputs]
    w_before = {k: np.array(v) for k, v in m.weights.items()}
    notes, info = _smooth(m, calib, 0.5)
    for s, want in zip(calib.inputs, before, strict=True):
        got = reference.run(m, s)["out0"]
        assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    assert not np.array_equal(
        m.weights["blocks.0.attn.q.weight"], w_before["blocks.0.attn.q.weight"]
    )
    assert np.array_equal(m.weights["blocks.0.mlp.fc2.weight"], w_before["blocks.0.mlp.fc2.weight"])
    assert any("blocks.0.mlp.fc2 left alone: produced by nn.gelu" in n for n in notes)
    assert any("blocks.0.attn.proj left alone: produced by nn.attention" in n for n in notes)
    # α = 1/2: s_j = sqrt(max|X_j| / max|W_j|), so afterwards max|X'_j| = max_j|W'_j| per channel
    acts = collect_inputs(m.module, m.weights, calib, info["inputs"], len(calib.inputs))
    lay = next(lay for lay in info["chosen"] if lay.name == "blocks.1.attn.q")
    readers = [x for x in info["chosen"] if x.op.input is lay.op.input]
    assert len(readers) == 3  # q, k, v share the layer norm
    x_max = np.abs(acts[lay.op.input]).max(axis=0)
    w_max = np.max([np.abs(m.weights[r.weight]).max(axis=0) for r in readers], axis=0)
    assert np.allclose(x_max, w_max, rtol=1e-4)
    # the factors came from the formula: s_j = max|X_j|^α / max|W_j|^(1−α) on the original model
    x0 = np.abs(info["acts"][lay.op.input]).max(axis=0).astype(np.float64)
    w0 = np.max([np.abs(w_before[r.weight]).max(axis=0) for r in readers], axis=0)
    s = np.sqrt(x0) / np.sqrt(w0)
    assert np.allclose(m.weights[lay.weight], w_before[lay.weight] * s, rtol=1e-6)
    gamma = "blocks.1.norm1.weight"
    assert np.allclose(m.weights[gamma], w_before[gamma] / s, rtol=1e-6)


def _t(*shape: int) -> str:
    return f"tensor<{'x'.join(map(str, shape))}xf32>"


def test_inputs_that_cannot_absorb_the_division_are_left_alone() -> None:
    """Layer norm output also read by an add; a gamma whose symbol another nn.weight names; a function
    argument as input. The weights stay as they were and a note says why."""
    body = f"""    %g = nn.weight @ln.weight : {_t(8)}
    %b = nn.weight @ln.bias : {_t(8)}
    %n = nn.layer_norm %x, %g, %b {{eps = 1.0e-06}} : ({_t(4, 8)}, {_t(8)}, {_t(8)}) -> {_t(4, 8)}
    %w1 = nn.weight @a.weight : {_t(8, 8)}
    %y1 = nn.linear %n, %w1 : ({_t(4, 8)}, {_t(8, 8)}) -> {_t(4, 8)}
    %r = nn.add %n, %y1 : ({_t(4, 8)}, {_t(4, 8)}) -> {_t(4, 8)}
    %g2 = nn.weight @ln2.weight : {_t(8)}
    %g3 = nn.weight @ln2.weight : {_t(8)}
    %b2 = nn.weight @ln2.bias : {_t(8)}
    %n2 = nn.layer_norm %r, %g2, %b2 {{eps = 1.0e-06}} : ({_t(4, 8)}, {_t(8)}, {_t(8)}) -> {_t(4, 8)}
    %w2 = nn.weight @b.weight : {_t(8, 8)}
    %y2 = nn.linear %n2, %w2 : ({_t(4, 8)}, {_t(8, 8)}) -> {_t(4, 8)}
    %w3 = nn.weight @c.weight : {_t(8, 8)}
    %y3 = nn.linear %x, %w3 : ({_t(4, 8)}, {_t(8, 8)}) -> {_t(4, 8)}
    %o = nn.add %y2, %y3 : ({_t(4, 8)}, {_t(4, 8)}) -> {_t(4, 8)}
    func.return %o : {_t(4, 8)}"""
    rng = np.random.default_rng(0)
    weights = {
        k: rng.standard_normal(s).astype(np.float32)
        for k, s in [
            ("ln.weight", 8),
            ("ln.bias", 8),
            ("ln2.weight", 8),
            ("ln2.bias", 8),
            ("a.weight", (8, 8)),
            ("b.weight", (8, 8)),
            ("c.weight", (8, 8)),
        ]
    }
    m = model_from_ir(body, f"%x: {_t(4, 8)}", _t(4, 8), weights)
    calib = Calibration(
        [{"x": rng.standard_normal((4, 8)).astype(np.float32)} for _ in range(3)],
        None,
        ReferenceExecutor(),
    )
    notes, _ = _smooth(m, calib, 0.5)
    for k, v in weights.items():
        assert np.array_equal(m.weights[k], v), k
    text = "\n".join(notes)
    assert "input of a left alone: also read by nn.add" in text
    assert (
        "input of b left alone: the layer norm's gamma is not an nn.weight used only there" in text
    )
    assert "input of c left alone: produced by a block argument" in text


def test_quantize_with_smoothing_reports_it() -> None:
    m = build("digits-vit")
    records = run_pipeline(m, "quantize{smooth=0.5 samples=4}", quiet=True)
    notes = records[0].report["notes"]
    assert "smooth=0.5" in notes[0]
    assert sum("smooth: " in n and "left alone" not in n for n in notes) == 9  # 4×(qkv, fc1) + head
