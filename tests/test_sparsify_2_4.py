"""sparsify-2-4: the mask, the IR marking, the refit and the compiled 2:4 MATMULs, against oracles."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "backend"))
from compile_util import model_from_ir, small_zoo  # noqa: E402

from backend.compile import compile_module  # noqa: E402
from backend.config import load_config  # noqa: E402
from backend.cost.model import cost  # noqa: E402
from backend.interpreter import run  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.calibration import ReferenceExecutor  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.ir import parse_module, print_module  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.pipeline import parse_pipeline, run_pipeline  # noqa: E402
from passes.context import Calibration, PassError  # noqa: E402
from passes.sparsify_2_4 import mask_2_4  # noqa: E402

SPATTEN = load_config("spatten")


def _t(*shape: int) -> str:
    return f"tensor<{'x'.join(map(str, shape))}xf32>"


def _linear_model(rows: int, d_in: int, d_out: int, seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    body = f"""    %w = nn.weight @fc.weight : {_t(d_out, d_in)}
    %b = nn.weight @fc.bias : {_t(d_out)}
    %y = nn.linear %x, %w, %b : ({_t(rows, d_in)}, {_t(d_out, d_in)}, {_t(d_out)}) -> {_t(rows, d_out)}
    func.return %y : {_t(rows, d_out)}"""
    weights = {
        "fc.weight": rng.standard_normal((d_out, d_in)).astype(np.float32) / np.sqrt(d_in),
        "fc.bias": rng.standard_normal(d_out).astype(np.float32) * 0.1,
    }
    return model_from_ir(body, f"%x: {_t(rows, d_in)}", _t(rows, d_out), weights)


def _correlated_calibration(model: Model, n: int, seed: int = 1) -> Calibration:
    """Inputs with correlated features (a random mixing), so a refit has something to exploit."""
    rng = np.random.default_rng(seed)
    ((name, (shape, _)),) = model.input_specs().items()
    mix = rng.standard_normal((shape[-1], shape[-1])) / np.sqrt(shape[-1]) + np.eye(shape[-1])
    inputs = [{name: (rng.standard_normal(shape) @ mix).astype(np.float32)} for _ in range(n)]
    return Calibration(inputs, None, ReferenceExecutor())


def _oracle_mask(w: np.ndarray) -> np.ndarray:
    """Per group of 4 along `in`: the two largest |w|, ties to the lower index (plain loops)."""
    mask = np.zeros(w.shape, dtype=bool)
    for r in range(w.shape[0]):
        for g in range(0, w.shape[1], 4):
            order = sorted(range(4), key=lambda j: (-abs(float(w[r, g + j])), j))
            for j in order[:2]:
                mask[r, g + j] = True
    return mask


def test_mask_keeps_the_two_largest_of_every_four() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((12, 32)).astype(np.float32)
    w[0, :4] = [1.0, -1.0, 1.0, 0.5]  # ties: the lower indices win
    w[1, 4:8] = 0.0
    w[2, 8:12] = [0.0, -3.0, 0.0, 0.0]
    got = mask_2_4(w)
    assert np.array_equal(got, _oracle_mask(w))
    assert np.all(got.reshape(12, 8, 4).sum(axis=2) == 2)
    assert got[0, :4].tolist() == [True, True, False, False]


def test_pass_masks_weights_and_marks_the_ir() -> None:
    m = small_zoo("deit-tiny", layers=1, dim=32, heads=2, mlp_dim=64, image=16, patch=4)
    dense = {k: np.array(v) for k, v in m.weights.items()}
    records = run_pipeline(m, "sparsify-2-4", quiet=True, with_weights=True)
    marked = [
        op for op in m.module.walk() if op.name == "nn.weight" and "sparsity" in op.attributes
    ]
    assert marked  # every linear and the patch embed
    for op in marked:
        w, w0 = m.weights[op.symbol], dense[op.symbol]
        assert np.array_equal(w, np.where(_oracle_mask(w0), w0, 0))
    text = print_module(m.module)
    assert 'attributes {sparsity = "2:4"}' in text
    assert print_module(parse_module(text)) == text  # dumps round-trip with the marking
    report = records[0].report
    assert report is not None
    assert report["after"]["nonzero_params"] < report["before"]["nonzero_params"]
    assert report["after"]["weight_bytes"] < report["before"]["weight_bytes"]


def test_compiled_2_4_program_matches_reference_of_the_sparsified_model() -> None:
    m = small_zoo("deit-tiny", layers=1, dim=32, heads=2, mlp_dim=64, image=16, patch=4)
    run_pipeline(m, "sparsify-2-4", quiet=True)
    x = {"image": np.random.default_rng(3).standard_normal((3, 16, 16)).astype(np.float32)}
    want = reference.run(m, x)["out0"]
    # without refit the sparsified model is the dense model with masked weights (by construction):
    c = compile_module(m.module, m.weights, SPATTEN)
    modes = [i.args["mode"] for i in c.program.instrs if i.cls.name == "MATMUL"]
    assert modes.count(4) >= 4  # sp24h for the patch embed, qkv, proj, fc1, fc2 (not attention)
    got = run(c.program, x, SPATTEN).outputs["out0"].astype(np.float32)
    assert np.max(np.abs(got - want)) <= 1e-2 * max(1.0, float(np.max(np.abs(want))))


def _layer_error(
    model: Model, calib: Calibration, dense_w: np.ndarray, dense_b: np.ndarray
) -> float:
    x = np.concatenate([s["x"] for s in calib.inputs]).astype(np.float64)
    target = x @ dense_w.T + dense_b
    pred = x @ model.weights["fc.weight"].astype(np.float64).T + model.weights["fc.bias"]
    return float(np.sum((pred - target) ** 2))


def test_refit_lowers_the_layer_reconstruction_error() -> None:
    plain, fitted = _linear_model(16, 64, 24), _linear_model(16, 64, 24)
    calib = _correlated_calibration(plain, 8)
    dense_w, dense_b = np.array(plain.weights["fc.weight"]), np.array(plain.weights["fc.bias"])
    run_pipeline(plain, "sparsify-2-4", quiet=True, calibration=calib)
    run_pipeline(fitted, "sparsify-2-4{refit=true}", quiet=True, calibration=calib)
    w = fitted.weights["fc.weight"]
    assert np.all(w.reshape(24, 16, 4).__ne__(0).sum(axis=2) <= 2)
    assert np.all((w != 0) <= _oracle_mask(dense_w))  # the refit keeps the magnitude mask
    err_plain = _layer_error(plain, calib, dense_w, dense_b)
    err_fit = _layer_error(fitted, calib, dense_w, dense_b)
    assert err_fit <= err_plain
    assert err_fit < 0.7 * err_plain  # correlated inputs: the refit recovers a good part


def test_refit_patch_embed_through_the_reference() -> None:
    """The patch matrix the refit fits on is the one nn.patch_embed multiplies: the model's output
    error against the dense model shrinks on the calibration images."""
    body = f"""    %w = nn.weight @pe.weight : {_t(16, 48)}
    %b = nn.weight @pe.bias : {_t(16)}
    %y = nn.patch_embed %img, %w, %b {{patch = 4}} : ({_t(3, 8, 8)}, {_t(16, 48)}, {_t(16)}) -> {_t(4, 16)}
    func.return %y : {_t(4, 16)}"""
    rng = np.random.default_rng(5)
    weights = {
        "pe.weight": rng.standard_normal((16, 48)).astype(np.float32),
        "pe.bias": np.zeros(16, np.float32),
    }
    models = [
        model_from_ir(body, f"%img: {_t(3, 8, 8)}", _t(4, 16), dict(weights)) for _ in range(3)
    ]
    smooth = [
        {"img": np.cumsum(rng.standard_normal((3, 8, 8)), axis=2).astype(np.float32)}
        for _ in range(16)
    ]
    calib = Calibration(smooth, None, ReferenceExecutor())
    run_pipeline(models[1], "sparsify-2-4", quiet=True, calibration=calib)
    run_pipeline(models[2], "sparsify-2-4{refit=true}", quiet=True, calibration=calib)

    def err(mod: Model) -> float:
        return sum(
            float(
                np.sum((reference.run(mod, s)["out0"] - reference.run(models[0], s)["out0"]) ** 2)
            )
            for s in smooth
        )

    assert err(models[2]) < err(models[1])


def _linear_matmul_cycles(model: Model) -> tuple[int, int]:
    """(cycles, MATMUL count) of the linear's MATMULs, from the cost model per instruction."""
    c = compile_module(model.module, model.weights, SPATTEN)
    mms = [i for i in c.program.instrs if i.cls.name == "MATMUL"]
    return sum(cost(i, SPATTEN).cycles for i in mms), len(mms)


def test_sparse_layer_matrix_cycles_about_halved() -> None:
    dense, sparse = _linear_model(64, 512, 64), _linear_model(64, 512, 64)
    run_pipeline(sparse, "sparsify-2-4", quiet=True)
    (cyc_dense, _), (cyc_sparse, _) = _linear_matmul_cycles(dense), _linear_matmul_cycles(sparse)
    assert 0.45 <= cyc_sparse / cyc_dense <= 0.6, (cyc_dense, cyc_sparse)
    x = {"x": np.random.default_rng(2).standard_normal((64, 512)).astype(np.float32)}
    rep_dense = run(compile_module(dense.module, dense.weights, SPATTEN).program, x, SPATTEN).report
    rep_sparse = run(
        compile_module(sparse.module, sparse.weights, SPATTEN).program, x, SPATTEN
    ).report
    assert rep_sparse.macs_useful["fp16"] * 2 == rep_dense.macs_useful["fp16"]
    assert rep_sparse.queues["matrix"].busy < 0.6 * rep_dense.queues["matrix"].busy


def test_bad_input_is_a_clear_error() -> None:
    m = _linear_model(4, 6, 8)  # in-features 6: not a multiple of 4
    with pytest.raises(WispError, match="cannot be 2:4 sparse: in-features 6"):
        run_pipeline(m, "sparsify-2-4{layers=fc}", quiet=True)
    with pytest.raises(WispError, match="matches no linear"):
        run_pipeline(_linear_model(4, 8, 8), 'sparsify-2-4{layers="blocks.*"}', quiet=True)
    with pytest.raises(WispError, match="sparsify-2-4"):
        parse_pipeline("sparsify-2-4{ratio=0.5}")
    with pytest.raises(WispError, match="min_in"):
        run_pipeline(_linear_model(4, 8, 8), "sparsify-2-4{min_in=2}", quiet=True)
    records = run_pipeline(m, 'sparsify-2-4{layers="f*"}', quiet=True)  # a wildcard: skipped
    assert any("in-features 6" in n for n in records[0].report["notes"])
    assert not any("sparsity" in op.attributes for op in m.module.walk())


def test_pass_error_without_weights_or_calibration() -> None:
    from compiler.ir import make_context
    from passes.sparsify_2_4 import Sparsify24Pass

    m = _linear_model(4, 8, 8)
    ctx = make_context()
    with pytest.raises(PassError, match="weights"):
        Sparsify24Pass().apply(ctx, m.module)
    ctx.weights = m.weights
    with pytest.raises(PassError, match="calibration"):
        Sparsify24Pass(refit=True).apply(ctx, m.module)
