"""Cycle formulas, one function each (sources in docs/hardware.md).

Callers: `backend.cost.model.cost` (per instruction), the scheduler and the passes. Every result
is an integer number of cycles (or bytes) and at least 1 cycle for any issued instruction.
"""

from __future__ import annotations

import math
from functools import lru_cache

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
    """The reduction length in PE steps: ⌈K′ / rate⌉, K′ = ⌈K/2⌉ for sp24/sp24h (the K-term of an
    output-stationary fold; the rows of the array that K occupies in ws and is)."""
    k_eff = _cdiv(k, 2) if mode in SPARSE_MODES else k
    return math.ceil(k_eff / matmul_rate(mode, config, masked))


def dataflow_dims(m: int, n: int, kterm: int, flow: str) -> tuple[int, int, int]:
    """SCALE-Sim's mapping (Sr, Sc, T) of ``C[m,n] = A[m,k]·B[k,n]`` onto the array: Sr over its
    rows, Sc over its columns, T streamed in time. os: (M, N, K); ws: (K, N, M); is: (K, M, N)."""
    if flow == "os":
        return m, n, kterm
    if flow == "ws":
        return kterm, n, m
    if flow == "is":
        return kterm, m, n
    raise ValueError(f"unknown dataflow {flow!r}")


def fold_cycles(rows: int, cols: int, t: int, flow: str = "os") -> int:
    """One SCALE-Sim fold on an R×C array: R + C + T − 2 (os); 2R + C + T − 2 (ws, is: R more
    cycles to preload the stationary operand)."""
    return (rows if flow == "os" else 2 * rows) + cols + t - 2


def fold_sequence_cycles(waves: int, t: int, flow: str, config: Config) -> int:
    """``waves`` folds in a row on one array. Without double buffering (and always for os) each
    fold pays `fold_cycles`. With double-buffered stationary registers (ws, is) the next fold's
    preload (R cycles) runs while the current fold streams, and the next fold starts streaming
    max(T, R) cycles after the current one: R + (waves − 1)·max(T, R) + (R + C + T − 2)."""
    mx = config.matrix
    if waves <= 0:
        return 0
    if flow == "os" or not mx.double_buffered:
        return waves * fold_cycles(mx.rows, mx.cols, t, flow)
    return mx.rows + (waves - 1) * max(t, mx.rows) + fold_cycles(mx.rows, mx.cols, t, "os")


def matmul_folds(sr: int, sc: int, config: Config) -> int:
    """Folds of an Sr×Sc mapping on R×C: ⌈Sr/R⌉·⌈Sc/C⌉ (os: output tiles ⌈M/R⌉·⌈N/C⌉)."""
    return _cdiv(sr, config.matrix.rows) * _cdiv(sc, config.matrix.cols)


def matmul_cycles(
    m: int,
    n: int,
    k: int,
    mode: str,
    config: Config,
    masked_rows: int = 0,
    flow: str = "os",
) -> int:
    """Cycles of ``C[m,n] (+)= A[m,k]·B[k,n]`` in dataflow ``flow``: folds spread over the arrays
    (`fold_sequence_cycles`). The GEMM planners tile on the os figure (the default), so tilings,
    and with them the fp32 summation order of every output, do not depend on the dataflows a
    config offers; each MATMUL then runs in its `best_dataflow`.

    ``masked_rows`` rows (FACT's low-precision rows) form their own folds at the int4 rate.
    """
    mx = config.matrix
    total = 0
    for rows, masked in ((m - masked_rows, False), (masked_rows, True)):
        if rows <= 0 or n <= 0:
            continue
        sr, sc, t = dataflow_dims(rows, n, matmul_kterm(k, mode, config, masked), flow)
        waves = _cdiv(matmul_folds(sr, sc, config), mx.arrays)
        total += fold_sequence_cycles(waves, t, flow, config)
    return max(1, total)


def best_dataflow(m: int, n: int, k: int, mode: str, config: Config, masked_rows: int = 0) -> str:
    """The supported dataflow (``matrix.dataflows``) with the fewest `matmul_cycles`; ties go to
    the earlier of os, ws, is."""
    flows = config.matrix.dataflows
    if len(flows) == 1:
        return flows[0]
    return min(flows, key=lambda f: matmul_cycles(m, n, k, mode, config, masked_rows, f))


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


@lru_cache(maxsize=4096)
def quickselect_expectation(n: int, k: int, comparators: int) -> tuple[float, float, float]:
    """(passes, elements scanned, cycles) expected of SpAtten's top-k engine keeping k of n.

    The engine (SpAtten, HPCA 2021; ``TopKLatencyModel.scala`` in mit-han-lab/spatten) runs a
    randomized quick-select for the k-th largest score: each pass streams the remaining
    candidates through ``comparators`` comparators, ⌈len/comparators⌉ + 3 cycles, and keeps the
    side holding the target rank, until the pivot is it. With distinct scores and uniform pivots,
    the rank interval [i, j] (L = j − i + 1 elements, containing the target) is the subsequence of
    some pass with probability 1 (the whole row), 1/(L+1) (touching one end: the one outside
    neighbour is picked before any element inside) or 2/((L+1)(L+2)) (both neighbours first), so
    the expectations are exact sums over L. k ≥ n: one pass (nothing is dropped).
    """
    if k <= 0 or k >= n:
        return 1.0, float(n), float(_cdiv(n, comparators) + 3)
    t = n - k  # ascending rank of the k-th largest
    passes: list[float] = []
    scanned: list[float] = []
    cycles: list[float] = []
    for length in range(1, n + 1):
        if length == n:
            p = 1.0
        else:
            lo, hi = max(0, t - length + 1), min(t, n - length)
            if hi < lo:
                continue
            ends = (lo == 0) + (hi == n - length)
            inner = hi - lo + 1 - ends
            p = inner * 2 / ((length + 1) * (length + 2)) + ends / (length + 1)
        passes.append(p)
        scanned.append(p * length)
        cycles.append(p * (_cdiv(length, comparators) + 3))
    return math.fsum(passes), math.fsum(scanned), math.fsum(cycles)


def topk_passes(n: int, k: int, comparators: int = 16) -> float:
    """Expected quick-select passes to keep k of n (`quickselect_expectation`; 1 when k ≥ n)."""
    return quickselect_expectation(n, k, comparators)[0]


def topk_cycles(rows: int, n: int, k: int, config: Config) -> int:
    """SpAtten top-k engine: ⌈rows × expected cycles per row⌉ (`quickselect_expectation`)."""
    per_row = quickselect_expectation(n, k, config.select.comparators)[2]
    return max(1, math.ceil(rows * per_row - 1e-9))


def topk_compares(rows: int, n: int, k: int, config: Config) -> int:
    """Select-unit compares of a TOPK: rows × expected elements scanned, rounded."""
    return round(rows * quickselect_expectation(n, k, config.select.comparators)[1])


def select_cycles(ops: int, lanes: int) -> int:
    """Select-unit reductions / predictions: ⌈ops / lanes⌉."""
    return max(1, _cdiv(ops, lanes))
