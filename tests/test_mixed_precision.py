"""mixed-precision: sensitivity ranking, exact allocation (vs brute force), budget errors, cost
figures recomputed from the cost formulas and energy table, digits-vit accuracy under a budget."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from backend.config import Config, load_config
from backend.cost import dma_bytes, dma_transfer_cycles, matmul_cycles, vector_cycles
from compiler.calibration import ReferenceExecutor
from compiler.errors import WispError
from compiler.evaluate import evaluate
from compiler.models import Linear, Module, build, trace
from compiler.models import functional as F
from compiler.pipeline import parse_pipeline, run_pipeline
from dialects import nn, quant
from dialects.nn_base import shape_of
from passes.context import Calibration
from passes.latency import linear_cost
from passes.mixed_precision import allocate, kl_divergence, layer_sensitivity
from passes.quant_math import Granularity
from passes.quantize import quantizable_layers


class _MLP(Module):
    def __init__(self) -> None:
        self.fc1, self.fc2, self.fc3 = Linear(16, 32), Linear(32, 32), Linear(32, 10)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.fc3(F.gelu(self.fc2(F.gelu(self.fc1(x)))))


def _mlp_with_outliers(layer: str):  # noqa: ANN202
    model = trace(_MLP(), {"x": ((4, 16), np.float32)}, seed=0, name="mlp")
    w = np.array(model.weights[f"{layer}.weight"], np.float32)
    rows = np.arange(w.shape[0])
    w[rows, rows % w.shape[1]] *= 40.0  # one outlier per output channel: a coarse step elsewhere
    model.weights[f"{layer}.weight"] = w
    rng = np.random.default_rng(1)
    calib = Calibration(
        [{"x": rng.standard_normal((4, 16)).astype(np.float32)} for _ in range(8)],
        None,
        ReferenceExecutor(),
    )
    return model, calib


@pytest.mark.parametrize("layer", ["fc1", "fc2"])
def test_outlier_layer_ranked_most_sensitive(layer: str) -> None:
    model, calib = _mlp_with_outliers(layer)
    layers = quantizable_layers(model.module)
    sens = layer_sensitivity(
        model.module, model.weights, calib, layers, [4, 8], Granularity("channel"),
        ["noise", "rounding"], samples=8,
    )  # fmt: skip
    for kind in ("noise", "rounding"):
        for b in (4, 8):
            ranked = sorted(sens[kind], key=lambda n: -sens[kind][n][b])
            assert ranked[0] == layer, (kind, b, sens[kind])
            assert all(sens[kind][n][4] > sens[kind][n][8] > 0 for n in sens[kind])


def test_kl_divergence_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 10)), rng.standard_normal((3, 10))
    p = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
    q = np.exp(b) / np.exp(b).sum(-1, keepdims=True)
    assert kl_divergence(a, b) == pytest.approx(np.mean(np.sum(p * np.log(p / q), -1)), rel=1e-9)
    assert kl_divergence(a, a) == 0.0


def _brute(costs, sens, budget):  # noqa: ANN001, ANN202
    best = None
    for choice in itertools.product(*(range(len(c)) for c in costs)):
        c = sum(costs[i][j] for i, j in enumerate(choice))
        s = sum(sens[i][j] for i, j in enumerate(choice))
        if c <= budget + 1e-9 and (best is None or s < best - 1e-12):
            best = s
    return best


def test_allocation_is_optimal_on_random_cases() -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, k = int(rng.integers(1, 7)), int(rng.integers(1, 4))
        integer = trial % 2 == 0  # repeated costs (as equal-shape layers have) and float costs
        costs = [
            list(rng.integers(1, 6, k).astype(float) if integer else rng.uniform(0.1, 5, k))
            for _ in range(n)
        ]
        sens = [list(rng.uniform(0, 1, k)) for _ in range(n)]
        lo, hi = sum(map(min, costs)), sum(map(max, costs))
        budget = float(rng.uniform(lo * 0.9, hi * 1.05))
        alloc = allocate(costs, sens, budget)
        want = _brute(costs, sens, budget)
        if want is None:
            assert alloc is None
            continue
        assert alloc is not None and alloc.exact
        assert alloc.sensitivity == pytest.approx(want, abs=1e-12)
        assert alloc.cost <= budget + 1e-9
        assert alloc.cost == pytest.approx(sum(costs[i][j] for i, j in enumerate(alloc.choice)))


def test_allocation_thinned_frontier_stays_feasible() -> None:
    rng = np.random.default_rng(3)
    costs = [list(rng.uniform(1, 2, 3)) for _ in range(12)]
    sens = [list(rng.uniform(0, 1, 3)) for _ in range(12)]
    budget = 0.5 * (sum(map(min, costs)) + sum(map(max, costs)))
    alloc = allocate(costs, sens, budget, max_states=4)
    exact = allocate(costs, sens, budget)
    assert alloc is not None and exact is not None and exact.exact and not alloc.exact
    assert alloc.cost <= budget + 1e-9 and alloc.sensitivity >= exact.sensitivity - 1e-12


def _instr_energy(cfg: Config, dram: int, sram: int, macs: int, prec: str, vops: int) -> float:
    e = cfg.energy
    return dram * e.dram_byte + sram * e.sram_byte + macs * e.mac(prec) + vops * e.vector_op


def _best(m: int, n: int, k: int, mode: str, cfg: Config) -> tuple[int, str]:
    """(cycles, dataflow): the cheapest of the config's dataflows, as lowering picks it."""
    return min((matmul_cycles(m, n, k, mode, cfg, flow=f), f) for f in cfg.matrix.dataflows)


def _mm_sram(flow: str, m: int, n: int, k: int, cfg: Config) -> int:
    """SRAM bytes of an int8 MATMUL (acc=0) by dataflow (docs/hardware.md's counting rules):
    os re-reads A per column tile and B per row tile and writes C once; ws reads B once and A per
    column fold, is A once and B per column fold of M; both write C per K fold and read it back
    between K folds."""
    mx = cfg.matrix
    if flow == "os":
        return math.ceil(n / mx.cols) * m * k + math.ceil(m / mx.rows) * k * n + 4 * m * n
    kf = math.ceil(k / mx.rows)
    streamed = math.ceil(n / mx.cols) * m * k + k * n if flow == "ws" else m * k
    if flow == "is":
        streamed += math.ceil(m / mx.cols) * k * n
    return streamed + (2 * kf - 1) * 4 * m * n


@pytest.mark.parametrize("hw", ["spatten", "edge"])
@pytest.mark.parametrize("m,n,k", [(65, 64, 64), (65, 128, 64), (1, 10, 64)])
def test_linear_cost_matches_formulas(hw: str, m: int, n: int, k: int) -> None:
    cfg = load_config(hw)
    lanes = cfg.vector_lanes

    def vec(elems: int, passes: int = 1) -> int:
        return vector_cycles(elems, passes, cfg)

    # fp16: weight [k, n] fp16 streamed under the array; VEC add bias + MOVE fp32 → fp16
    w16 = dma_bytes(k, 2 * n, 2 * n, cfg)
    c16 = linear_cost(m, n, k, 16, cfg)
    mm16, _ = _best(m, n, k, "fp16", cfg)
    assert c16.cycles == max(mm16, dma_transfer_cycles(w16, cfg)) + 2 * vec(m * n)
    assert c16.weight_bytes == w16
    # int8 (channel scales): + fp32 scale row; A quantize MOVE, bias add, MOVE, mul, MOVE
    w8 = dma_bytes(k, n, n, cfg)
    s8 = dma_bytes(1, 4 * n, 4 * n, cfg)
    c8 = linear_cost(m, n, k, 8, cfg)
    mm8, flow8 = _best(m, n, k, "int8", cfg)
    assert c8.cycles == max(mm8, dma_transfer_cycles(w8, cfg)) + vec(m * k) + 4 * vec(m * n)
    assert c8.weight_bytes == w8 + s8 and c8.dram_bytes == w8 + 2 * s8
    mn = m * n
    energy8 = (
        _instr_energy(cfg, w8, k * n, 0, "int8", 0)  # LOAD weight
        + 2 * _instr_energy(cfg, s8, 4 * n, 0, "int8", 0)  # LOAD scales, LOAD int32 bias
        + _instr_energy(cfg, 0, _mm_sram(flow8, m, n, k, cfg), m * n * k, "int8", 0)
        + _instr_energy(cfg, 0, 3 * m * k, 0, "int8", m * k)  # MOVE fp16 → int8
        + 2 * _instr_energy(cfg, 0, 8 * mn + 4 * n, 0, "int8", mn)  # VEC add, VEC mul (row b)
        + _instr_energy(cfg, 0, 8 * mn, 0, "int8", mn)  # MOVE int32 → fp32
        + _instr_energy(cfg, 0, 6 * mn, 0, "int8", mn)  # MOVE fp32 → fp16
    )
    assert c8.energy_pj == pytest.approx(energy8, rel=1e-12)
    # int4 packed two a byte, grouped along K: one MATMUL per group of K/2
    if k % 2 == 0 and n % 2 == 0:
        w4 = dma_bytes(k, n // 2, n // 2, cfg)
        c4 = linear_cost(m, n, k, 4, cfg, groups=2)
        mm4 = 2 * _best(m, n, k // 2, "int4w", cfg)[0]
        vecs = vec(m * k) + 2 * 2 * vec(m * n) + vec(m * n) + 2 * vec(m * n)
        assert c4.cycles == max(mm4, dma_transfer_cycles(w4, cfg)) + vecs
        assert c4.weight_bytes == w4 + dma_bytes(2, 4 * n, 4 * n, cfg)
    assert lanes > 0


def _digits_calib(n: int) -> Calibration:
    from compiler.calibration import calibration_for

    return calibration_for(build("digits-vit"), samples=n)


def test_pass_costs_in_report_are_the_cost_models() -> None:
    model = build("digits-vit")
    records = run_pipeline(
        model,
        "mixed-precision{budget=0.5 metric=weight_bytes hw=edge samples=4}",
        quiet=True,
        calibration=_digits_calib(4),
    )
    rep = records[-1].report
    assert rep is not None
    cfg = load_config("edge")
    fresh = build("digits-vit")
    total = 0.0
    for lay in quantizable_layers(fresh.module):
        x, (n, k) = shape_of(lay.op.input.type), shape_of(lay.op.weight.type)
        m = math.prod(x[:-1])
        got = rep["layers"][lay.name]
        for b in (4, 8, 16):
            assert got["cost"][str(b)] == linear_cost(m, n, k, b, cfg).weight_bytes
        total += got["cost"][str(got["bits"])]
    assert rep["predicted_cost"] == pytest.approx(total)
    assert rep["budget_met"] and total <= 0.5 * rep["fp16_cost"]
    # the IR carries the chosen widths
    widths = {
        o.weight.owner.symbol.removesuffix(".weight.q"): quant.int_width(o.weight.type)
        for o in model.module.walk()
        if isinstance(o, quant.LinearOp) and isinstance(o.weight.owner, nn.WeightOp)
    }
    assert widths == {name: v["bits"] for name, v in rep["layers"].items()}


def test_digits_vit_within_one_point_at_half_budget() -> None:
    limit = 120
    fp = evaluate(build("digits-vit"), limit=limit).correct
    model = build("digits-vit")
    run_pipeline(
        model,
        "mixed-precision{budget=0.5 metric=weight_bytes hw=spatten samples=4}",
        quiet=True,
        calibration=_digits_calib(8),
    )
    assert abs(evaluate(model, limit=limit).correct - fp) <= limit // 100


def test_unreachable_budget_names_pass_option_and_best() -> None:
    model = build("digits-vit")
    with pytest.raises(WispError, match=r"mixed-precision: budget=0.2: .*best reachable is [\d,]+"):
        run_pipeline(model, "mixed-precision{budget=0.2 hw=edge}", quiet=True)
    with pytest.raises(WispError, match=r"mixed-precision: limit=1000: .*best reachable"):
        run_pipeline(model, "mixed-precision{limit=1000 metric=energy}", quiet=True)


@pytest.mark.parametrize(
    "opts,msg",
    [
        ("candidates=4,6", "candidates=4,6: bits must be 4, 8 or 16"),
        ("metric=flops", "metric=flops"),
        ("sensitivity=hessian", "sensitivity=hessian"),
        ("hw=nope", "hw=nope"),
        ("granularity=group:48", "group size 48 does not divide K = 64"),
        ("calib=max", "calib=max"),
    ],
)
def test_bad_options(opts: str, msg: str) -> None:
    model = build("digits-vit")
    with pytest.raises(WispError, match=msg.replace("(", r"\(")):
        run_pipeline(model, f"mixed-precision{{{opts}}}", quiet=True)


def test_options_parse() -> None:
    (p,) = parse_pipeline("mixed-precision{candidates=4,8,16 metric=energy granularity=group:32}")
    assert p.candidates == (4, 8, 16) and p.metric == "energy" and p.granularity == "group:32"
