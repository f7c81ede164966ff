"""The swapped GEMM orientation (outᵀ = W·Xᵀ, tokens on the array's columns) against the
reference executor, forced on for every linear-bearing op case and chosen by the cost model on
token counts that are not a multiple of the array's rows."""

from __future__ import annotations

import numpy as np
import pytest
from compile_util import CONFIGS, check, model_from_ir
from test_lower_ops import CASES, LN_LINEAR, R, t, w

from backend.compile import compile_module
from backend.lower import gemm

LINEAR_CASES = sorted(c for c in CASES if c.startswith("linear"))


def _inputs(m) -> dict[str, np.ndarray]:
    return {k: R.standard_normal(s).astype(np.float32) for k, (s, _) in m.input_specs().items()}


def _swapped_moves(c) -> int:
    return sum(
        i.cls.name == "MOVE" and i.args["transpose"] and i.args["src_dtype"] == 1
        for i in c.program.instrs
    )


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("case", LINEAR_CASES)
def test_forced_swap_matches_reference(
    case: str, config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gemm, "SWAP", "always")
    m = model_from_ir(*CASES[case])
    c, _ = check(m, config, _inputs(m))
    assert _swapped_moves(c) > 0


@pytest.mark.parametrize("config", CONFIGS)
def test_forced_swap_layer_norm_prologue(config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer-norm prologue normalises the activation tiles (the B operand when swapped)."""
    monkeypatch.setattr(gemm, "SWAP", "always")
    weights = {"g": 1 + w(256), "b": w(256), "w": w(48, 256, std=0.1)}
    m = model_from_ir(LN_LINEAR, f"%x: {t(40, 256)}", t(40, 48), weights)
    x = {"x": (R.standard_normal((40, 256)) * 3 + 1).astype(np.float32)}
    c, _ = check(m, config, x)
    rows = [i for i in c.program.instrs if i.cls.name == "ROW"]
    assert rows and all(i.args["dst_buf"] == 1 for i in rows)  # in wgt, on the B tiles
    assert _swapped_moves(c) > 0


def test_auto_picks_swap_for_ragged_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """197 tokens: 13 column folds of 16 (208 rows) beat 7 row folds of 32 (224); the fused
    GELU, bias and residual run on the transposed accumulators."""
    d, h = 64, 128
    body = f"""    %w1 = nn.weight @w1 : {t(h, d)}
    %b1 = nn.weight @b1 : {t(h)}
    %y = nn.linear %x, %w1, %b1 : ({t(197, d)}, {t(h, d)}, {t(h)}) -> {t(197, h)}
    %g = nn.gelu %y {{approximate = "none"}} : ({t(197, h)}) -> {t(197, h)}
    %w2 = nn.weight @w2 : {t(d, h)}
    %b2 = nn.weight @b2 : {t(d)}
    %z = nn.linear %g, %w2, %b2 : ({t(197, h)}, {t(d, h)}, {t(d)}) -> {t(197, d)}
    %o = nn.add %x, %z : ({t(197, d)}, {t(197, d)}) -> {t(197, d)}
    func.return %o : {t(197, d)}"""
    weights = {"w1": w(h, d, std=0.1), "b1": w(h), "w2": w(d, h, std=0.1), "b2": w(d)}
    m = model_from_ir(body, f"%x: {t(197, d)}", t(197, d), weights)
    c, _ = check(m, "spatten", _inputs(m))
    assert _swapped_moves(c) > 0
    monkeypatch.setattr(gemm, "SWAP", "never")
    plain = compile_module(m.module, m.weights, "spatten")
    assert _swapped_moves(plain) == 0
    assert c.static_report["cycles"] < plain.static_report["cycles"]


@pytest.mark.parametrize("config", CONFIGS)
def test_prologue_in_row_chunks(config: str) -> None:
    """A whole-row prologue tile is normalised in chunks, each feeding its own MATMUL (cost
    neutral), so the first MATMUL does not wait for the whole tile's layer norm."""
    d, n = 128, 96
    body = f"""    %g = nn.weight @g : {t(d)}
    %b = nn.weight @b : {t(d)}
    %x1 = nn.layer_norm %x, %g, %b {{eps = 1.0e-06}} : ({t(197, d)}, {t(d)}, {t(d)}) -> {t(197, d)}
    %w = nn.weight @w : {t(n, d)}
    %y = nn.linear %x1, %w : ({t(197, d)}, {t(n, d)}) -> {t(197, n)}
    func.return %y : {t(197, n)}"""
    weights = {"g": 1 + w(d), "b": w(d), "w": w(n, d, std=0.1)}
    m = model_from_ir(body, f"%x: {t(197, d)}", t(197, n), weights)
    x = {"x": (R.standard_normal((197, d)) * 3 + 1).astype(np.float32)}
    c, _ = check(m, config, x)
    lns = [i for i in c.program.instrs if i.cls.name == "ROW"]
    assert len(lns) >= 2 and min(i.args["rows"] for i in lns) < 197


def _split_matmuls(c) -> int:
    return sum(i.cls.name == "MATMUL" and i.args["b_buf"] == 3 for i in c.program.instrs)


@pytest.mark.parametrize("swap", ["never", "always"])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("case", LINEAR_CASES)
def test_forced_b_split_matches_reference(
    case: str, config: str, swap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B tiles split between wgt and vec (C and output in acc), plain and swapped."""
    monkeypatch.setattr(gemm, "SPLIT", "only")
    monkeypatch.setattr(gemm, "SWAP", swap)
    m = model_from_ir(*CASES[case])
    c, _ = check(m, config, _inputs(m))
    if swap == "never":  # swapped, these few tokens give no even number of 16-column folds
        assert _split_matmuls(c) > 0


def test_forced_b_split_ragged_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split halves with a ragged last tile (197 tokens), residual and bias, both orientations."""
    monkeypatch.setattr(gemm, "SPLIT", "only")
    d, n = 96, 128
    body = f"""    %w = nn.weight @w : {t(n, d)}
    %b = nn.weight @b : {t(n)}
    %y = nn.linear %x, %w, %b : ({t(197, d)}, {t(n, d)}, {t(n)}) -> {t(197, n)}
    %o = nn.add %r, %y : ({t(197, n)}, {t(197, n)}) -> {t(197, n)}
    func.return %o : {t(197, n)}"""
    m = model_from_ir(
        body, f"%x: {t(197, d)}, %r: {t(197, n)}", t(197, n), {"w": w(n, d), "b": w(n)}
    )
    for swap in ("never", "always"):
        monkeypatch.setattr(gemm, "SWAP", swap)
        c, _ = check(m, "spatten", _inputs(m))
        assert _split_matmuls(c) > 0


def test_tied_lm_head_shares_the_embedding_layout() -> None:
    """GPT-2's LM head is tied to its token embedding, a GATHER table stored [vocab, dim]
    row-major. At 128 tokens the plain and swapped plans of the LM head estimate the same cycles;
    the swapped plan reads the table's layout, so the data image holds every weight once: at most
    1.1 × the fp16 bytes of the parameters (a second, transposed copy of the 50,257 × 768 table
    would add 77 MB). The outputs still match the reference executor."""
    from compile_util import small_zoo

    m = small_zoo("gpt2", layers=1, seq=128)
    c, _ = check(m, "spatten")
    assert len(c.program.data) <= 1.1 * 2 * m.weights.num_params
    assert _swapped_moves(c) > 0
