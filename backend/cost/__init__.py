"""The one cost model: cycles, bytes, MACs and energy of each instruction for a config.

The interpreter's timing, the scheduler's estimates and the passes all call this package; none
keeps a copy of a formula. Formulas live in `backend.cost.formulas`; per-class accounting in
`backend.cost.model`.
"""

from backend.cost.formulas import (
    best_dataflow,
    dataflow_dims,
    dma_bytes,
    dma_cycles,
    dma_transfer_cycles,
    fold_cycles,
    fold_sequence_cycles,
    matmul_cycles,
    matmul_folds,
    matmul_kterm,
    matmul_rate,
    quickselect_expectation,
    select_cycles,
    topk_compares,
    topk_cycles,
    topk_passes,
    vector_cycles,
    vector_passes,
)
from backend.cost.model import PRECISIONS, InstrCost, cost, skipped_cost, with_best_dataflow

__all__ = [
    "PRECISIONS",
    "InstrCost",
    "best_dataflow",
    "cost",
    "dataflow_dims",
    "dma_bytes",
    "dma_cycles",
    "dma_transfer_cycles",
    "fold_cycles",
    "fold_sequence_cycles",
    "matmul_cycles",
    "matmul_folds",
    "matmul_kterm",
    "matmul_rate",
    "quickselect_expectation",
    "select_cycles",
    "skipped_cost",
    "topk_compares",
    "topk_cycles",
    "topk_passes",
    "vector_cycles",
    "vector_passes",
    "with_best_dataflow",
]
