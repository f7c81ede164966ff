"""Lowering of weights marked {sparsity = "2:4"}: MATMUL sp24h, exact against the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from compile_util import check, model_from_ir

from backend.compile import compile_module
from backend.config import load_config
from backend.errors import BackendError
from backend.lower.sparse import plan_sp24


def _t(*shape: int) -> str:
    return f"tensor<{'x'.join(map(str, shape))}xf32>"


def _sparse(rng: np.random.Generator, out: int, d_in: int) -> np.ndarray:
    w = rng.standard_normal((out, d_in)).astype(np.float32)
    g = w.reshape(out, d_in // 4, 4)
    drop = np.argsort(rng.random(g.shape), axis=2)[:, :, :2]
    np.put_along_axis(g, drop, 0.0, axis=2)
    return g.reshape(out, d_in)


def _model(rows: int, d_in: int, d_out: int, gelu: bool = False, seed: int = 0):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    act = (
        f'\n    %g = nn.gelu %y {{approximate = "none"}} : ({_t(rows, d_out)}) -> {_t(rows, d_out)}'
        if gelu
        else ""
    )
    body = f"""    %w = nn.weight @w attributes {{sparsity = "2:4"}} : {_t(d_out, d_in)}
    %b = nn.weight @b : {_t(d_out)}
    %y = nn.linear %x, %w, %b : ({_t(rows, d_in)}, {_t(d_out, d_in)}, {_t(d_out)}) -> {_t(rows, d_out)}{act}
    func.return {"%g" if gelu else "%y"} : {_t(rows, d_out)}"""
    weights = {"w": _sparse(rng, d_out, d_in), "b": rng.standard_normal(d_out).astype(np.float32)}
    return model_from_ir(body, f"%x: {_t(rows, d_in)}", _t(rows, d_out), weights)


def _modes(c) -> list[int]:  # noqa: ANN001
    return [int(i.args["mode"]) for i in c.program.instrs if i.cls.name == "MATMUL"]


@pytest.mark.parametrize("config", ["spatten", "fact", "edge"])
@pytest.mark.parametrize(("rows", "d_in", "d_out"), [(7, 16, 10), (40, 1024, 96), (130, 96, 300)])
def test_sp24h_linear_matches_reference(config: str, rows: int, d_in: int, d_out: int) -> None:
    """Several K-chunks / N-tiles / M-tiles: every MATMUL is sp24h and the result is exact."""
    c, _ = check(_model(rows, d_in, d_out, gelu=True), config)
    assert set(_modes(c)) == {4}


def test_odd_out_features_stay_dense() -> None:
    c, _ = check(_model(5, 16, 7), "spatten")
    assert set(_modes(c)) == {0}


def test_marked_weight_that_is_not_2_4_is_a_clear_error() -> None:
    m = _model(4, 16, 8)
    m.weights["w"] = np.ones((8, 16), np.float32)
    with pytest.raises(BackendError, match="marked 2:4 but B is not 2:4 sparse"):
        compile_module(m.module, m.weights, load_config("spatten"))


def test_plan_tiles_respect_the_compressed_layout() -> None:
    cfg = load_config("edge")
    plan = plan_sp24(200, 300, 1536, cfg, (65536, 65536, 65536, 65536))
    assert plan is not None and plan.kc % 4 == 0 and plan.nt % 2 == 0
