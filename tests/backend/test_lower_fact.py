"""FACT work skipping: `tokens.key_linear` computes only the key row tiles some query selects.
The interpreter's skipped rows equal the reference's and an independent loop over the mask;
computed rows match numpy within fp16 tolerance; skipped tiles cost no MACs."""

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
from dialects.tokens_fact import KeyLinearOp

I8 = IntegerType(8)
N, D, HEADS, OUT = 24, 8, 2, 12


def model(topk: int, tile: int, rng: np.random.Generator) -> tuple[Model, dict[str, np.ndarray]]:
    """xq (int8) → tokens.predict → mask; tokens.key_linear(xf, mask, w, b)."""
    blk = Block(arg_types=[tensor((N, D), I8), tensor((N, D), f32)])
    blk.args[0].name_hint, blk.args[1].name_hint = "xq", "xf"
    w = {
        "wq": (np.eye(D) * 64).astype(np.int8),
        "wk": (np.eye(D) * 64).astype(np.int8),
        "w": rng.standard_normal((OUT, D)).astype(np.float32),
        "b": rng.standard_normal(OUT).astype(np.float32),
    }
    types = {"wq": tensor((D, D), I8), "wk": tensor((D, D), I8)}
    types |= {"w": tensor((OUT, D), f32), "b": tensor((OUT,), f32)}
    wops = {s: nn.WeightOp.of(s, t) for s, t in types.items()}
    pred = tokens.PredictOp.make(
        [blk.args[0], wops["wq"].result, wops["wk"].result], heads=HEADS, qk_dim=D // HEADS,
        scale=0.5, causal=False, topk=topk, margin=-1.0, q_shift=6, k_shift=6, unit=1.0,
    )  # fmt: skip
    kl = KeyLinearOp.make(
        [blk.args[1], pred.results[0], wops["w"].result, wops["b"].result], tile=tile
    )
    blk.add_ops([*wops.values(), pred, kl, ReturnOp(kl.results[0], pred.results[0])])
    func = FuncOp("main", (list(blk.arg_types), [kl.results[0].type, pred.results[0].type]),
                  Region(blk))  # fmt: skip
    xq = rng.integers(0, 3, (N, D)).astype(np.int8)
    xq[rng.integers(0, N)] = 100  # a dominant key: every query's top-1
    xf = rng.standard_normal((N, D)).astype(np.float32)
    return Model("kv", ModuleOp([func]), WeightStore(w)), {"xq": xq, "xf": xf}


def used_rows(mask: np.ndarray, tile: int) -> np.ndarray:
    """Loop statement: row j is computed iff some (h, i, j') with j' in j's tile is selected."""
    n = mask.shape[-1]
    out = np.zeros(n, bool)
    for j in range(n):
        t0 = j // tile * tile
        out[j] = any(mask[h, i, jj] != 0 for h in range(mask.shape[0]) for i in range(n)
                     for jj in range(t0, min(t0 + tile, n)))  # fmt: skip
    return out


@pytest.mark.parametrize(("topk", "tile", "seed"), [(1, 4, 0), (2, 4, 1), (1, 8, 2), (1, 5, 3)])
def test_key_linear_skips_exactly_the_reference_rows(topk: int, tile: int, seed: int) -> None:
    m, x = model(topk, tile, np.random.default_rng(seed))
    ref = reference.run(m, x)
    mask = ref["out1"]
    used = used_rows(mask, tile)
    assert not used.all() and used.any()
    want = np.where(used[:, None], x["xf"] @ m.weights["w"].T + m.weights["b"], 0.0)
    np.testing.assert_allclose(ref["out0"], want, rtol=1e-5, atol=1e-5)
    got = compile_model(m, target="spatten").run(x)
    np.testing.assert_array_equal(got.outputs["out1"].astype(np.float64), mask)
    y = got.outputs["out0"].astype(np.float32)
    assert (y[~used] == 0).all()  # skipped rows exactly 0 (stored zeros)
    np.testing.assert_allclose(y[used], want[used], rtol=2e-2, atol=2e-2)
    fp16 = got.report.macs_useful["fp16"]
    assert fp16 == int(used.sum()) * D * OUT  # only the computed tiles' MACs


def test_key_linear_verifies_its_mask() -> None:
    from compiler.ir import parse_module

    ir = (
        "func.func @main(%x: tensor<65x64xf32>, %m: tensor<4x65x60xf32>, %w: tensor<64x64xf32>)"
        " -> tensor<65x64xf32> {\n  %k = tokens.key_linear %x, %m, %w {tile = 16} :"
        " (tensor<65x64xf32>, tensor<4x65x60xf32>, tensor<64x64xf32>) -> tensor<65x64xf32>\n"
        "  func.return %k : tensor<65x64xf32>\n}\n"
    )
    with pytest.raises(Exception, match="mask must be"):
        parse_module(ir)
    ok = ir.replace("4x65x60", "4x65x65")
    assert "tokens.key_linear" in str(parse_module(ok))


def test_eager_predict_kv_tile_changes_no_output() -> None:
    from compiler.models import build
    from compiler.pipeline import run_pipeline

    vit = {"layers": 2, "image": 8, "patch": 2, "dim": 32, "heads": 4, "mlp_dim": 64, "classes": 5}
    x = {"image": np.random.default_rng(3).standard_normal((3, 8, 8)).astype(np.float32)}
    outs = []
    for spec in ("eager-predict{topk=1 samples=2}", "eager-predict{topk=1 kv_tile=1 samples=2}"):
        m = build("deit-tiny", seed=5, **vit)
        recs = run_pipeline(m, spec, quiet=True)
        outs.append(reference.run(m, x)["out0"])
        rep = next(r.report for r in recs if r.name == "eager-predict")
        skipped = [x["kv_rows_skipped"] for x in rep["predict_per_layer"]]
    assert any(s > 0 for s in skipped)  # per-row tiles: unselected keys exist at top-1
    assert sum(isinstance(o, KeyLinearOp) for o in m.main.body.block.ops) == 4
    np.testing.assert_array_equal(outs[0], outs[1])  # skipped rows are never read
    got = compile_model(m, target="spatten").run(x).outputs["out0"].astype(np.float32)
    assert np.abs(got - outs[1]).max() <= 5e-2 * max(1.0, float(np.abs(outs[1]).max()))
