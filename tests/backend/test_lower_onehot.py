"""FACT's one-hot Q rows on the NPU: a query tile whose predicted rows each keep one key skips
Q·Kᵀ and the softmax (predicated off); its rows are V's selected rows (one-hot mask · V_h, exact).
Values equal the reference (softmax over one key = a copy of that V row) and an independent numpy
copy; a skipped tile's MACs are only the copy's."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerType, ModuleOp, f32
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region

from compiler import reference
from compiler.api import compile_model
from compiler.model import Model
from compiler.weights import WeightStore
from dialects import nn, tokens
from dialects.nn_base import tensor

I8 = IntegerType(8)
N, D, HEADS, DH = 24, 8, 2, 4


def model(topk: int, margin: float, causal: bool, dominant: bool, rng: np.random.Generator):
    """xq (int8) → tokens.predict → masked attention of float q, k, v."""
    blk = Block(arg_types=[tensor((N, D), I8), *[tensor((N, HEADS * DH), f32)] * 3])
    for a, name in zip(blk.args, ("xq", "q", "k", "v"), strict=True):
        a.name_hint = name
    w = {"wq": (np.eye(D) * 64).astype(np.int8), "wk": (np.eye(D) * 64).astype(np.int8)}
    wops = {s: nn.WeightOp.of(s, tensor((D, D), I8)) for s in w}
    pred = tokens.PredictOp.make(
        [blk.args[0], wops["wq"].result, wops["wk"].result], heads=HEADS, qk_dim=DH,
        scale=0.5, causal=causal, topk=topk, margin=margin, q_shift=6, k_shift=6, unit=1.0,
    )  # fmt: skip
    att = tokens.MaskedAttentionOp.make(
        [blk.args[1], blk.args[2], blk.args[3], pred.results[0]], heads=HEADS, qk_dim=DH,
        v_dim=DH, scale=0.5, causal=causal,
    )  # fmt: skip
    blk.add_ops([*wops.values(), pred, att, ReturnOp(att.results[0], pred.results[0])])
    func = FuncOp("main", (list(blk.arg_types), [att.results[0].type, pred.results[0].type]),
                  Region(blk))  # fmt: skip
    xq = rng.integers(0, 3, (N, D)).astype(np.int8)
    if dominant:
        xq[0] = 100  # every query's top-1 by far (causal too): one-hot rows
    x = {"xq": xq} | {s: rng.standard_normal((N, HEADS * DH)).astype(np.float32)
                      for s in ("q", "k", "v")}  # fmt: skip
    x = {s: (a.astype(np.float16).astype(np.float32) if s != "xq" else a) for s, a in x.items()}
    return Model("onehot", ModuleOp([func]), WeightStore(w)), x


def copied_rows(mask: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Independent statement for one-hot rows: row i of head h is V[j, h] for its one key j."""
    out = np.full((N, HEADS * DH), np.nan, np.float32)
    for h in range(HEADS):
        for i in range(N):
            js = np.flatnonzero(mask[h, i])
            if len(js) == 1:
                out[i, h * DH : (h + 1) * DH] = v[js[0], h * DH : (h + 1) * DH]
    return out


@pytest.mark.parametrize(
    ("topk", "margin", "causal", "dominant", "seed"),
    [(3, 0.04, False, True, 0), (1, -1.0, False, False, 1), (3, 0.04, True, True, 2),
     (4, 1000.0, False, False, 3), (2, 0.04, True, False, 4)],
)  # fmt: skip
def test_one_hot_tiles_are_copies(topk, margin, causal, dominant, seed) -> None:
    m, x = model(topk, margin, causal, dominant, np.random.default_rng(seed))
    ref = reference.run(m, x)
    mask = ref["out1"]
    want = copied_rows(mask, x["v"])
    one = ~np.isnan(want)
    np.testing.assert_array_equal(ref["out0"][one], want[one])  # the reference: exact copies
    got = compile_model(m, target="spatten").run(x)
    np.testing.assert_array_equal(got.outputs["out1"].astype(np.float64), mask)
    y = got.outputs["out0"].astype(np.float32)
    np.testing.assert_array_equal(y[one], want[one])  # copies are exact on the NPU too
    np.testing.assert_allclose(y, ref["out0"], rtol=2e-2, atol=2e-2)
    heads_all_one = [bool((mask[h].sum(-1) == 1).all()) for h in range(HEADS)]
    fp16 = got.report.macs_useful["fp16"]
    per_head = N * N * DH  # Q·K_hᵀ or P·V_h of one head (one query tile here)
    copied = sum(heads_all_one)  # their tiles: only the one-hot mask · V_h
    assert fp16 == 2 * per_head * (HEADS - copied) + per_head * copied
    if topk == 1:
        assert all(heads_all_one)  # exercised: every tile skipped
    if dominant:
        assert any(heads_all_one)  # exercised: some tile skipped
    if margin >= 1000:
        assert not any(heads_all_one)  # exercised: every tile computed
