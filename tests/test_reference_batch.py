"""The batched reference executor (compiler/reference_batch.py, the search's accuracy) against the
oracle it stands in for: reference.run one input at a time, bit for bit, over pipelines that
exercise every path (batched as-is, batched attention, per-input fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.errors import WispError
from compiler.models import build
from compiler.pipeline import run_pipeline
from compiler.reference_batch import run_batch_fast

VIT = {"layers": 3, "image": 8, "patch": 2, "dim": 32, "heads": 4, "mlp_dim": 64, "classes": 5}
PIPELINES = (
    "",
    "quantize{attn=int8 stream=int8 samples=4},token-prune{method=topk keep=0.5 start=1}",
    "quantize{weights=int4 granularity=group:16 samples=4},token-prune{method=tps keep=0.5 start=1}",
    "token-prune{method=spatten keep=0.5 start=1},head-prune{keep=2 start=1}",
    "token-prune{method=evit keep=0.6 start=1}",
    "sparsify-2-4,quantize{samples=4}",
)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_batch_equals_one_at_a_time(pipeline: str) -> None:
    m = build("deit-tiny", seed=5, **VIT)
    if pipeline:
        run_pipeline(m, pipeline, quiet=True)
    x = np.random.default_rng(3).standard_normal((7, 3, 8, 8)).astype(np.float32)
    want = np.stack([reference.run(m, {"image": xi})["out0"] for xi in x])
    got = run_batch_fast(m, {"image": x})["out0"]
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want)


def test_bad_batch_shape_is_one_error() -> None:
    m = build("deit-tiny", seed=5, **VIT)
    with pytest.raises(
        WispError, match=r"input 'image' has shape \[2, 3, 4, 4\], expected \[2, 3, 8, 8\]"
    ):
        run_batch_fast(m, {"image": np.zeros((2, 3, 4, 4), np.float32)})
