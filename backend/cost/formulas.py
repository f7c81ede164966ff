"""Cycle formulas, one function each (sources in docs/hardware.md).

Callers: `backend.cost.model.cost` (per instruction), the scheduler and the passes. Every result
is an integer number of cycles (or bytes) and at least 1 cycle for any issued instruction.
"""

from __future__ import annotations

import math

from backend.config import Config

MATMUL_MODES = ("fp16", "int8", "int4w", "sp24", "sp24h")
SPARSE_MODES = ("sp24", "sp24h")  # B is 2:4-compressed along K: half the K-term

# Vector-unit passes per element, by operation (each pass = one lane-op per element).
VEC_PASSES: dict[str, int] = {
    "add": 1,
    "sub": 1,
    "mul": 1,
    "max": 1,
    "min": 1,
    "relu": 1,
    "copy": 1,
    "div": 4,
    "exp": 4,
    "tanh": 4,
    "gelu_tanh": 6,
    "gelu": 8,
    # other vector classes
    "requant": 2,
    "softmax": 6,  # max, subtract+exp (4), sum, scale by 1/sum -> 1 + 4 + 1 (sum+div folded)
    "layernorm": 5,  # mean, variance, normalise, gamma, beta
    "rowmax": 1,
    "rowsum": 1,
    "move": 1,
    "vgather": 1,
}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def matmul_rate(mode: str, config: Config, masked: bool = False) -> float:
    """Reduction elements per PE per cycle for a MATMUL mode (masked rows: the int4 rate)."""
    mx = config.matrix
    if masked or mode == "int4w":
        return mx.int4_rate
    if mode in ("fp16", "sp24h"):
        return mx.fp16_rate
    if mode in ("int8", "sp24"):
        return mx.int8_rate
    raise ValueError(f"unknown matmul mode {mode!r}")


def matmul_kterm(k: int, mode: str, config: Config, masked: bool = False) -> int:
    """Cycles one fold spends streaming the reduction: ⌈K' / rate⌉, K' = ⌈K/2⌉ for sp24/sp24h."""
    k_eff = _cdiv(k, 2) if mode in SPARSE_MODES else k
    return math.ceil(k_eff / matmul_rate(mode, config, masked))


def fold_cycles(rows: int, cols: int, kterm: int) -> int:
    """SCALE-Sim output-stationary fold on an R×C array: R + C + T − 2 cycles."""
    return rows + cols + kterm - 2


def matmul_folds(m: int, n: int, config: Config) -> int:
    """Output tiles of R×C: ⌈M/R⌉·⌈N/C⌉."""
    return _cdiv(m, config.matrix.rows) * _cdiv(n, config.matrix.cols)


def matmul_cycles(m: int, n: int, k: int, mode: str, config: Config, masked_rows: int = 0) -> int:
    """Cycles of ``C[m,n] (+)= A[m,k]·B[k,n]``: folds spread over the arrays, each R+C+T−2.

    ``masked_rows`` rows (FACT's low-precision rows) form their own folds at the int4 rate.
    """
    mx = config.matrix
    total = 0
    for rows, masked in ((m - masked_rows, False), (masked_rows, True)):
        if rows <= 0 or n <= 0:
            continue
        waves = _cdiv(matmul_folds(rows, n, config), mx.arrays)
        total += waves * fold_cycles(mx.rows, mx.cols, matmul_kterm(k, mode, config, masked))
    return max(1, total)


def dma_bytes(rows: int, row_bytes: int, stride: int, config: Config) -> int:
    """DRAM bytes moved: each row rounded up to whole transactions (contiguous rows coalesce)."""
    burst = config.dram.burst_bytes
    if rows <= 0 or row_bytes <= 0:
        return 0
    if stride == row_bytes:
        return _cdiv(rows * row_bytes, burst) * burst
    return rows * _cdiv(row_bytes, burst) * burst


def dma_transfer_cycles(dram_bytes: int, config: Config) -> int:
    """Cycles the shared DRAM channel is occupied: ⌈bytes / bytes-per-cycle⌉."""
    return math.ceil(dram_bytes / config.dram.bytes_per_cycle)


def dma_cycles(dram_bytes: int, config: Config) -> int:
    """DMA instruction duration: fixed latency + transfer."""
    return max(1, config.dram.latency_cycles + dma_transfer_cycles(dram_bytes, config))


def vector_passes(op: str) -> int:
    """Passes per element for a vector operation name (see VEC_PASSES)."""
    return VEC_PASSES[op]


def vector_cycles(elements: int, passes: int, config: Config) -> int:
    """⌈elements / lanes⌉ cycles per pass."""
    return max(1, passes * _cdiv(elements, config.vector_lanes))


def topk_passes(n: int, k: int) -> int:
    """Quick-select passes to keep k of n: ⌈log2(n/k)⌉ + 1 (1 when nothing is dropped)."""
    if k <= 0 or k >= n:
        return 1
    return math.ceil(math.log2(n / k)) + 1


def topk_cycles(rows: int, n: int, k: int, config: Config) -> int:
    """SpAtten top-k engine: per row, passes × (⌈n / comparators⌉ + 3)."""
    per_pass = _cdiv(n, config.select.comparators) + 3
    return max(1, rows * topk_passes(n, k) * per_pass)


def select_cycles(ops: int, lanes: int) -> int:
    """Select-unit reductions / predictions: ⌈ops / lanes⌉."""
    return max(1, _cdiv(ops, lanes))
