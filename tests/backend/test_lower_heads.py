"""Lowered SpAtten head pruning: the interpreter keeps the heads an independent numpy computation
of s[h] = Σ_l Σ_i |O_l[i, h]| keeps, matches the values, and charges nothing for skipped heads."""

from __future__ import annotations

import numpy as np
import pytest
from compile_util import CONFIGS, random_inputs, small_zoo

from backend.compile import compile_module
from backend.config import load_config
from backend.cost import cost
from backend.interpreter import run
from backend.lower import rules_dense
from compiler.ir import parse_module
from compiler.model import Model
from compiler.pipeline import run_pipeline
from compiler.weights import WeightStore

ATT = "heads = 4, qk_dim = 4, v_dim = 4, scale = 0.5, causal = false"
T = "tensor<12x16xf32>"


def heads_model(keep: int) -> Model:
    body = f"""
    %o0 = nn.attention %q, %k, %v {{{ATT}}} : ({T}, {T}, {T}) -> {T}
    %s0 = tokens.head_importance %o0 {{heads = 4}} : ({T}) -> tensor<4xf32>
    %o1 = nn.attention %v, %q, %k {{{ATT}}} : ({T}, {T}, {T}) -> {T}
    %s1 = tokens.head_importance %o1 {{heads = 4}} : ({T}) -> tensor<4xf32>
    %s = nn.add %s0, %s1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %i = tokens.select %s {{k = {keep}, protect = []}} : (tensor<4xf32>) -> tensor<{keep}xi32>
    %y = tokens.head_attention %k, %q, %v, %i {{{ATT}}} : ({T}, {T}, {T}, tensor<{keep}xi32>) -> {T}
    func.return %y, %i : {T}, tensor<{keep}xi32>"""
    text = (
        f"builtin.module {{\n  func.func @main(%q: {T}, %k: {T}, %v: {T}) -> "
        f"({T}, tensor<{keep}xi32>) {{\n{body}\n  }}\n}}\n"
    )
    return Model("t", parse_module(text), WeightStore({}))


def np_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[n, heads, 4]: softmax(0.5 · q_h k_hᵀ) v_h per head."""
    qh, kh, vh = (x.reshape(12, 4, 4).transpose(1, 0, 2).astype(np.float64) for x in (q, k, v))
    s = 0.5 * qh @ kh.transpose(0, 2, 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (p @ vh).transpose(1, 0, 2)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", range(3))
def test_kept_heads_and_values_equal_numpy(config: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ins = {n: rng.standard_normal((12, 16)).astype(np.float16).astype(np.float32) for n in "qkv"}
    ins["v"][:, 4 * seed : 4 * seed + 4] *= 3  # one head clearly most important
    keep = 1 + seed % 3
    score = np.abs(np_attention(ins["q"], ins["k"], ins["v"])).sum(axis=(0, 2))
    score += np.abs(np_attention(ins["v"], ins["q"], ins["k"])).sum(axis=(0, 2))
    want = sorted(np.argsort(-score, kind="stable")[:keep].tolist())
    m = heads_model(keep)
    cfg = load_config(config)
    res = run(compile_module(m.module, m.weights, cfg).program, ins, cfg)
    assert res.outputs["out1"].tolist() == want
    full = np_attention(ins["k"], ins["q"], ins["v"])
    full[:, [h for h in range(4) if h not in want]] = 0
    got = res.outputs["out0"].astype(np.float32).reshape(12, 4, 4)
    np.testing.assert_allclose(got, full, atol=1e-2 * max(1.0, np.abs(full).max()))
    assert not got[:, [h for h in range(4) if h not in want]].any()
    assert res.report.skipped > 0


def _attn_tags(keep: int | None, monkeypatch: pytest.MonkeyPatch):
    m = small_zoo("deit-tiny", seed=5, layers=3, image=8, patch=2, dim=32, heads=4, mlp_dim=64,
                  classes=5)  # fmt: skip
    if keep is not None:
        run_pipeline(m, f"head-prune{{keep={keep} start=1}}", quiet=True)
    monkeypatch.setattr(rules_dense, "BATCH_HEADS", False)  # dense on the same per-head tiling
    cfg = load_config("spatten")
    c = compile_module(m.module, m.weights, cfg)
    return c, run(c.program, random_inputs(m), cfg).report.per_tag, cfg


def test_skipped_heads_cost_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    dc, dense, cfg = _attn_tags(None, monkeypatch)
    pc, pruned, _ = _attn_tags(1, monkeypatch)
    n, d = 17, 8  # tokens (16 patches + CLS), head dim
    core = [cost(i, cfg) for i in dc.program.instrs if "blocks.1.attn nn.attention" in i.comment]
    core_cycles = sum(c.cycles for c in core)
    core_bytes = sum(c.dram_read + c.dram_write for c in core)
    for layer in ("blocks.1.attn", "blocks.2.attn"):
        a, b = dense[layer], pruned[layer]
        # MACs: exactly 3 of 4 heads' Q·Kᵀ and P·V fewer
        assert a.macs - b.macs == 3 * (n * n * d + n * n * d)
        # cycles and DRAM: 3/4 of the attention core saved, less the selection overhead (the
        # unpredicated head_attention instructions) and one issue cycle per skipped instruction
        mine = [i for i in pc.program.instrs if f"{layer} tokens.head_attention" in i.comment]
        over = [cost(i, cfg) for i in mine if not i.pred]
        skipped = sum(1 for i in mine if i.pred)
        over_cycles = sum(c.cycles for c in over) + skipped
        over_bytes = sum(c.dram_read + c.dram_write for c in over)
        assert a.busy_cycles - b.busy_cycles >= 0.75 * core_cycles - over_cycles
        assert a.dram_bytes - b.dram_bytes >= 0.75 * core_bytes - over_bytes
        assert b.busy_cycles < a.busy_cycles and b.dram_bytes < a.dram_bytes
