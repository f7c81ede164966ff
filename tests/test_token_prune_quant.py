"""token-prune on quantized IR (quantize{weights=int8}): the output projection is
quant.quantize → quant.linear → quant.dequantize; the kept tokens are the top-k of the CLS
attention computed in numpy from the layer's q and k."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.errors import WispError
from compiler.models import build
from compiler.pipeline import run_pipeline
from dialects import nn, quant, tokens

VIT = {"layers": 3, "image": 8, "patch": 2, "dim": 32, "heads": 4, "mlp_dim": 64, "classes": 5}


def test_token_prune_accepts_quantized_projection() -> None:
    m = build("deit-tiny", seed=5, **VIT)
    run_pipeline(m, "quantize{weights=int8},token-prune{method=topk keep=0.5 start=1}", quiet=True)
    ops = list(m.main.body.block.ops)
    assert any(isinstance(op, quant.LinearOp) for op in ops)
    (att, *_), sels = (
        [o for o in ops if isinstance(o, nn.AttentionOp)][1:],
        [o for o in ops if isinstance(o, tokens.SelectOp)],
    )
    assert len(sels) == 2
    x = {"image": np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)}
    vals: dict = {}
    out = reference.run(m, x, values=vals)["out0"]
    assert out.shape == (1, 5) and np.isfinite(out).all()
    q, k = (vals[v].astype(np.float64) for v in (att.query, att.key))
    qh, kh = q.reshape(-1, 4, 8)[0], k.reshape(-1, 4, 8).transpose(1, 0, 2)
    s = np.einsum("hd,hjd->hj", qh, kh) * 8**-0.5
    p = np.exp(s - s.max(1, keepdims=True))
    cls = (p / p.sum(1, keepdims=True)).mean(0)
    cls[0] = np.inf  # CLS protected
    want = sorted(np.argsort(-cls, kind="stable")[: sels[0].int_prop("k")].tolist())
    assert vals[sels[0].results[0]].tolist() == want


def test_token_prune_after_int8_attention_says_why() -> None:
    """benchmarks/differential.py: quantize{attn=int8} then token-prune was refused with "the model
    has no nn.attention" (it has quant.attention); the refusal now names the option to drop."""
    m = build("deit-tiny", seed=5, **VIT)
    with pytest.raises(WispError, match=r"does not take int8 attention.*attn=int8"):
        run_pipeline(
            m, "quantize{weights=int8 attn=int8 samples=4},token-prune{keep=0.5}", quiet=True
        )
