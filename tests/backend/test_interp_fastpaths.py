"""Fast numeric paths of the interpreter are bit-identical to numpy's own casts."""

from __future__ import annotations

import numpy as np

from backend.interpreter.numerics import f16_to_f32


def test_f16_to_f32_every_value() -> None:
    allh = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    for h in (allh, allh.T, allh[::3, 1::2]):
        got = f16_to_f32(h)
        assert got.dtype == np.float32 and got.shape == h.shape
        assert np.array_equal(got.view(np.uint32), h.astype(np.float32).view(np.uint32))


def test_f16_to_f32_empty() -> None:
    assert f16_to_f32(np.zeros((0, 4), np.float16)).shape == (0, 4)


def test_add_executed_matches_add() -> None:
    from backend.cost.model import InstrCost
    from backend.interpreter.report import CostTable, Report

    rng = np.random.default_rng(1)

    def rand_cost() -> InstrCost:
        return InstrCost(
            cycles=int(rng.integers(1, 1000)),
            dram_read=int(rng.integers(0, 1 << 20)),
            dram_write=int(rng.integers(0, 1 << 20)),
            sram_read=int(rng.integers(0, 1 << 20)),
            sram_write=int(rng.integers(0, 1 << 20)),
            macs_useful={"fp16": int(rng.integers(0, 1 << 24))},
            macs_issued={"fp16": int(rng.integers(0, 1 << 24)), "int8": 3},
            vector_ops=int(rng.integers(0, 1000)),
            energy={"mac": float(rng.random() * 1e5), "sram": float(rng.random() * 1e-3)},
        )

    costs = [rand_cost() for _ in range(50)]
    tags = [None if k % 7 == 0 else f"t{k % 5}" for k in range(50)]
    table = CostTable.build(costs, tags)
    order = [int(k) for k in rng.integers(0, 50, 300)]
    override = {5: rand_cost(), 77: rand_cost()}
    one, many = Report("x", 1.0), Report("x", 1.0)
    for pos, k in enumerate(order):
        one.add(0, override.get(pos, costs[k]), tags[k])
    many.add_executed(table, order, override)
    assert one == many
    assert list(one.per_tag) == list(many.per_tag)


def test_f32_to_f16_bits_matches_astype() -> None:
    """The integer rounding equals numpy's cast; so does `store_f16` into a strided view."""
    from backend.interpreter.numerics import f32_to_f16_bits, store_f16

    sample = np.arange(0, 1 << 32, 4093, dtype=np.uint64).astype(np.uint32)
    edges = [0, 0x33000000, 0x38000000, 0x387F0000, 0x477F0000, 0x7F7F0000, 0x7F800000]
    parts = [sample] + [np.arange(e, e + (1 << 16), dtype=np.uint32) for e in edges]
    bits = np.concatenate([*parts, *(p | np.uint32(0x80000000) for p in parts)])
    f = bits.view(np.float32)
    with np.errstate(all="ignore"):
        want = f.astype(np.float16).view(np.uint16)
    assert np.array_equal(f32_to_f16_bits(f), want)
    strided = f[: 64 * 50].reshape(64, 50)[::2, 1::3]
    with np.errstate(all="ignore"):
        assert np.array_equal(f32_to_f16_bits(strided), strided.astype(np.float16).view(np.uint16))
    assert f32_to_f16_bits(np.zeros((0, 3), np.float32)).shape == (0, 3)
    dst = np.zeros((f.size // 10, 20), np.float16)[:, ::2]
    store_f16(dst, f[: dst.size].reshape(dst.shape))
    assert np.array_equal(dst.view(np.uint16), want[: dst.size].reshape(dst.shape))


def _erf_plain(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def test_inplace_erf_gelu_bit_identical() -> None:
    from backend.interpreter.numerics import SQRT1_2, erf, erf_blocked, gelu

    rng = np.random.default_rng(2)
    pats = np.arange(0, 1 << 32, 65521, dtype=np.uint64).astype(np.uint32).view(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e30, 5.0], np.float32)
    cases = [rng.standard_normal((64, 197)).astype(np.float32) * s for s in (0.1, 1.0, 30.0)]
    big = rng.standard_normal((1400, 197)).astype(np.float32)  # evaluated by blocks
    cases += [pats.reshape(1, -1), special.reshape(1, -1), cases[1].T, big, big.T]
    with np.errstate(all="ignore"):
        for x in cases:
            e = _erf_plain(x)
            g = (
                0.5
                * np.asarray(x, np.float64)
                * (1.0 + _erf_plain(np.asarray(x, np.float64) * SQRT1_2))
            )
            assert np.array_equal(erf(x).view(np.uint64), e.view(np.uint64))
            assert np.array_equal(erf_blocked(x).view(np.uint64), e.view(np.uint64))
            assert np.array_equal(gelu(x).view(np.uint64), g.view(np.uint64))


def _f16_patterns() -> np.ndarray:
    """Every fp16 bit pattern (zeros, subnormals, normals, infinities, NaNs of every payload)."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)


def test_half_vec_ops_equal_float32_then_round() -> None:
    """VEC add/sub/mul/div on fp16 tiles run numpy's float16 loops (`semantics.HALF_OPS`); the
    instruction is defined as float32(a) ⊕ float32(b) stored to fp16. Checked for every a
    against b drawn from every class of value, with broadcasting as VEC's row/col operands."""
    from backend.interpreter.numerics import store_f16
    from backend.interpreter.semantics import HALF_OPS

    F32 = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
    a = _f16_patterns().reshape(256, 256)
    rng = np.random.default_rng(3)
    picks = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0x7C00, 0xFC00, 0x7E01, 0xFD55]
    bs = np.concatenate(
        [np.array(picks, np.uint16), rng.integers(0, 1 << 16, 40).astype(np.uint16)]
    )
    for name, uf in HALF_OPS.items():
        for b_bits in bs:
            for b in (np.full((256, 256), b_bits, np.uint16), np.full((256, 1), b_bits, np.uint16)):
                bh = b.view(np.float16)
                with np.errstate(all="ignore"):
                    got = uf(a, bh, out=np.empty((256, 256), np.float16))
                    want = np.empty((256, 256), np.float16)
                    store_f16(want, F32[name](a.astype(np.float32), bh.astype(np.float32)))
                assert np.array_equal(got.view(np.uint16), want.view(np.uint16)), (name, b_bits)
        with np.errstate(all="ignore"):  # random pairs over the whole table, row broadcast too
            b = rng.integers(0, 1 << 16, (256, 256)).astype(np.uint16).view(np.float16)
            for bb in (b, b[:1]):
                want = np.empty((256, 256), np.float16)
                store_f16(want, F32[name](a.astype(np.float32), bb.astype(np.float32)))
                got = uf(a, bb, out=np.empty((256, 256), np.float16))
                assert np.array_equal(got.view(np.uint16), want.view(np.uint16)), name


def test_store_f16_transposed_equals_transposing_first() -> None:
    """`store_f16_t` (convert, then move the 2-byte patterns) stores what ``store_f16(dst, v.T)``
    stores, for tiles below and above the vectorized-conversion threshold and strided views."""
    from backend.interpreter.numerics import store_f16, store_f16_t

    rng = np.random.default_rng(5)
    for rows, cols in ((7, 5), (62, 197), (384, 64)):
        bits = rng.integers(0, 1 << 32, (rows, cols + 3), dtype=np.uint64).astype(np.uint32)
        v = bits.view(np.float32)[:, 1 : cols + 1]  # every float32 class, strided
        v[0, :4] = [1e-8, 65520.0, -6e-5, 2.0**-25]  # subnormal, overflow, rounding edges
        for tr in (False, True):
            shape = (cols, rows) if tr else (rows, cols)
            got, want = np.zeros(shape, np.float16), np.zeros(shape, np.float16)
            with np.errstate(all="ignore"):
                store_f16_t(got, v, tr)
                store_f16(want, v.T if tr else v)
            assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
