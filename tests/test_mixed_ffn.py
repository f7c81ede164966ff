"""mixed-ffn (FACT mixed-precision FFN) at the model level: which linears it rewrites, the
identity at int8=1.0, the interpreter against the reference, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.api import compile_model
from compiler.errors import WispError
from compiler.models import build
from compiler.pipeline import run_pipeline
from dialects import quant, tokens

VIT = {"layers": 2, "image": 8, "patch": 2, "dim": 32, "heads": 4, "mlp_dim": 64, "classes": 5}
BASE = "eager-predict{topk=4 samples=2},quantize{weights=int8 samples=2}"


def vit():
    return build("deit-tiny", seed=5, **VIT)


def x(seed: int = 0) -> dict[str, np.ndarray]:
    return {"image": np.random.default_rng(seed).standard_normal((3, 8, 8)).astype(np.float32)}


def ops_of(m, cls):
    return [op for op in m.main.body.block.ops if isinstance(op, cls)]


def test_mixed_ffn_rewrites_the_ffn_linears_and_runs_on_the_npu() -> None:
    m = vit()
    recs = run_pipeline(m, BASE + ",mixed-ffn{int8=0.25}", quiet=True)
    mixed = ops_of(m, tokens.MixedLinearOp)
    names = sorted(o.weight.owner.symbol for o in mixed)  # type: ignore[union-attr]
    assert names == [f"blocks.{i}.mlp.{f}.weight.q" for i in range(2) for f in ("fc1", "fc2")]
    assert len(ops_of(m, tokens.RowPrecisionOp)) == 2
    rep = next(r.report for r in recs if r.name == "mixed-ffn")["mixed_per_layer"]
    n = 17  # 16 patches + CLS
    assert [(r["int8_rows"], r["int4_rows"]) for r in rep] == [(4, n - 4)] * 2  # round(0.25·17)
    vals: dict = {}
    ref = reference.run(m, x(), values=vals)
    for op in ops_of(m, tokens.RowPrecisionOp):
        low = vals[op.results[0]]
        assert low[0] == 0 and int(low.sum()) == n - 4  # CLS protected
    got = compile_model(m, target="fact").run(x())
    assert got.report.macs_useful["int4"] > 0
    y = got.outputs["out0"].astype(np.float32)
    assert int(np.argmax(y)) == int(np.argmax(ref["out0"]))
    assert np.abs(y - ref["out0"]).max() <= 5e-2 * max(1.0, float(np.abs(ref["out0"]).max()))


def test_int8_one_is_the_identity() -> None:
    a, b = vit(), vit()
    run_pipeline(a, BASE, quiet=True)
    run_pipeline(b, BASE + ",mixed-ffn{int8=1.0}", quiet=True)
    assert str(a.module) == str(b.module)
    assert not ops_of(b, tokens.MixedLinearOp)


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ("mixed-ffn", "no tokens.predict"),
        ("eager-predict{topk=4 samples=2},mixed-ffn", "float linear .*run quantize first"),
        (BASE + ",mixed-ffn{int8=1.5}", "int8=1.5"),
        (BASE + ",mixed-ffn{protect=40}", "no token 40"),
        (
            "eager-predict{topk=4 samples=2},quantize{weights=int4 samples=2},mixed-ffn",
            "needs int8 weights",
        ),
    ],
)
def test_mixed_ffn_errors_name_the_pass(spec: str, msg: str) -> None:
    with pytest.raises(WispError, match=f"mixed-ffn.*{msg}"):
        run_pipeline(vit(), spec, quiet=True)


def test_quant_linears_outside_the_ffn_stay() -> None:
    m = vit()
    run_pipeline(m, BASE + ",mixed-ffn", quiet=True)
    kept = sorted(o.weight.owner.symbol for o in ops_of(m, quant.LinearOp))  # type: ignore[union-attr]
    assert "blocks.0.attn.proj.weight.q" in kept and not any("mlp" in s for s in kept)
