"""Cost model vs hand-computed figures (SCALE-Sim folds, DMA bursts, top-k passes, energy)."""

from __future__ import annotations

import pytest

from backend.config import load_config
from backend.cost import (
    cost,
    dma_bytes,
    matmul_cycles,
    skipped_cost,
    topk_cycles,
    topk_passes,
    vector_cycles,
)
from backend.isa import ISA, make

SP = load_config("spatten")  # 32×16 arrays ×2, int4 rate 2, HBM2 512 B/cycle, 32 B bursts
EDGE = load_config("edge")  # 16×16 ×1, fp16 rate 0.5, 16 B/cycle, 32 B bursts, latency 80


def _mm(mode: str, m: int, n: int, k: int, **kw):
    return make("MATMUL", mode=mode, a_buf="act", a_off=0, a_stride=k, b_buf="wgt", b_off=0,
                b_stride=n, c_buf="acc", c_off=0, c_stride=n, m=m, n=n, k=k, **kw)  # fmt: skip


def test_matmul_fold_formula_by_hand() -> None:
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


def test_topk_passes_and_cycles_by_hand() -> None:
    assert topk_passes(64, 8) == 4  # ⌈log2 8⌉ + 1
    assert topk_passes(100, 100) == 1
    assert topk_passes(100, 30) == 3  # ⌈log2 3.33⌉ + 1
    assert topk_cycles(2, 64, 8, SP) == 2 * 4 * (64 // 16 + 3)
    tk = make("TOPK", src_buf="idx", src_off=0, src_stride=64, rows=2, n=64, k=8,
              dst_buf="idx", dst_off=1024)  # fmt: skip
    assert cost(tk, SP).cycles == 56


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
