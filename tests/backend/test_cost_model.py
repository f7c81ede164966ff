"""Cost model vs hand-computed figures (SCALE-Sim folds per dataflow, DMA bursts, SpAtten's
top-k engine, energy). Expected values are arithmetic written here from the sources' definitions,
not calls into the cost model."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from functools import cache

import pytest

from backend.config import MatrixConfig, load_config
from backend.cost import (
    best_dataflow,
    cost,
    dma_bytes,
    matmul_cycles,
    skipped_cost,
    topk_compares,
    topk_cycles,
    topk_passes,
    vector_cycles,
    with_best_dataflow,
)
from backend.isa import ISA, make

SP = load_config("spatten")  # 32×16 arrays ×2, int4 rate 2, HBM2 512 B/cycle, 32 B bursts
EDGE = load_config("edge")  # 16×16 ×1, fp16 rate 0.5, 16 B/cycle, 32 B bursts, latency 80


def _mm(mode: str, m: int, n: int, k: int, **kw):
    return make("MATMUL", mode=mode, a_buf="act", a_off=0, a_stride=k, b_buf="wgt", b_off=0,
                b_stride=n, c_buf="acc", c_off=0, c_stride=n, m=m, n=n, k=k, **kw)  # fmt: skip


def test_matmul_fold_formula_by_hand() -> None:  # output stationary (the default flow)
    # 64×64×64 int8: folds ⌈64/32⌉·⌈64/16⌉ = 8 over 2 arrays = 4 waves × (32+16+64−2 = 110)
    assert matmul_cycles(64, 64, 64, "int8", SP) == 440
    # sp24 halves the K-term: 4 × (32+16+32−2)
    assert matmul_cycles(64, 64, 64, "sp24", SP) == 312
    # int4 weights at rate 2: K-term 32 as well
    assert matmul_cycles(64, 64, 64, "int4w", SP) == 312
    # partial tiles still cost a full fold: 1×1×1 → 1 wave × (32+16+1−2)
    assert matmul_cycles(1, 1, 1, "int8", SP) == 47
    # edge fp16 at half rate: 16 folds × (16+16+128−2)
    assert matmul_cycles(64, 64, 64, "fp16", EDGE) == 16 * 158
    # 10 masked rows of 40 (int4 rate): 30 rows → ⌈1 fold·4 col tiles / 2⌉ = 2 waves × 110;
    # 10 rows → 2 waves × (32+16+32−2)
    assert matmul_cycles(40, 64, 64, "int8", SP, masked_rows=10) == 2 * 110 + 2 * 78


def test_matmul_cost_counts() -> None:
    c = cost(_mm("int8", 64, 64, 64), SP)
    assert c.cycles == 440
    assert c.macs_useful == {"int8": 64**3}
    assert c.macs_issued == {"int8": 8 * 32 * 16 * 64}
    # A read once per column tile (4), B once per row tile (2), C written once (int32)
    assert c.sram_read == 4 * 64 * 64 + 2 * 64 * 64
    assert c.sram_write == 4 * 64 * 64
    assert c.energy["mac"] == pytest.approx(64**3 * SP.energy.mac_int8)
    assert c.energy["sram"] == pytest.approx((c.sram_read + c.sram_write) * SP.energy.sram_byte)
    sp = cost(_mm("sp24", 64, 64, 64), SP)
    assert sp.macs_useful == {"int8": 64**3 // 2}
    masked = cost(_mm("int8", 40, 64, 64, mask=1), SP, masked_rows=10)
    assert masked.macs_useful == {"int8": 30 * 64 * 64, "int4": 10 * 64 * 64}


def test_dma_burst_rounding_by_hand() -> None:
    assert dma_bytes(3, 33, 100, SP) == 3 * 64  # each strided row → 2 bursts of 32
    assert dma_bytes(3, 33, 33, SP) == 128  # contiguous: 99 B → 4 bursts
    ld = make("LOAD", dtype="fp16", dst_buf="act", dst_off=0, dst_stride=20, src_addr=0,
              src_stride=4096, rows=100, cols=20)  # fmt: skip
    c = cost(ld, EDGE)  # 40 B rows → 64 B each → 6400 B at 16 B/cycle = 400 + latency 80
    assert (c.dram_read, c.sram_write, c.cycles, c.dram_transfer) == (6400, 4000, 480, 400)
    assert c.energy["dram"] == pytest.approx(6400 * EDGE.energy.dram_byte)


def _spatten_topk_dp(n: int, t: int, p: int) -> float:
    """Expected cycles of SpAtten's TopKLatencyModel (randomized quick-select for ascending rank
    t of n distinct values, ⌈len/p⌉ + 3 per pass) by the recursion over the pivot's rank."""

    @cache
    def e(size: int, target: int) -> float:
        if size == 0:
            return 0.0
        rest = sum(
            e(j, target) if j > target else e(size - 1 - j, target - j - 1)
            for j in range(size)
            if j != target
        )
        return -(-size // p) + 3 + rest / size

    return e(n, t)


def test_topk_expected_cycles_match_spatten_quickselect_by_recursion() -> None:
    # keep k of n = find the k-th largest (ascending rank n − k); per row ⌈E⌉ over all rows
    for n, k in ((10, 3), (40, 1), (64, 8), (64, 32), (65, 33), (17, 16)):
        want = _spatten_topk_dp(n, n - k, SP.select.comparators)
        assert topk_cycles(1, n, k, SP) == math.ceil(want - 1e-9), (n, k)
        assert topk_cycles(3, n, k, SP) == math.ceil(3 * want - 1e-9), (n, k)
    # nothing dropped: one streaming pass
    assert topk_cycles(2, 100, 100, SP) == 2 * (100 // 16 + 1 + 3)
    assert topk_passes(100, 100) == 1


def test_topk_by_hand_small() -> None:
    # n = 2, keep 1: one pass of ⌈2/16⌉ + 3 = 4 cycles finds the max with probability 1/2 (its
    # pivot is the max), else a second pass over the one element left: 4 + 4/2 = 6 expected.
    assert topk_cycles(1, 2, 1, SP) == 6
    assert topk_passes(2, 1) == 1.5
    # compares: 2 elements in the first pass, 1 more half the time: 2.5 per row
    assert topk_compares(4, 2, 1, SP) == 10


def test_topk_matches_spatten_monte_carlo() -> None:
    """The randomized engine simulated as SpAtten's TopKLatencyModel.scala does (random pivot,
    keep the side holding the target rank), averaged over runs: within 3% of the expectation."""
    rng = random.Random(7)
    for n, k in ((197, 98), (128, 64), (256, 16)):
        total, runs = 0, 400
        for _ in range(runs):
            seq, target, cycles = list(range(n)), n - k, 0
            while seq:
                cycles += -(-len(seq) // 16) + 3
                pivot = seq[rng.randrange(len(seq))]
                left = [x for x in seq if x < pivot]
                if len(left) == target:
                    break
                if len(left) < target:
                    target -= len(left) + 1
                    seq = [x for x in seq if x > pivot]
                else:
                    seq = left
            total += cycles
        assert topk_cycles(1, n, k, SP) == pytest.approx(total / runs, rel=0.03), (n, k)


def test_topk_instruction_cost() -> None:
    tk = make("TOPK", src_buf="idx", src_off=0, src_stride=64, rows=2, n=64, k=8,
              dst_buf="idx", dst_off=1024)  # fmt: skip
    assert cost(tk, SP).cycles == math.ceil(2 * _spatten_topk_dp(64, 56, 16) - 1e-9)


def test_vector_cycles_by_hand() -> None:
    assert vector_cycles(100, 4, SP) == 4 * 2  # exp: 4 passes × ⌈100/64⌉
    v = make("VEC", op="gelu", dtype="fp16", dst_buf="vec", dst_off=0, dst_stride=10,
             a_buf="vec", a_off=0, a_stride=10, rows=10, cols=10)  # fmt: skip
    c = cost(v, SP)
    assert (c.cycles, c.vector_ops, c.sram_read, c.sram_write) == (16, 800, 200, 200)


def test_every_class_has_a_cost_and_skip_is_one_cycle() -> None:
    from backend.cost.model import COST_HANDLERS

    assert set(COST_HANDLERS) == {c.name for c in ISA}
    s = skipped_cost()
    assert s.cycles == 1 and s.energy_total == 0 and s.dram_read == 0


def test_sp24h_fp16_2_4_halves_the_k_term() -> None:
    # fp16 2:4 on spatten: as sp24, 4 waves × (32+16+32−2); dense fp16 4 × (32+16+64−2)
    assert matmul_cycles(64, 64, 64, "sp24h", SP) == 312
    assert matmul_cycles(64, 64, 64, "fp16", SP) == 440
    # edge fp16 at half rate: K-term ⌈32/0.5⌉ = 64 → 16 folds × (16+16+64−2)
    assert matmul_cycles(64, 64, 64, "sp24h", EDGE) == 16 * 94
    c = cost(_mm("sp24h", 64, 64, 64), SP)
    assert c.macs_useful == {"fp16": 64**3 // 2}
    # A (fp16) once per column tile (4); B = fp16 values [32, 64] + 16·64 nibbles, per row tile (2)
    assert c.sram_read == 4 * 2 * 64 * 64 + 2 * (2 * 32 * 64 + 16 * 64 // 2)


# ---- dataflows: SCALE-Sim's mappings and fold counts (Samajdar et al., ISPASS 2020; scale-sim-v2
# systolic_compute_{os,ws,is}.py): os maps (Sr, Sc, T) = (M, N, K), ws (K, N, M), is (K, M, N);
# folds ⌈Sr/R⌉·⌈Sc/C⌉; a fold takes R + C + T − 2 cycles (os) or 2R + C + T − 2 (ws, is: the
# stationary operand is first shifted in over R cycles). Our arrays share the folds: ⌈folds/arrays⌉.

ONE = replace(SP, matrix=MatrixConfig(32, 16, 1, 1.0, 1.0, 2.0, ("os", "ws", "is"), False))
TWO_DB = replace(SP, matrix=MatrixConfig(32, 16, 2, 1.0, 1.0, 2.0, ("os", "ws", "is"), True))


@pytest.mark.parametrize(
    ("m", "n", "k", "os", "ws", "is_"),
    [
        # Q·Kᵀ of DeiT-Tiny, 197 tokens, head dim 64, on one 32×16 array:
        #   os: ⌈197/32⌉·⌈197/16⌉ = 7·13 = 91 folds × (32+16+64−2 = 110) = 10010
        #   ws: ⌈64/32⌉·⌈197/16⌉ = 2·13 = 26 folds × (64+16+197−2 = 275) = 7150
        #   is: ⌈64/32⌉·⌈197/16⌉ = 26 folds × (64+16+197−2 = 275) = 7150
        (197, 197, 64, 10010, 7150, 7150),
        # a projection 17×64·64×192: os ⌈17/32⌉·⌈192/16⌉ = 12 × (32+16+64−2 = 110) = 1320;
        # ws ⌈64/32⌉·12 = 24 × (64+16+17−2 = 95) = 2280; is ⌈64/32⌉·⌈17/16⌉ = 4 × (64+16+192−2)
        (17, 192, 64, 1320, 2280, 4 * 270),
        # 1×1×1: one fold each: 47, 79 (= 64+16+1−2), 79
        (1, 1, 1, 47, 79, 79),
        # K = 100 > R: ws folds ⌈100/32⌉·⌈40/16⌉ = 4·3 = 12 × (64+16+50−2 = 128);
        # is ⌈100/32⌉·⌈50/16⌉ = 4·4 = 16 × (64+16+40−2 = 118); os ⌈50/32⌉·3 = 6 × (32+16+100−2)
        (50, 40, 100, 6 * 146, 12 * 128, 16 * 118),
    ],
)
def test_dataflows_equal_scalesim_formulas(m, n, k, os, ws, is_) -> None:
    assert matmul_cycles(m, n, k, "fp16", ONE, flow="os") == os
    assert matmul_cycles(m, n, k, "fp16", ONE, flow="ws") == ws
    assert matmul_cycles(m, n, k, "fp16", ONE, flow="is") == is_
    assert best_dataflow(m, n, k, "fp16", ONE) == min(
        ("os", "ws", "is"), key=lambda f: {"os": os, "ws": ws, "is": is_}[f]
    )


def test_dataflow_rates_and_arrays() -> None:
    # int4 weights at rate 2 halve the rows K occupies: ws 64×64×128 → K-term 64 → ⌈64/32⌉·⌈64/16⌉
    # = 8 folds over 2 arrays = 4 waves × (64+16+64−2 = 142)
    two = replace(SP, matrix=replace(TWO_DB.matrix, double_buffered=False))
    assert matmul_cycles(64, 64, 128, "int4w", two, flow="ws") == 4 * 142
    # sp24 halves K as well: K′ = 64 → same mapping
    assert matmul_cycles(64, 64, 128, "sp24", two, flow="ws") == 4 * 142


def test_double_buffered_preload_overlaps_the_previous_fold() -> None:
    # Q·Kᵀ 197×197×64 on 2 double-buffered arrays, ws: 26 folds → 13 waves per array, T = 197.
    # The first preload (R = 32) is paid; each next fold starts max(T, R) = 197 cycles after the
    # previous one; the last one streams and drains in R + C + T − 2 = 243: 32 + 12·197 + 243.
    assert matmul_cycles(197, 197, 64, "fp16", TWO_DB, flow="ws") == 32 + 12 * 197 + 243
    # T < R: the preload (32 cycles) paces the folds. 4×64·64×64, is: Sr = 64, Sc = 4, T = 64…
    # ws with M = 4: folds ⌈64/32⌉·⌈64/16⌉ = 8 → 4 waves, T = 4: 32 + 3·32 + (32+16+4−2)
    assert matmul_cycles(4, 64, 64, "fp16", TWO_DB, flow="ws") == 32 + 3 * 32 + 50
    # os has nothing to preload: unchanged by double buffering (⌈4/32⌉·4 = 4 folds → 2 waves)
    assert matmul_cycles(4, 64, 64, "fp16", TWO_DB, flow="os") == 2 * (32 + 16 + 64 - 2)


def test_dataflow_sram_traffic() -> None:
    # 64×64·64×64 fp16 on one 32×16 array. ws: B (stationary) read once, A once per column fold
    # (⌈64/16⌉ = 4), C written per K fold (⌈64/32⌉ = 2) and read back once between them.
    mm = with_best_dataflow(_mm("fp16", 64, 64, 64), ONE)
    ws = replace(mm, args={**mm.args, "flow": 1})
    c = cost(ws, ONE)
    a_b, b_b, c_b = 2 * 64 * 64, 2 * 64 * 64, 4 * 64 * 64
    assert c.sram_read == 4 * a_b + b_b + 1 * c_b
    assert c.sram_write == 2 * c_b
    assert c.macs_useful == {"fp16": 64**3}
    # issued PE slots: folds · R · C · T = 8 · 32 · 16 · 64
    assert c.macs_issued == {"fp16": 8 * 32 * 16 * 64}
    isf = cost(replace(mm, args={**mm.args, "flow": 2}), ONE)
    # is: A stationary once, B once per column fold of M (⌈64/16⌉ = 4)
    assert isf.sram_read == a_b + 4 * b_b + c_b
    assert cost(ws, ONE).cycles == matmul_cycles(64, 64, 64, "fp16", ONE, flow="ws")


def test_lowering_picks_the_cheapest_supported_dataflow() -> None:
    edge_like = replace(SP, matrix=replace(ONE.matrix, dataflows=("os", "ws")))
    qk = with_best_dataflow(_mm("fp16", 197, 197, 64), ONE)
    assert qk.cls.field("flow").choices[int(qk["flow"])] == "ws"  # 7150 < 10010, ties → ws
    only_os = replace(SP, matrix=replace(ONE.matrix, dataflows=("os",)))
    assert int(with_best_dataflow(_mm("fp16", 197, 197, 64), only_os)["flow"]) == 0
    proj = with_best_dataflow(_mm("fp16", 17, 192, 64), edge_like)
    assert int(proj["flow"]) == 0  # os 1320 < ws 2280
