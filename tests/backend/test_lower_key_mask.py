"""nn.attention with a key-padding mask on the NPU: interpreter vs reference, and exactly which keys
are masked (a masked key's value never reaches the output)."""

from __future__ import annotations

import numpy as np
import pytest
from compile_util import CONFIGS, check, model_from_ir

from backend.compile import compile_module
from backend.interpreter import run


def t(*shape: int, elem: str = "f32") -> str:
    return f"tensor<{'x'.join(map(str, shape))}x{elem}>"


def _model(sq: int, sk: int, heads: int, d: int, causal: bool):  # noqa: ANN202
    w = heads * d
    body = (
        f"    %a = nn.attention %q, %k, %v, %m {{heads = {heads}, qk_dim = {d}, v_dim = {d},"
        f" scale = {d**-0.5!r}, causal = {str(causal).lower()}}} : ({t(sq, w)}, {t(sk, w)},"
        f" {t(sk, w)}, {t(sk, elem='i32')}) -> {t(sq, w)}\n"
        f"    func.return %a : {t(sq, w)}"
    )
    args = f"%q: {t(sq, w)}, %k: {t(sk, w)}, %v: {t(sk, w)}, %m: {t(sk, elem='i32')}"
    return model_from_ir(body, args, t(sq, w), {})


def _inputs(sq: int, sk: int, w: int, mask: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "q": rng.standard_normal((sq, w)).astype(np.float32),
        "k": rng.standard_normal((sk, w)).astype(np.float32),
        "v": rng.standard_normal((sk, w)).astype(np.float32),
        "m": mask.astype(np.int32),
    }


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("causal", [False, True])
def test_masked_attention_matches_reference(config: str, causal: bool) -> None:
    sq = sk = 24
    mask = (np.arange(sk) < 17).astype(np.int32)  # 7 padded keys at the end
    mask[3] = 0  # and one in the middle
    m = _model(sq, sk, 2, 16, causal)
    check(m, config, _inputs(sq, sk, 32, mask))


def test_masked_keys_are_exactly_excluded() -> None:
    """Changing the values (and keys) of masked positions leaves every output bit unchanged."""
    sq = sk = 20
    mask = np.ones(sk, np.int32)
    mask[[2, 11, 19]] = 0
    m = _model(sq, sk, 2, 8, False)
    c = compile_module(m.module, m.weights, "spatten")
    a = _inputs(sq, sk, 16, mask)
    b = {k: v.copy() for k, v in a.items()}
    b["v"][[2, 11, 19]] = 1e3
    b["k"][[2, 11, 19]] = 50.0
    ya, yb = (run(c.program, x, "spatten").outputs["out0"] for x in (a, b))
    assert np.array_equal(ya, yb)


def test_mask_values_clamp_and_all_masked_rows() -> None:
    """mask 2 keeps like 1, −1 masks like 0; an all-masked mask attends uniformly (both sides)."""
    sq = sk = 8
    m = _model(sq, sk, 1, 8, False)
    check(m, "spatten", _inputs(sq, sk, 8, np.array([2, 1, 0, -1, 1, 0, 3, 1])))
    _, res = check(m, "spatten", _inputs(sq, sk, 8, np.zeros(sk)))
    x = _inputs(sq, sk, 8, np.zeros(sk))
    np.testing.assert_allclose(
        res.outputs["out0"].astype(np.float32), np.tile(x["v"].mean(0), (sq, 1)), atol=2e-2
    )
