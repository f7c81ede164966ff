"""The one cost model: cycles, bytes, MACs and energy of each instruction for a config.

The interpreter's timing, the scheduler's estimates and the passes all call this package; none
keeps a copy of a formula. Formulas live in `backend.cost.formulas`; per-class accounting in
`backend.cost.model`.
"""

from backend.cost.formulas import (
    dma_bytes,
    dma_cycles,
    dma_transfer_cycles,
    fold_cycles,
    matmul_cycles,
    matmul_folds,
    matmul_kterm,
    matmul_rate,
    select_cycles,
    topk_cycles,
    topk_passes,
    vector_cycles,
    vector_passes,
)
from backend.cost.model import PRECISIONS, InstrCost, cost, skipped_cost

__all__ = [
    "PRECISIONS",
    "InstrCost",
    "cost",
    "dma_bytes",
    "dma_cycles",
    "dma_transfer_cycles",
    "fold_cycles",
    "matmul_cycles",
    "matmul_folds",
    "matmul_kterm",
    "matmul_rate",
    "select_cycles",
    "skipped_cost",
    "topk_cycles",
    "topk_passes",
    "vector_cycles",
    "vector_passes",
]
