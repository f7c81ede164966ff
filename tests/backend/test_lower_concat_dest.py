"""Concat destination forwarding: ViT's [CLS; patches] concat gets the patch embedding written
straight into its block (no second copy of the patches), with the same outputs."""

from __future__ import annotations

import pytest
from compile_util import CONFIGS, check, small_zoo


@pytest.mark.parametrize("config", CONFIGS)
def test_patch_embed_writes_into_the_concat(config: str) -> None:
    m = small_zoo("deit-tiny", layers=1, dim=64, heads=2, mlp_dim=128, image=32, patch=8)
    c, _ = check(m, config)  # outputs vs the reference executor
    concat = [i for i in c.program.instrs if "nn.concat" in (i.comment or "")]
    moved = [int(i.args["rows"]) for i in concat if i.cls.name in ("LOAD", "STORE")]
    assert moved and set(moved) == {1}, moved  # only the CLS row is copied
