"""End to end: reduced zoo models compiled for every shipped config, interpreter vs reference."""

from __future__ import annotations

import numpy as np
import pytest
from compile_util import CONFIGS, check, random_inputs, small_zoo

from compiler.models.builder import trace
from compiler.models.vit import ViT, ViTConfig

FAMILIES = {
    "deit-tiny": {"layers": 2, "dim": 64, "heads": 2, "mlp_dim": 128, "image": 32, "patch": 8},
    "bert-tiny": {"layers": 2, "dim": 64, "heads": 2, "mlp_dim": 128, "seq": 32, "vocab": 100},
    "gpt2": {"layers": 2, "dim": 64, "heads": 2, "mlp_dim": 128, "seq": 32, "vocab": 100},
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_zoo_family(name: str, config: str) -> None:
    check(small_zoo(name, **FAMILIES[name]), config)


@pytest.mark.parametrize("config", CONFIGS)
def test_wider_models(config: str) -> None:
    """dim 128, 4 heads: several tiles per GEMM on the small configs."""
    kw = {"layers": 1, "dim": 128, "heads": 4, "mlp_dim": 256, "seq": 32, "vocab": 100}
    check(small_zoo("gpt2", **kw), config)


def test_digits_vit_shape() -> None:
    """The digits-vit architecture (16², patch 2, 64 wide, 4 layers, 4 heads, 65 tokens)."""
    cfg = ViTConfig(
        image=16, channels=1, patch=2, dim=64, layers=4, heads=4, mlp_dim=128, classes=10
    )
    m = trace(ViT(cfg), {"image": ((1, 16, 16), np.float32)}, seed=0, name="digits-vit")
    check(m, "spatten", random_inputs(m))


@pytest.mark.parametrize("config", CONFIGS)
def test_odd_sizes(config: str) -> None:
    """Dims that are not multiples of the array or of 16 (as structured pruning leaves them)."""
    g = small_zoo("gpt2", layers=2, dim=40, heads=5, mlp_dim=72, seq=13, vocab=37)
    check(g, config, random_inputs(g, vocab=37))
    v = small_zoo("deit-tiny", layers=1, dim=24, heads=3, mlp_dim=40, image=20, patch=4, classes=7)
    check(v, config)
    b = small_zoo("bert-tiny", layers=1, dim=36, heads=4, mlp_dim=52, seq=11, vocab=29, classes=3)
    check(b, config, random_inputs(b, vocab=29))
