"""Reference semantics of quant.progressive_attention (dialects/quant_attention.py); the arithmetic
is passes/progressive_math.py, which the progressive-quant pass also uses for its report."""

from __future__ import annotations

from typing import Any

import numpy as np

from dialects.quant_attention import ProgressiveAttentionOp
from passes.progressive_math import progressive_attention


def _impl(op: ProgressiveAttentionOp, a: list[np.ndarray], ctx: Any) -> np.ndarray:
    return progressive_attention(
        a[0], a[1], a[2], a[3], a[4],
        op.int_prop("heads"), op.float_prop("scale"), op.bool_prop("causal"),
        op.float_prop("threshold"), op.int_prop("block"),
    )[0]  # fmt: skip


IMPLS: dict[type, Any] = {ProgressiveAttentionOp: _impl}
