"""Top-k selection as the TOPK instruction defines it, shared by the interpreter and the reference
executor (tokens.select), so both keep exactly the same positions.

The k largest scores of each row, returned in ascending index order; ties go to the lower index
(a stable sort of −score, then the first k indices sorted).
"""

from __future__ import annotations

import numpy as np


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices [rows, k] (int64) of the k largest entries of each row of ``scores`` [rows, n]."""
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    order.sort(axis=-1)
    return order
