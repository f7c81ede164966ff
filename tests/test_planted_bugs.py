"""Tests written against bugs that were planted in a clone and slipped through the suite (issue 13).

Each test fails on its planted bug and passes on the correct code; the bug is named in the
docstring. The oracles are independent of the code under test: numbers worked out by hand,
stable formulas written out here, encodings assembled bit by bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.compile import compile_module
from backend.config import load_config
from backend.cost import cost, dma_bytes, matmul_cycles, topk_cycles, vector_cycles
from backend.encoding import decode, encode
from backend.interpreter import run
from backend.isa import make
from compiler import reference
from compiler.calibration import ReferenceExecutor
from compiler.ir import parse_module
from compiler.model import Model
from compiler.weights import WeightStore
from passes.context import Calibration
from passes.depgraph import analyze
from passes.prune_importance import slot_scores


def _model(body: str, args: str, result: str, weights: dict[str, np.ndarray]) -> Model:
    text = f"builtin.module {{\n  func.func @main({args}) -> {result} {{\n{body}\n  }}\n}}\n"
    return Model("t", parse_module(text), WeightStore(weights))


def _npu(m: Model, inputs: dict[str, np.ndarray], config: str = "spatten") -> dict[str, np.ndarray]:
    c = compile_module(m.module, m.weights, load_config(config))
    res = run(c.program, inputs, load_config(config))
    return {k: np.asarray(v, np.float32) for k, v in res.outputs.items()}


# ---- softmax without max-subtraction ------------------------------------------------------------


def _stable_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_reference_softmax_large_scores_do_not_overflow() -> None:
    """Bug: softmax computes exp(x) without subtracting the row max (exp(200) = inf in fp32)."""
    x = np.array([[200.0, 199.0, -5.0], [1000.0, 1000.0, 0.0]], np.float32)
    got = reference.softmax(x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, _stable_softmax(x), rtol=1e-5, atol=1e-7)


def test_npu_softmax_large_scores_do_not_overflow() -> None:
    """Same bug in the interpreter's ROW softmax: scores of ±300 (fp16 holds them) must not give NaN."""
    body = """    %y = nn.softmax %x {axis = -1} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    func.return %y : tensor<4x16xf32>"""
    m = _model(body, "%x: tensor<4x16xf32>", "tensor<4x16xf32>", {})
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 16)) * 150).astype(np.float32)
    x[0, 3] = 300.0
    (got,) = _npu(m, {"x": x}).values()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, _stable_softmax(x.astype(np.float16)), atol=2e-3)


def test_npu_attention_large_scores_do_not_overflow() -> None:
    """Attention with scores ~ 10^3: the softmax inside attention must also subtract the row max."""
    body = """    %a = nn.attention %x, %x, %x {heads = 1, qk_dim = 8, v_dim = 8, scale = 1.0, causal = false} : (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>) -> tensor<6x8xf32>
    func.return %a : tensor<6x8xf32>"""
    m = _model(body, "%x: tensor<6x8xf32>", "tensor<6x8xf32>", {})
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((6, 8)) * 12).astype(np.float32)
    xh = x.astype(np.float16).astype(np.float64)
    want = _stable_softmax(xh @ xh.T) @ xh
    (got,) = _npu(m, {"x": x}).values()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=0.05 * np.abs(want).max())


# ---- layer norm with eps dropped ----------------------------------------------------------------

LN_BODY = """    %g = nn.weight @ln.weight : tensor<16xf32>
    %b = nn.weight @ln.bias : tensor<16xf32>
    %y = nn.layer_norm %x, %g, %b {eps = 1.0e-05} : (tensor<4x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    func.return %y : tensor<4x16xf32>"""


def _ln_case() -> tuple[Model, np.ndarray, np.ndarray]:
    g = np.linspace(0.5, 2.0, 16).astype(np.float32)
    b = np.linspace(-1.0, 1.0, 16).astype(np.float32)
    m = _model(LN_BODY, "%x: tensor<4x16xf32>", "tensor<4x16xf32>", {"ln.weight": g, "ln.bias": b})
    x = np.zeros((4, 16), np.float32)
    x[0] = 3.0  # flat: variance 0, output = beta
    x[1] = 1.0 + 0.001 * np.tile([1.0, -1.0], 8)  # variance 1e-6 ≪ eps 1e-5
    x[2] = np.arange(16, dtype=np.float32)  # an ordinary row
    x[3] = -2.0
    d = x.astype(np.float64) - x.mean(axis=1, keepdims=True)
    want = d / np.sqrt((d * d).mean(axis=1, keepdims=True) + 1e-5) * g + b
    return m, x, want


def test_reference_layer_norm_flat_rows_use_eps() -> None:
    """Bug: eps dropped from the variance (flat rows give 0/0 = NaN, near-flat rows blow up)."""
    m, x, want = _ln_case()
    got = reference.layer_norm(x, m.weights["ln.weight"], m.weights["ln.bias"], 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # x[1]: d = ±0.001, var = 1e-6 → d / sqrt(1.1e-5) = ±0.3015 (without eps: ±1)
    assert abs(float(want[1, 0] - m.weights["ln.bias"][0]) / 0.5 - 0.001 / math.sqrt(1.1e-5)) < 1e-4


@pytest.mark.parametrize("config", ["spatten", "edge"])
def test_npu_layer_norm_flat_rows_use_eps(config: str) -> None:
    m, x, want = _ln_case()
    (got,) = _npu(m, {"x": x}, config).values()
    np.testing.assert_allclose(got, want, atol=0.02)


# ---- lowering picks the GELU the op asks for ----------------------------------------------------


@pytest.mark.parametrize(
    ("approx", "want", "other"), [("none", "gelu", "gelu_tanh"), ("tanh", "gelu_tanh", "gelu")]
)
@pytest.mark.parametrize("fused", [False, True])
def test_lowering_emits_the_requested_gelu(approx: str, want: str, other: str, fused: bool) -> None:
    """Bug: the lowering emits tanh-GELU for an erf-GELU op (within 1% end to end, so only the
    chosen instruction shows it). Standalone and fused into a linear's epilogue."""
    if fused:
        body = f"""    %w = nn.weight @fc.weight : tensor<8x8xf32>
    %h = nn.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %y = nn.gelu %h {{approximate = "{approx}"}} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %y : tensor<4x8xf32>"""
        weights = {"fc.weight": np.eye(8, dtype=np.float32)}
    else:
        body = f"""    %y = nn.gelu %x {{approximate = "{approx}"}} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %y : tensor<4x8xf32>"""
        weights = {}
    m = _model(body, "%x: tensor<4x8xf32>", "tensor<4x8xf32>", weights)
    c = compile_module(m.module, m.weights, load_config("spatten"))
    ops = [
        i.cls.field("op").choices[int(i.args["op"])]
        for i in c.program.instrs
        if i.cls.name == "VEC"
    ]
    assert want in ops and other not in ops, ops


# ---- fact cost values by hand -------------------------------------------------------------------

FACT = load_config("fact")  # 32×16 ×1, int4 rate 2, LPDDR4 51.2 B/cycle, 64 B bursts, latency 50


def test_fact_config_values() -> None:
    """Bug: a fact.toml value changed (e.g. DRAM bandwidth doubled). Values from docs/hardware.md."""
    assert (FACT.matrix.rows, FACT.matrix.cols, FACT.matrix.arrays) == (32, 16, 1)
    assert (FACT.matrix.int8_rate, FACT.matrix.int4_rate, FACT.matrix.fp16_rate) == (1.0, 2.0, 1.0)
    assert FACT.dram.bytes_per_cycle == pytest.approx(25.6e9 / 500e6)
    assert (FACT.dram.burst_bytes, FACT.dram.latency_cycles) == (64, 50)
    assert FACT.vector_lanes == 32
    assert FACT.clock_mhz == 500.0


def test_fact_dma_cost_by_hand() -> None:
    # 100 rows of 20 fp16 (40 B, stride 4096): each row → one 64 B burst = 6400 B;
    # ⌈6400 / 51.2⌉ = 125 cycles on the channel + 50 latency
    assert dma_bytes(100, 40, 4096, FACT) == 6400
    ld = make("LOAD", dtype="fp16", dst_buf="act", dst_off=0, dst_stride=20, src_addr=0,
              src_stride=4096, rows=100, cols=20)  # fmt: skip
    c = cost(ld, FACT)
    assert (c.dram_read, c.sram_write, c.dram_transfer, c.cycles) == (6400, 4000, 125, 175)
    assert c.energy["dram"] == pytest.approx(6400 * 64.0)
    # contiguous 3 × 33 B = 99 B → 2 bursts of 64
    assert dma_bytes(3, 33, 33, FACT) == 128


def test_fact_matmul_vector_topk_by_hand() -> None:
    # 64×64×64 int8 on one 32×16 array: 2·4 = 8 folds × (32+16+64−2 = 110)
    assert matmul_cycles(64, 64, 64, "int8", FACT) == 880
    # int4w at rate 2: 8 × (32+16+32−2)
    assert matmul_cycles(64, 64, 64, "int4w", FACT) == 624
    # 40 rows, 10 masked: 30 rows → 1·4 folds × 110; 10 rows → 4 × 78
    assert matmul_cycles(40, 64, 64, "int8", FACT, masked_rows=10) == 4 * 110 + 4 * 78
    # gelu: 8 passes × ⌈100/32⌉ = 4
    assert vector_cycles(100, 8, FACT) == 32
    # 16 comparators, keep 1 of 2: a pass of ⌈2/16⌉ + 3 = 4 cycles, and a second one over the
    # element left when the random pivot was the smaller (probability 1/2): 6 per row, 2 rows
    assert topk_cycles(2, 2, 1, FACT) == 12
    c = cost(
        make("MATMUL", mode="int8", a_buf="act", a_off=0, a_stride=64, b_buf="wgt", b_off=0,
             b_stride=64, c_buf="acc", c_off=0, c_stride=64, m=64, n=64, k=64),
        FACT,
    )  # fmt: skip
    assert c.cycles == 880
    assert c.energy["mac"] == pytest.approx(64**3 * 0.3)


# ---- cross-attention: K and V tokens are one dimension ------------------------------------------

XATTN = """
func.func @main(%x: tensor<5x8xf32>) -> tensor<5x3xf32> {
  %wq = nn.weight @q.weight : tensor<8x8xf32>
  %q = nn.linear %x, %wq : (tensor<5x8xf32>, tensor<8x8xf32>) -> tensor<5x8xf32>
  %mk = nn.weight @mem_k : tensor<7x8xf32>
  %mv = nn.weight @mem_v : tensor<7x8xf32>
  %a = nn.attention %q, %mk, %mv {heads = 2, qk_dim = 4, v_dim = 4, scale = 0.5, causal = false} : (tensor<5x8xf32>, tensor<7x8xf32>, tensor<7x8xf32>) -> tensor<5x8xf32>
  %wo = nn.weight @o.weight : tensor<3x8xf32>
  %y = nn.linear %a, %wo : (tensor<5x8xf32>, tensor<3x8xf32>) -> tensor<5x3xf32>
  func.return %y : tensor<5x3xf32>
}
"""


def test_cross_attention_couples_key_and_value_tokens() -> None:
    """Bug: the depgraph rule linking k's and v's token dim is dropped. With self-attention both
    come from one tensor anyway; here K and V are separate memories of 7 tokens."""
    dg = analyze(parse_module(XATTN))
    (g,) = [g for g in dg.groups if any((m.symbol, m.axis) == ("mem_k", 0) for m in g.members)]
    assert sorted((m.symbol, m.axis) for m in g.members) == [("mem_k", 0), ("mem_v", 0)]
    assert g.size == 7 and g.prunable
    # the query side (5 tokens) is a different dimension
    assert all(g.size != 5 for g in dg.groups if any(m.symbol == "mem_v" for m in g.members))


# ---- binary layout with asymmetric fields -------------------------------------------------------


def _word(i: object) -> int:
    return int.from_bytes(encode(i), "little")  # type: ignore[arg-type]


def test_load_layout_rows_ne_cols_by_hand() -> None:
    """Bug: rows and cols swapped consistently in encoder and decoder (round trips still pass)."""
    i = make("LOAD", dtype="fp16", dst_buf="wgt", dst_off=0x1234, dst_stride=40, src_addr=0xABCDE,
             src_stride=0x777, rows=3, cols=1000)  # fmt: skip
    # header: opcode 1 (6 bits); dtype@21 (3), dst_buf@24 (3), dst_off@27 (22), dst_stride@49 (16),
    # src_addr@65 (32), src_stride@97 (24), rows@121 (16), cols@137 (16)
    expect = (
        1
        | 0 << 21
        | 1 << 24
        | 0x1234 << 27
        | 40 << 49
        | 0xABCDE << 65
        | 0x777 << 97
        | 3 << 121
        | 1000 << 137
    )
    assert _word(i) == expect
    d = decode(expect.to_bytes(32, "little"), 0)
    assert (d.args["rows"], d.args["cols"]) == (3, 1000)


def test_matmul_layout_m_ne_n_by_hand() -> None:
    """Bug: m and n swapped consistently in encoder and decoder."""
    i = make("MATMUL", mode="sp24", acc=1, tb=0, a_buf="act", a_off=64, a_stride=48,
             b_buf="wgt", b_off=128, b_stride=24, c_buf="acc", c_off=256, c_stride=24,
             m=5, n=24, k=48, meta_buf="idx", meta_off=8)  # fmt: skip
    # opcode 5; mode@21 (3 bits, sp24 = 3); acc@24; tb@25; a: buf@26 off@29 stride@51;
    # b: buf@67 off@70 stride@92; c: buf@108 off@111 stride@133; m@149 n@165 k@181;
    # meta: buf@197 off@200; mask flag@222; mask buf@223 off@226
    expect = (
        5
        | 3 << 21
        | 1 << 24
        | 0 << 26
        | 64 << 29
        | 48 << 51
        | 1 << 67
        | 128 << 70
        | 24 << 92
        | 2 << 108
        | 256 << 111
        | 24 << 133
        | 5 << 149
        | 24 << 165
        | 48 << 181
        | 4 << 197
        | 8 << 200
    )
    assert _word(i) == expect
    d = decode(expect.to_bytes(32, "little"), 0)
    assert (d.args["m"], d.args["n"], d.args["k"]) == (5, 24, 48)


# ---- the activation (Wanda) criterion uses the activations --------------------------------------

WANDA = """
func.func @main(%x: tensor<6x4xf32>) -> tensor<6x2xf32> {
  %wa = nn.weight @a.weight : tensor<4x4xf32>
  %h = nn.linear %x, %wa : (tensor<6x4xf32>, tensor<4x4xf32>) -> tensor<6x4xf32>
  %r = nn.relu %h : (tensor<6x4xf32>) -> tensor<6x4xf32>
  %wb = nn.weight @b.weight : tensor<2x4xf32>
  %y = nn.linear %r, %wb : (tensor<6x4xf32>, tensor<2x4xf32>) -> tensor<6x2xf32>
  func.return %y : tensor<6x2xf32>
}
"""


def test_activation_criterion_uses_activations() -> None:
    """Bug: the activation criterion ignores activations (returns the weight norm alone). Every
    hidden channel has the same weight norm; input feature j is scaled by 10^j, so channel j's
    activations, and its score, grow with j. The score is checked against a hand computation."""
    module = parse_module(WANDA)
    weights = {
        "a.weight": np.eye(4, dtype=np.float32),
        "b.weight": np.ones((2, 4), np.float32),
    }
    rng = np.random.default_rng(0)
    inputs = [
        {"x": (np.abs(rng.standard_normal((6, 4))) * 10.0 ** np.arange(4)).astype(np.float32)}
        for _ in range(3)
    ]
    calib = Calibration(inputs, None, ReferenceExecutor())
    dg = analyze(module)
    groups = [g for g in dg.groups if any((m.symbol, m.axis) == ("a.weight", 0) for m in g.members)]
    (g,) = groups
    scores = slot_scores(groups, "activation", weights, calib, module, samples=3)[g.id]
    l2 = slot_scores(groups, "l2", weights, calib, module, samples=3)[g.id]
    assert np.allclose(l2, l2[0])  # weights alone cannot tell the channels apart
    assert np.all(np.diff(scores) > 0)
    # by hand: mean |h_j| over samples and tokens (relu keeps it, h = x) × l2 norm of the slot
    act = np.mean([np.abs(s["x"].astype(np.float64)).mean(axis=0) for s in inputs], axis=0)
    np.testing.assert_allclose(scores, act * l2, rtol=1e-5)


# ---- the list scheduler shares one DRAM channel between the load and store queues ---------------


def test_list_schedule_serialises_dram_transfers_by_hand() -> None:
    """Mutant: the store queue ignores the DRAM channel the load queue occupies. An independent
    LOAD and STORE of 6400 DRAM bytes each on fact: the LOAD holds the channel for ⌈6400/51.2⌉ =
    125 cycles, so the STORE starts at 125 and ends at 125 + 50 + 125 = 300 (not 175)."""
    from backend.schedule.listsched import list_schedule

    ld = make("LOAD", dtype="fp16", dst_buf="act", dst_off=0, dst_stride=20, src_addr=0,
              src_stride=4096, rows=100, cols=20)  # fmt: skip
    st = make("STORE", dtype="fp16", src_buf="vec", src_off=0, src_stride=20, dst_addr=1 << 20,
              dst_stride=4096, rows=100, cols=20)  # fmt: skip
    order, est = list_schedule([ld, st], [[], []], FACT)
    assert order == [0, 1]
    assert est.cycles == 300
