"""token-prune on quantized IR (quantize{weights=int8}): the output projection is
quant.quantize → quant.linear → quant.dequantize; the kept tokens are the top-k of the CLS
attention computed in numpy from the layer's q and k."""

from __future__ import annotations

import numpy as np
import pytest

from backend.isa import DType
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


def _probs(q: np.ndarray, k: np.ndarray, sq: float, sk: float, heads: int) -> np.ndarray:
    """Independent float64 statement of quant.attention's P from the int8 q, k and the scales."""
    d = q.shape[1] // heads
    qh = q.astype(np.float64).reshape(q.shape[0], heads, d).transpose(1, 0, 2)
    kh = k.astype(np.float64).reshape(k.shape[0], heads, d).transpose(1, 0, 2)
    x = qh @ kh.transpose(0, 2, 1) * (float(sq) * float(sk) * d**-0.5)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


INT8 = "quantize{weights=int8 attn=int8 stream=int8 samples=4}"


@pytest.mark.parametrize("method", ["topk", "spatten", "tps", "evit"])
@pytest.mark.parametrize("first", ["quantize", "token-prune"])
def test_token_prune_with_int8_attention_and_stream(method: str, first: str) -> None:
    """Both orders of quantize{attn=int8 stream=int8} and token-prune give int8 attention scored by
    tokens.quant_importance; the kept tokens are the top-k of the score computed in float64 numpy
    from the layer's int8 q, k and scales (spatten: received attention plus the carried prior)."""
    m = build("deit-tiny", seed=5, **VIT)
    prune = f"token-prune{{method={method} keep=0.5 start=1}}"
    run_pipeline(m, f"{INT8},{prune}" if first == "quantize" else f"{prune},{INT8}", quiet=True)
    ops = list(m.main.body.block.ops)
    assert not any(isinstance(o, nn.AttentionOp | tokens.ImportanceOp) for o in ops)
    atts = [o for o in ops if isinstance(o, quant.AttentionOp)]
    imps = [o for o in ops if isinstance(o, tokens.QuantImportanceOp)]
    sels = [o for o in ops if isinstance(o, tokens.SelectOp)]
    assert len(atts) == 3 and len(sels) == 2 and imps
    x = {"image": np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)}
    vals: dict = {}
    out = reference.run(m, x, values=vals)["out0"]
    assert out.shape == (1, 5) and np.isfinite(out).all()
    w = m.weights
    for imp in imps:
        att = next(a for a in atts if (a.query, a.key) == (imp.query, imp.key))
        sq, sk = (
            float(np.asarray(w[s.owner.symbol]).reshape(-1)[0]) for s in (att.q_scale, att.k_scale)
        )
        p = _probs(vals[att.query], vals[att.key], sq, sk, 4)
        want = p.sum(axis=(0, 1)) if method == "spatten" else p[:, 0, :].mean(0)
        if imp.prior is not None:
            want = want + vals[imp.prior]
        np.testing.assert_allclose(vals[imp.results[0]], want, rtol=2e-5, atol=1e-6)
        sel = next((s for s in sels if s.operands[0] == imp.results[0]), None)
        if sel is not None:
            score = want.copy()
            score[0] = np.inf  # the CLS token is protected
            kept = sorted(np.argsort(-score, kind="stable")[: sel.int_prop("k")].tolist())
            assert vals[sel.results[0]].tolist() == kept


@pytest.mark.parametrize("method", ["topk", "spatten"])
def test_int8_token_prune_on_interpreter(method: str) -> None:
    """Compiled: the importance runs fused into quant.attention (no standalone Q·Kᵀ), the stream's
    dropped rows are gathered in int8, and the interpreter's output is within the fp16 tolerance
    of the reference."""
    from compiler.api import compile_model

    m = build("deit-tiny", seed=5, **VIT)
    prog = compile_model(
        m, pipeline=f"{INT8},token-prune{{method={method} keep=0.5 start=1}}", target="spatten"
    )
    instrs = prog.compiled.program.instrs
    assert any(i.cls.name == "IMPACC" for i in instrs)
    assert not any(
        "tokens.quant_importance" in (i.comment or "") and i.cls.name == "MATMUL" for i in instrs
    )
    assert any(i.cls.name == "GATHER" and i["dtype"] == DType.INT8 for i in instrs)
    # the gathered int8 rows are dequantized by their readers in SRAM (layer-norm prologue,
    # residual add), not by a standalone dequantize to fp16 (only the final CLS row is)
    deq = [i for i in instrs if "quant.dequantize" in (i.comment or "") and "rows" in i.args]
    assert all(i["rows"] == 1 for i in deq), [repr(i) for i in deq if i["rows"] != 1][:2]
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = {"image": rng.standard_normal((3, 8, 8)).astype(np.float32)}
        got = prog.run(x).outputs["out0"].astype(np.float32)
        want = prog.reference(x)["out0"]
        assert float(np.max(np.abs(got - want))) <= 5e-2 * max(1.0, float(np.max(np.abs(want))))


def test_digits_vit_int8_stream_token_prune_agrees() -> None:
    """digits-vit W8A8, int8 attention and stream, topk pruning from layer 1: the interpreter's
    predictions equal the reference's on 40 test images and the accuracy stays near dense (the
    reference's, independent of the interpreter)."""
    from compiler.api import compile_model
    from compiler.datasets import load_digits_test

    images, labels = load_digits_test()
    images, labels = images[:40], labels[:40]
    prog = compile_model(
        "digits-vit",
        pipeline="quantize{attn=int8 stream=int8},token-prune{method=topk keep=0.5 start=1}",
        target="spatten",
    )
    npu = [int(np.argmax(prog.run({"image": x}).outputs["out0"])) for x in images]
    ref = [int(np.argmax(prog.reference({"image": x})["out0"])) for x in images]
    assert sum(a == b for a, b in zip(npu, ref, strict=True)) >= 39
    assert np.mean(np.array(ref) == labels) >= 0.95


def test_head_prune_after_int8_attention_says_why() -> None:
    """head-prune still needs nn.attention: after quantize{attn=int8} the refusal names the option."""
    m = build("deit-tiny", seed=5, **VIT)
    with pytest.raises(WispError, match=r"does not take int8 attention.*attn=int8"):
        run_pipeline(m, "quantize{weights=int8 attn=int8 samples=4},head-prune{keep=2}", quiet=True)
