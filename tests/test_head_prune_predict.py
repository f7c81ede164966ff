"""head-prune (SpAtten cascade heads) and eager-predict (FACT) at the nn level, against independent
numpy computations of the papers' rules."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.errors import WispError
from compiler.models import build
from compiler.pipeline import run_pipeline
from dialects import nn, tokens

VIT = {"layers": 3, "image": 8, "patch": 2, "dim": 32, "heads": 4, "mlp_dim": 64, "classes": 5}


def vit():
    return build("deit-tiny", seed=5, **VIT)


def x(seed: int = 0) -> dict[str, np.ndarray]:
    return {"image": np.random.default_rng(seed).standard_normal((3, 8, 8)).astype(np.float32)}


def ops_of(m, cls):
    return [op for op in m.main.body.block.ops if isinstance(op, cls)]


@pytest.mark.parametrize("seed", range(3))
def test_head_prune_keeps_the_heads_with_most_accumulated_magnitude(seed: int) -> None:
    dense = vit()
    dvals: dict = {}
    reference.run(dense, x(seed), dtype=np.float64, values=dvals)
    outs = [dvals[a.result] for a in ops_of(dense, nn.AttentionOp)]
    # SpAtten: s[h] = Σ_layers<start Σ_i |O[i, h]|; start = ceil(0.3 · 3) = 1
    s = [sum(np.abs(o[:, 8 * h : 8 * h + 8]).sum() for o in outs[:1]) for h in range(4)]
    want = sorted(sorted(range(4), key=lambda h: (-s[h], h))[:2])
    m = vit()
    run_pipeline(m, "head-prune{keep=2}", quiet=True)
    vals: dict = {}
    reference.run(m, x(seed), dtype=np.float64, values=vals)
    assert vals[ops_of(m, tokens.SelectOp)[0].results[0]].tolist() == want
    for op in ops_of(m, tokens.HeadAttentionOp):
        full = reference.attention(*(vals[v] for v in op.operands[:3]), 4, 8**-0.5, False)
        got = vals[op.results[0]]
        for h in range(4):
            cols = slice(8 * h, 8 * h + 8)
            if h in want:
                np.testing.assert_allclose(got[:, cols], full[:, cols], rtol=1e-12)
            else:
                assert not got[:, cols].any()
    assert len(ops_of(m, tokens.HeadAttentionOp)) == 2 and len(ops_of(m, nn.AttentionOp)) == 1


def test_head_prune_keep_all_is_a_no_op() -> None:
    m = vit()
    run_pipeline(m, "head-prune{keep=4}", quiet=True)
    assert not ops_of(m, tokens.HeadAttentionOp)


def test_eager_predict_with_every_key_is_dense_attention() -> None:
    dense, m = vit(), vit()
    run_pipeline(m, "eager-predict{topk=17 margin=1000.0}", quiet=True)
    assert len(ops_of(m, tokens.MaskedAttentionOp)) == 3
    np.testing.assert_allclose(
        reference.run(m, x())["out0"], reference.run(dense, x())["out0"], rtol=1e-6, atol=1e-7
    )


def test_eager_predict_mask_uses_the_layer_input() -> None:
    m = vit()
    run_pipeline(m, "eager-predict{topk=4 start=1}", quiet=True)
    vals: dict = {}
    reference.run(m, x(), values=vals)
    (pred0, pred1) = ops_of(m, tokens.PredictOp)
    mask = vals[pred0.results[0]]
    assert mask.shape == (4, 17, 17)
    per_row = mask.sum(-1)
    assert set(np.unique(per_row)) <= {1.0, 4.0}  # top-4, or one-hot rows


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "head-prune{keep=5}",
            "pass 'head-prune': keep=5: the attention layers have 4 heads (1..4)",
        ),
        ("head-prune{keep=2 start=0}", "pass 'head-prune': start=0: head importance accumulates"),
        (
            "eager-predict{topk=18}",
            "pass 'eager-predict': topk=18: layer 0 (blocks.0) has 17 tokens",
        ),
        (
            "eager-predict{start=3}",
            "pass 'eager-predict': start=3: the model has 3 attention layers",
        ),
    ],
)
def test_bad_options(spec: str, message: str) -> None:
    with pytest.raises(WispError) as info:
        run_pipeline(vit(), spec, quiet=True)
    assert message in str(info.value) and "\n" not in str(info.value)
