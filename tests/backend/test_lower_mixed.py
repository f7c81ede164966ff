"""FACT mixed-precision FFN: `tokens.row_precision` (which token rows run at INT4-MSB) and
`tokens.mixed_linear` (the integer linear with MATMUL's per-row precision mask). Checked against
an independent numpy statement of the formulas (counts by loops, ties by (−count, index), the
high nibble as floor(w / 16)·16), the interpreter against the reference bit for bit, and the
interpreter's cost (INT4 MACs = the masked rows' MACs, cheaper MAC energy)."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerType, ModuleOp, f32
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region

from backend.interpreter.numerics import int4_msb, split_bitplanes, unpack_int4
from compiler import reference
from compiler.api import compile_model
from compiler.model import Model
from compiler.weights import WeightStore
from dialects import nn, quant, tokens
from dialects.nn_base import tensor

I8, I32 = IntegerType(8), IntegerType(32)
N, D, HEADS, OUT = 24, 12, 2, 10


def model(int8_rows: int, protect: tuple[int, ...], rng: np.random.Generator, dup: bool):
    """xq → tokens.predict → row_precision → mixed_linear(xq, w, low, b) → dequantize (scale 1)."""
    blk = Block(arg_types=[tensor((N, D), I8)])
    blk.args[0].name_hint = "xq"
    w = {
        "wq": rng.integers(-128, 128, (D, D)).astype(np.int8),
        "wk": rng.integers(-128, 128, (D, D)).astype(np.int8),
        "w": rng.integers(-128, 128, (OUT, D)).astype(np.int8),
        "b": rng.integers(-8, 9, OUT).astype(np.int32),
        "s": np.ones(1, np.float32),
    }
    types = {"wq": tensor((D, D), I8), "wk": tensor((D, D), I8), "w": tensor((OUT, D), I8)}
    types |= {"b": tensor((OUT,), I32), "s": tensor((1,), f32)}
    wops = {s: nn.WeightOp.of(s, t) for s, t in types.items()}
    pred = tokens.PredictOp.make(
        [blk.args[0], wops["wq"].result, wops["wk"].result], heads=HEADS, qk_dim=D // HEADS,
        scale=0.5, causal=False, topk=3, margin=-1.0, q_shift=4, k_shift=4, unit=1.0,
    )  # fmt: skip
    low = tokens.RowPrecisionOp.make([pred.results[0]], int8_rows=int8_rows, protect=protect)
    lin = tokens.MixedLinearOp.make(
        [blk.args[0], wops["w"].result, low.results[0], wops["b"].result], groups=1
    )
    deq = quant.DequantizeOp.make([lin.results[0], wops["s"].result])
    outs = [deq.results[0], low.results[0], pred.results[0]]
    blk.add_ops([*wops.values(), pred, low, lin, deq, ReturnOp(*outs)])
    func = FuncOp("main", (list(blk.arg_types), [v.type for v in outs]), Region(blk))
    xq = rng.integers(-1, 2, (N, D)).astype(np.int8)  # |acc| ≤ 12·128 + 8: exact in fp16
    if dup:  # duplicated tokens: equal column counts (ties)
        xq[N // 2 :] = xq[: N - N // 2]
    return Model("mixed", ModuleOp([func]), WeightStore(w)), {"xq": xq}


def low_rows(mask: np.ndarray, k: int, protect: tuple[int, ...]) -> np.ndarray:
    """Independent statement: count how many (head, query) select each key; protected first, then
    by (−count, index); the first k are int8, the rest 1."""
    n = mask.shape[-1]
    count = [sum(int(mask[h, i, j] != 0) for h in range(mask.shape[0]) for i in range(n))
             for j in range(n)]  # fmt: skip
    prot = {p % n for p in protect}
    order = sorted(range(n), key=lambda j: (j not in prot, -count[j], j))
    out = np.ones(n, np.int8)
    out[order[:k]] = 0
    return out


def mixed_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray, low: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0], w.shape[0]), np.int64)
    for r in range(x.shape[0]):
        wr = (np.floor(w.astype(np.int64) / 16) * 16).astype(np.int64) if low[r] else w
        out[r] = x[r].astype(np.int64) @ wr.astype(np.int64).T + b
    return out


def test_int4_msb_is_the_high_nibble() -> None:
    v = np.arange(-128, 128, dtype=np.int8).reshape(8, 32)
    np.testing.assert_array_equal(int4_msb(v), np.floor(v / 16) * 16)
    msb, _ = split_bitplanes(v)  # what LOADBP msb writes: the plane << 4
    np.testing.assert_array_equal(unpack_int4(msb).astype(np.int16) << 4, int4_msb(v))


@pytest.mark.parametrize(
    ("k", "protect", "seed", "dup"), [(12, (0,), 0, False), (5, (0, -1), 1, True), (24, (), 2, False),
                                      (1, (), 3, True), (9, (3,), 4, True)],
)  # fmt: skip
def test_mixed_linear_matches_numpy_and_interpreter(k, protect, seed, dup) -> None:
    m, x = model(k, protect, np.random.default_rng(seed), dup)
    ref = reference.run(m, x)
    low = low_rows(ref["out2"], k, protect)
    np.testing.assert_array_equal(ref["out1"], low)
    assert int(low.sum()) == N - k  # exactly k rows int8
    want = mixed_acc(x["xq"], m.weights["w"], m.weights["b"], low)
    full = mixed_acc(x["xq"], m.weights["w"], m.weights["b"], np.zeros(N, np.int8))
    assert (want != full).any() == bool(low.any())  # the int4 rows do differ
    np.testing.assert_array_equal(ref["out0"], want.astype(np.float32))
    got = compile_model(m, target="fact").run(x)
    np.testing.assert_array_equal(got.outputs["out1"], low)
    np.testing.assert_array_equal(got.outputs["out0"].astype(np.float32), ref["out0"])
    assert got.report.macs_useful["int4"] == int(low.sum()) * D * OUT
    assert got.report.macs_useful["int8"] == int((1 - low).sum()) * D * OUT


def test_int4_rows_cost_less_mac_energy() -> None:
    m8, x = model(N, (), np.random.default_rng(5), False)
    m4, _ = model(1, (), np.random.default_rng(5), False)
    r8 = compile_model(m8, target="fact").run(x).report
    r4 = compile_model(m4, target="fact").run(x).report
    assert r4.macs_useful["int4"] == (N - 1) * D * OUT and r8.macs_useful["int4"] == 0
    assert r4.energy_pj["mac"] < r8.energy_pj["mac"]


def test_row_precision_verifier() -> None:
    from compiler.ir import parse_module

    ir = (
        "func.func @main(%m: tensor<4x65x65xf32>) -> tensor<65xi8> {\n"
        "  %l = tokens.row_precision %m {int8_rows = 70, protect = [0]} :"
        " (tensor<4x65x65xf32>) -> tensor<65xi8>\n  func.return %l : tensor<65xi8>\n}\n"
    )
    with pytest.raises(Exception, match="int8_rows must be in"):
        parse_module(ir)
    assert "tokens.row_precision" in str(parse_module(ir.replace("= 70", "= 33")))
