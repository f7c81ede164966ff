"""mixed-precision: per-layer weight bit widths under a modeled cost budget (NIPQ, training-free).

    mixed-precision{budget=0.5 metric=cycles hw=edge candidates=4,8 sensitivity=noise samples=16}

1. **Sensitivity.** For each chosen linear and each candidate width b, the weight of that one layer
   is perturbed and the calibration samples are run through the executor; the sensitivity is the
   mean KL(softmax(fp logits) ‖ softmax(perturbed logits)) over samples (and output rows). Two
   perturbations are measured: NIPQ's pseudo-quantization noise, w + s·U(−½, ½) with s the b-bit
   step of that weight (per channel / tensor / group, as `granularity` says), and the true
   round-to-nearest error. `sensitivity=` picks which one drives the allocation; the other is
   reported beside it. Width 16 (keep the layer in fp16) may be a candidate; its perturbation is
   the fp16 cast of the weight.
2. **Cost.** Each layer at each width is priced by `passes.latency.linear_cost` (the backend's cost
   model on the layer's LOAD / MATMUL / epilogue instructions) on `hw`, in `metric`: cycles, energy
   (pJ) or weight_bytes.
3. **Allocation.** Minimise Σ sensitivity subject to Σ cost ≤ budget, a multiple-choice knapsack
   solved exactly by dynamic programming over the Pareto frontier of (cost, sensitivity) partial
   sums (no cost discretisation; a frontier beyond `max_states` is thinned on a cost grid and the
   report says `exact: false`). The budget is `budget` × the fp16 cost of the chosen layers, or
   the absolute `limit` (in the metric's unit) when it is > 0. A budget no allocation meets is a
   PassError that states the cheapest reachable cost.
4. **Rewrite.** The chosen widths go to the quantize pass's `quantize_layers` (int8 activations,
   `calib`, `method`); layers given 16 bits stay floating point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from backend.config import Config, ConfigError, load_config
from backend.cost import matmul_rate
from backend.wording import plural
from dialects.nn_base import shape_of
from passes.context import Calibration, PassError, add_report, calibration_of, weights_of
from passes.latency import LINEAR_BITS, LinearCost, linear_cost
from passes.quant_math import (
    CALIB_METHODS,
    Granularity,
    dequantize_weight,
    expand_scales,
    quantize_rtn,
    weight_scales,
)
from passes.quantize import METHODS, Layer, LayerSpec, QuantOptions, quantize_layers, select_layers
from passes.search_decl import TARGET, Knob, Stage, grid

METRICS = ("cycles", "energy", "weight_bytes")
SENSITIVITIES = ("noise", "rounding")


# ---- sensitivity --------------------------------------------------------------------------------


def output_value(module: ModuleOp) -> SSAValue:
    """The first result of the module's function (the logits)."""
    for op in module.walk():
        if isinstance(op, func.ReturnOp) and op.arguments:
            return op.arguments[0]
    raise PassError("mixed-precision: the module returns nothing to measure sensitivity on")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kl_divergence(ref_logits: np.ndarray, logits: np.ndarray) -> float:
    """Mean over rows of KL(softmax(ref) ‖ softmax(logits)), in nats."""
    lp, lq = _log_softmax(ref_logits), _log_softmax(logits)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=-1)))


def perturbed_weight(
    w: np.ndarray, bits: int, gran: Granularity, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """`w` with b-bit quantization noise (s·U(−½, ½), s the step) or the true RTN error."""
    w = np.asarray(w, np.float32)
    if bits == 16:
        return w.astype(np.float16).astype(np.float32)
    scales = weight_scales(w, bits, gran)
    if kind == "rounding":
        return dequantize_weight(quantize_rtn(w, scales, bits), scales).astype(np.float32)
    step = expand_scales(scales, w.shape)
    return (w + step * rng.uniform(-0.5, 0.5, w.shape)).astype(np.float32)


def layer_sensitivity(
    module: ModuleOp,
    weights: Mapping[str, np.ndarray],
    calib: Calibration,
    layers: Sequence[Layer],
    bits: Sequence[int],
    gran: Granularity,
    kinds: Sequence[str],
    samples: int,
    seed: int = 0,
) -> dict[str, dict[str, dict[int, float]]]:
    """kind → layer name → bits → mean output KL with only that layer's weight perturbed."""
    out_v = output_value(module)
    inputs = list(calib.inputs[:samples])
    ref = [calib.executor.values(module, weights, s)[out_v] for s in inputs]
    rng = np.random.default_rng(seed)
    result: dict[str, dict[str, dict[int, float]]] = {k: {} for k in kinds}
    for lay in layers:
        w = np.asarray(weights[lay.weight], np.float32)
        for kind in kinds:
            per_bits: dict[int, float] = {}
            for b in bits:
                trial = dict(weights)
                kls = []
                for s, r in zip(inputs, ref, strict=True):
                    # fresh noise per sample (an expectation over the noise); rounding is fixed
                    trial[lay.weight] = perturbed_weight(w, b, gran, kind, rng)
                    kls.append(kl_divergence(r, calib.executor.values(module, trial, s)[out_v]))
                per_bits[b] = float(np.mean(kls))
            result[kind][lay.name] = per_bits
    return result


# ---- allocation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """Option index per layer, its total cost and total sensitivity; `exact` unless thinned."""

    choice: tuple[int, ...]
    cost: float
    sensitivity: float
    exact: bool


def allocate(
    costs: Sequence[Sequence[float]],
    sens: Sequence[Sequence[float]],
    budget: float,
    max_states: int = 200_000,
) -> Allocation | None:
    """Minimise Σ sens[i][choice[i]] subject to Σ costs[i][choice[i]] ≤ budget (multiple-choice
    knapsack), by DP over the Pareto frontier of partial (cost, sensitivity) sums; None when no
    choice fits. Costs must be ≥ 0. Exact unless the frontier outgrows `max_states`."""
    n = len(costs)
    if n == 0:
        return Allocation((), 0.0, 0.0, True)
    tol = 1e-9 * max(1.0, abs(budget))
    mins = [min(c) for c in costs]
    rest = np.concatenate([np.cumsum(mins[::-1])[::-1], [0.0]])  # rest[i] = Σ_{j≥i} min cost
    if rest[0] > budget + tol:
        return None
    f_cost, f_sens = np.zeros(1), np.zeros(1)
    parents: list[np.ndarray] = []
    options: list[np.ndarray] = []
    exact = True
    for i in range(n):
        c = np.asarray(costs[i], np.float64)
        s = np.asarray(sens[i], np.float64)
        nc = (f_cost[:, None] + c[None, :]).ravel()
        ns = (f_sens[:, None] + s[None, :]).ravel()
        idx = np.flatnonzero(nc + rest[i + 1] <= budget + tol)
        order = idx[np.lexsort((ns[idx], nc[idx]))]  # by cost, then sensitivity
        # Pareto: keep a state only if its sensitivity beats every cheaper (or equal-cost) one
        best_before = np.minimum.accumulate(ns[order])
        keep = np.ones(order.size, bool)
        keep[1:] = ns[order][1:] < best_before[:-1]
        order = order[keep]
        if order.size > max_states:
            exact = False
            grid = np.floor(nc[order] / (budget / max_states + tol)).astype(np.int64)
            _, first = np.unique(grid, return_index=True)  # lowest sensitivity per cell: first
            order = order[first]
        f_cost, f_sens = nc[order], ns[order]
        parents.append(order // len(c))
        options.append(order % len(c))
    best = int(np.argmin(f_sens))
    choice = [0] * n
    for i in range(n - 1, -1, -1):
        choice[i] = int(options[i][best])
        best = int(parents[i][best])
    total_c = float(sum(costs[i][j] for i, j in enumerate(choice)))
    total_s = float(sum(sens[i][j] for i, j in enumerate(choice)))
    return Allocation(tuple(choice), total_c, total_s, exact)


# ---- the pass -----------------------------------------------------------------------------------


def precision_rates(config: Config) -> str:
    """How fast each MATMUL precision runs on a config (reduction elements per PE per cycle)."""
    r = {b: matmul_rate(m, config) for b, m in ((16, "fp16"), (8, "int8"), (4, "int4w"))}
    return f"{config.name}: MATMUL rate fp16 {r[16]:g}, int8 {r[8]:g}, int4w {r[4]:g} MAC/PE/cycle"


@dataclass(frozen=True)
class MixedPrecisionPass(ModulePass):
    """Per-layer weight bits (NIPQ noise sensitivity + exact knapsack) under a modeled cost budget."""

    name = "mixed-precision"
    search_stage: ClassVar[Stage] = Stage(30, "bits")

    budget: float | int = field(
        default=0.5,
        metadata={
            "search": Knob(grid(0.3, 0.45, 0.05)),
            "help": "budget as a fraction of the chosen layers' fp16 cost in metric",
        },
    )
    limit: float | int = field(
        default=0.0,
        metadata={
            "help": "absolute budget in the metric's unit (cycles, pJ, bytes); overrides budget when > 0"
        },
    )
    metric: str = field(
        default="cycles",
        metadata={
            "search": Knob(("weight_bytes",)),
            "help": "cost to budget: cycles | energy | weight_bytes",
        },
    )
    hw: str = field(
        default="spatten",
        metadata={
            "search": Knob((TARGET,)),
            "help": "NPU config name or .toml file the cost is modeled on",
        },
    )
    candidates: tuple[int, ...] = field(
        default=(4, 8), metadata={"help": "weight bit widths to choose from (16: stay fp16)"}
    )
    granularity: str = field(
        default="channel",
        metadata={"help": "weight scales: channel | tensor | group:G (G along K)"},
    )
    sensitivity: str = field(
        default="noise",
        metadata={"help": "noise (NIPQ pseudo-quantization) | rounding (true RTN error)"},
    )
    samples: int = field(
        default=16,
        metadata={
            "search": Knob((4,)),
            "help": "calibration samples for sensitivity and activation scales",
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the pseudo-quantization noise"})
    calib: str = field(
        default="minmax", metadata={"help": "activation calibration: minmax | percentile | mse"}
    )
    percentile: float = field(
        default=99.99, metadata={"help": "percentile of |x| for calib=percentile"}
    )
    method: str = field(default="rtn", metadata={"help": "weight rounding: rtn | gptq"})
    layers: str = field(
        default="", metadata={"help": "fnmatch patterns of layer names (default: every linear)"}
    )
    skip: str = field(
        default="", metadata={"help": "fnmatch patterns of layers left in floating point"}
    )
    max_states: int = field(
        default=200_000,
        metadata={"help": "Pareto states kept per layer before the DP thins (then inexact)"},
    )

    def _check(self) -> tuple[Config, Granularity, list[int]]:
        n = self.name
        if self.metric not in METRICS:
            raise PassError(f"{n}: metric={self.metric}: one of {', '.join(METRICS)}")
        if self.sensitivity not in SENSITIVITIES:
            raise PassError(f"{n}: sensitivity={self.sensitivity}: noise or rounding")
        bits = sorted(set(self.candidates))
        if not bits or any(b not in LINEAR_BITS for b in bits):
            raise PassError(
                f"{n}: candidates={','.join(map(str, self.candidates))}: bits must be 4, 8 or 16"
            )
        if not self.budget > 0 or self.limit < 0:
            raise PassError(f"{n}: budget={self.budget} limit={self.limit}: must be positive")
        if self.samples < 1:
            raise PassError(f"{n}: samples={self.samples}: must be >= 1")
        if self.calib not in CALIB_METHODS:
            raise PassError(f"{n}: calib={self.calib}: one of {', '.join(CALIB_METHODS)}")
        if self.method not in METHODS:
            raise PassError(f"{n}: method={self.method}: rtn or gptq")
        if self.max_states < 1:
            raise PassError(f"{n}: max_states={self.max_states}: must be >= 1")
        try:
            gran = Granularity.parse(self.granularity)
        except ValueError as e:
            raise PassError(f"{n}: granularity={self.granularity}: {e}") from None
        try:
            config = load_config(self.hw)
        except ConfigError as e:
            raise PassError(f"{n}: hw={self.hw}: {e}") from None
        return config, gran, bits

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        config, gran, bits = self._check()
        weights = weights_of(ctx, self.name)
        chosen = select_layers(op, self.layers, self.skip, self.name)
        if not chosen:
            add_report(ctx, self.name, {"notes": ["no linear layer to quantize"]})
            return
        costs: dict[str, dict[int, float]] = {}
        full: dict[str, dict[int, LinearCost]] = {}
        shapes: dict[str, tuple[int, int, int]] = {}
        for lay in chosen:
            x, (nn_, k) = shape_of(lay.op.input.type), shape_of(lay.op.weight.type)
            m = int(np.prod(x[:-1]))
            shapes[lay.name] = (m, nn_, k)
            full[lay.name] = {}
            for b in sorted({*bits, 16}):
                groups = 1 if b == 16 else _groups(gran, k, lay.name, self)
                if b == 4 and k % 2:
                    raise PassError(
                        f"{self.name}: layer '{lay.name}': int4 needs an even K, got {k}"
                    )
                full[lay.name][b] = linear_cost(m, nn_, k, b, config, groups)
            costs[lay.name] = {b: float(c.metric(self.metric)) for b, c in full[lay.name].items()}
        fp16 = sum(c[16] for c in costs.values())
        budget = self.limit if self.limit > 0 else self.budget * fp16
        what = f"limit={self.limit:g}" if self.limit > 0 else f"budget={self.budget:g}"
        unit = {"cycles": "cycles", "energy": "pJ", "weight_bytes": "bytes"}[self.metric]
        cheapest = sum(min(c[b] for b in bits) for c in costs.values())
        if cheapest > budget * (1 + 1e-9):
            raise PassError(
                f"{self.name}: {what}: no bit allocation over candidates "
                f"{','.join(map(str, bits))} keeps {self.metric} on {config.name} within "
                f"{budget:,.0f} {unit}; the best reachable is {cheapest:,.0f} {unit} "
                f"({cheapest / fp16:.3f} of the fp16 cost {fp16:,.0f}, budget={cheapest / fp16:.3f})"
            )
        calib = calibration_of(ctx, self.name)
        kinds = [self.sensitivity, *(k for k in SENSITIVITIES if k != self.sensitivity)]
        sens = layer_sensitivity(
            op, weights, calib, chosen, bits, gran, kinds, self.samples, self.seed
        )
        drive = sens[self.sensitivity]
        # layers reading one input (q, k, v) get one width: the lowering merges them into one GEMM
        # with the layer-norm prologue only when they agree (else the input goes through DRAM)
        tied: dict[SSAValue, list[Layer]] = {}
        for lay in chosen:
            tied.setdefault(lay.op.input, []).append(lay)
        units = list(tied.values())
        alloc = allocate(
            [[sum(costs[lay.name][b] for lay in u) for b in bits] for u in units],
            [[sum(drive[lay.name][b] for lay in u) for b in bits] for u in units],
            budget,
            self.max_states,
        )
        assert alloc is not None  # the cheapest allocation fits
        picked = {lay.name: bits[j] for u, j in zip(units, alloc.choice, strict=True) for lay in u}
        specs = {name: LayerSpec(b, gran) for name, b in picked.items() if b != 16}
        to_quantize = [lay for lay in chosen if picked[lay.name] != 16]
        opts = QuantOptions(
            calib=self.calib, percentile=self.percentile, method=self.method, samples=self.samples
        )
        qrep = quantize_layers(op, weights, calib, to_quantize, specs, opts) if to_quantize else {}
        layers = {
            lay.name: {
                "bits": picked[lay.name],
                "sensitivity": {str(b): drive[lay.name][b] for b in bits},
                "sensitivity_" + kinds[1]: {str(b): sens[kinds[1]][lay.name][b] for b in bits},
                "cost": {str(b): costs[lay.name][b] for b in sorted(costs[lay.name])},
                # the linear_cost arguments and all its figures at the chosen width (on `hw`), so
                # the compiler driver can set them beside the interpreter's measurement
                "shape_mnk": list(shapes[lay.name]),
                "groups": 1 if picked[lay.name] == 16 else gran.groups(shapes[lay.name][2]),
                "predicted": asdict(full[lay.name][picked[lay.name]]),
                **qrep.get(lay.name, {}),
            }
            for lay in chosen
        }
        counts = {b: sum(1 for v in picked.values() if v == b) for b in bits}
        notes = [
            f"{plural(len(chosen), 'layer')}: "
            + ", ".join(f"{counts[b]} at {'fp16' if b == 16 else f'int{b}'}" for b in bits),
            f"predicted {self.metric} {alloc.cost:,.0f} {unit} ≤ budget {budget:,.0f} "
            f"({alloc.cost / fp16:.3f} of fp16 {fp16:,.0f}) on {config.name}",
            precision_rates(config),
        ]
        add_report(
            ctx,
            self.name,
            {
                "layers": layers,
                "metric": self.metric,
                "hw": config.name,
                "budget": budget,
                "fp16_cost": fp16,
                "predicted_cost": alloc.cost,
                "budget_met": alloc.cost <= budget * (1 + 1e-9),
                "total_sensitivity": alloc.sensitivity,
                "exact": alloc.exact,
                "notes": notes,
            },
        )


def _groups(gran: Granularity, k: int, layer: str, p: MixedPrecisionPass) -> int:
    try:
        return gran.groups(k)
    except ValueError as e:
        raise PassError(f"{p.name}: granularity={p.granularity}: layer '{layer}': {e}") from None
