"""mixed-precision on digits-vit: test accuracy vs modeled cost, mixed precision vs uniform int8 /
int4 (and fp16), on `edge` and `spatten`, for budgets in cycles and in energy.

    python benchmarks/bench_mixed_precision.py [--configs edge,spatten] [--samples 16] [--limit 360]
        [--metrics cycles,energy,weight_bytes] [--granularity channel]

Sensitivities (noise and rounding KL, one layer at a time) are measured once on the calibration
split; each budget is then allocated exactly (passes.mixed_precision.allocate) and the model is
quantized with passes.quantize.quantize_layers (W·A8, per-channel scales unless
--granularity says otherwise, min-max activations).
Accuracy: the reference executor on the bundled test split. Cost: passes.latency.linear_cost of
the 25 linear layers (the cost model on the lowering's instructions), plus `rest`: the fp16 cycles
of every other op (latency.op_cycles), so `model cyc` is the modeled whole-model estimate.

    python benchmarks/bench_mixed_precision.py --measured [--configs edge,spatten] [--limit 360]
        [--budgets 0.66,0.70,...]

`--measured`: the same variants compiled (backend.compile.compile_module) and run on the ISA
interpreter for every test image: uniform int8, uniform int4 (per channel and group:32), and mixed
4/8 (per channel) at several budgets in the config's metric (cycles on edge, energy on spatten;
default: five budgets evenly inside the range between uniform int4 and int8). Printed per variant:
interpreter accuracy, output KL to the fp32 model (mean over images), measured cycles / energy /
DRAM bytes per image, and the predicted (cost model) figures: the linear layers by linear_cost
plus the rest of the model by latency.op_cycles in fp16, and the metric as a fraction of fp16.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections.abc import Mapping  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from backend.compile import compile_module  # noqa: E402
from backend.config import Config, load_config  # noqa: E402
from backend.interpreter import run as interpret  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.calibration import calibration_for  # noqa: E402
from compiler.evaluate import dataset_of, evaluate  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.models import build  # noqa: E402
from dialects.nn_base import shape_of  # noqa: E402
from passes.context import Calibration  # noqa: E402
from passes.latency import LinearCost, linear_cost, module_cycles, op_cycles  # noqa: E402
from passes.mixed_precision import allocate, layer_sensitivity, precision_rates  # noqa: E402
from passes.quant_math import Granularity  # noqa: E402
from passes.quantize import LayerSpec, QuantOptions, quantizable_layers, quantize_layers  # noqa: E402

BITS = (4, 8)
GRAN = Granularity("channel")  # --granularity replaces it


def accuracy(bits: dict[str, int], calib, limit: int, cache: dict) -> float:  # noqa: ANN001
    key = tuple(sorted(bits.items()))
    if key not in cache:
        model = build("digits-vit")
        layers = [lay for lay in quantizable_layers(model.module) if bits[lay.name] != 16]
        specs = {lay.name: LayerSpec(bits[lay.name], GRAN) for lay in layers}
        if layers:
            quantize_layers(model.module, model.weights, calib, layers, specs, QuantOptions())
        r = evaluate(model, limit=limit)
        cache[key] = 100.0 * r.correct / r.total
    return cache[key]


def _groups(shape: tuple[int, int, int], bits: int) -> int:
    return 1 if bits == 16 else GRAN.groups(shape[2])


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(-1)
    e = np.exp(x - x.max())
    return e / e.sum()


@dataclass
class Measured:
    """One variant on the interpreter over the test images."""

    accuracy: float  # %
    correct: int
    total: int
    kl: float  # mean KL(fp32 reference ‖ interpreter), nats
    cycles: float  # means per image
    energy_uj: float
    dram_bytes: float


def run_on_npu(model: Model, cfg: Config, base: np.ndarray, limit: int) -> Measured:
    """Compile `model` for `cfg`, run every test image on the interpreter."""
    program = compile_module(model.module, model.weights, cfg).program
    logits: list[np.ndarray] = []

    def on_npu(x: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], object]:
        result = interpret(program, dict(x), cfg)
        logits.append(np.asarray(result.outputs["out0"]))
        return result.outputs, result.report

    r = evaluate(model, limit=limit, runner=on_npu)
    probs = np.stack([_softmax(v) for v in logits])
    kl = float(np.mean(np.sum(base * np.log(base / np.maximum(probs, 1e-30)), axis=-1)))
    return Measured(
        100.0 * r.correct / r.total, r.correct, r.total, kl, r.cycles, r.energy_uj, r.dram_bytes
    )


def _quantized(bits: Mapping[str, int], gran: Granularity, calib: Calibration) -> Model:
    model = build("digits-vit")
    layers = [lay for lay in quantizable_layers(model.module) if bits[lay.name] != 16]
    specs = {lay.name: LayerSpec(bits[lay.name], gran) for lay in layers}
    if layers:
        quantize_layers(model.module, model.weights, calib, layers, specs, QuantOptions())
    return model


def linear_total(
    bits: Mapping[str, int],
    gran: Granularity,
    cfg: Config,
    shapes: Mapping[str, tuple[int, int, int]],
) -> LinearCost:
    """linear_cost summed over the layers (`bits` per layer, scales by `gran`) on `cfg`."""
    cyc = wb = db = 0
    pj = 0.0
    for nm, (m, n, k) in shapes.items():
        c = linear_cost(m, n, k, bits[nm], cfg, 1 if bits[nm] == 16 else gran.groups(k))
        cyc, pj, wb, db = cyc + c.cycles, pj + c.energy_pj, wb + c.weight_bytes, db + c.dram_bytes
    return LinearCost(cyc, pj, wb, db)


def measured_main(args: argparse.Namespace) -> None:
    """Mixed vs uniform, compiled and run on the interpreter (see the module docstring)."""
    fp = build("digits-vit")
    calib = calibration_for(fp, samples=max(args.samples, 32))
    layers = quantizable_layers(fp.module)
    names = [lay.name for lay in layers]
    chan, g32 = Granularity("channel"), Granularity.parse("group:32")
    t0 = time.perf_counter()
    sens = layer_sensitivity(
        fp.module, fp.weights, calib, layers, BITS, chan, ["noise"], args.samples
    )["noise"]
    print(
        f"sensitivity (noise, {args.samples} calibration samples): {time.perf_counter() - t0:.1f} s"
    )
    _, images, _ = dataset_of(fp, args.limit)
    (input_name,) = fp.input_specs()
    base = np.stack([_softmax(reference.run(fp, {input_name: im})["out0"]) for im in images])
    shapes: dict[str, tuple[int, int, int]] = {}
    for lay in layers:
        x, (n, k) = shape_of(lay.op.input.type), shape_of(lay.op.weight.type)
        shapes[lay.name] = (int(np.prod(x[:-1])), n, k)
    for hw in args.configs.split(","):
        cfg = load_config(hw)
        metric = args.metric or ("cycles" if hw == "edge" else "energy")

        def lin(bits: Mapping[str, int], gran: Granularity, cfg: Config = cfg) -> LinearCost:
            return linear_total(bits, gran, cfg, shapes)

        rest = module_cycles(fp.module, cfg) - sum(op_cycles(lay.op, cfg) for lay in layers)
        fp16 = lin(dict.fromkeys(names, 16), chan)
        rows: list[tuple[str, dict[str, int], Granularity]] = [
            ("fp16", dict.fromkeys(names, 16), chan),
            ("uniform int8 (channel)", dict.fromkeys(names, 8), chan),
            ("uniform int4 (channel)", dict.fromkeys(names, 4), chan),
            ("uniform int4 (group:32)", dict.fromkeys(names, 4), g32),
        ]
        lo = lin(dict.fromkeys(names, 4), chan).metric(metric) / fp16.metric(metric)
        hi = lin(dict.fromkeys(names, 8), chan).metric(metric) / fp16.metric(metric)
        lo, hi = min(lo, hi), max(lo, hi)
        if args.budgets:
            fracs = [float(f) for f in args.budgets.split(",")]
        else:
            fracs = [round(float(f), 3) for f in np.linspace(lo, hi, 7)[1:-1]]
        for frac in fracs:
            costs = []
            for nm in names:
                m, n, k = shapes[nm]
                costs.append([linear_cost(m, n, k, b, cfg).metric(metric) for b in BITS])
            alloc = allocate(
                costs, [[sens[nm][b] for b in BITS] for nm in names], frac * fp16.metric(metric)
            )
            if alloc is None:
                print(f"{hw}: budget {frac} of fp16 {metric}: no allocation reaches it")
                continue
            bits = {nm: BITS[j] for nm, j in zip(names, alloc.choice, strict=True)}
            n4 = sum(1 for v in bits.values() if v == 4)
            rows.append((f"mixed <= {frac:.3f} {metric} ({n4}/{len(names)} int4)", bits, chan))
        print(f"\n== {precision_rates(cfg)}; budget metric: {metric}")
        print(
            "| variant | accuracy % (interpreter) | correct | KL to fp32 | cycles (measured) |"
            " energy uJ (measured) | DRAM B (measured) | cycles (predicted) |"
            " linear energy uJ (predicted) | linear " + metric + "/fp16 (predicted) |\n"
            "|---|---|---|---|---|---|---|---|---|---|"
        )
        for label, bits, gran in rows:
            model = _quantized(bits, gran, calib)
            r = run_on_npu(model, cfg, base, args.limit)
            p = lin(bits, gran)
            print(
                f"| {label} | {r.accuracy:.2f} | {r.correct}/{r.total} | {r.kl:.4f} |"
                f" {r.cycles:,.0f} | {r.energy_uj:.2f} | {r.dram_bytes:,.0f} |"
                f" {p.cycles + rest:,} | {p.energy_pj / 1e6:.2f} |"
                f" {p.metric(metric) / fp16.metric(metric):.3f} |",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--configs", default="edge,spatten")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--limit", type=int, default=360)
    ap.add_argument("--metrics", default="cycles,energy,weight_bytes")
    ap.add_argument("--granularity", default="channel", help="channel, tensor or group:G")
    ap.add_argument("--measured", action="store_true", help="compile and run on the interpreter")
    ap.add_argument("--budgets", default="", help="--measured: budgets as fractions of fp16")
    ap.add_argument("--metric", default="", help="--measured: cycles|energy (default per config)")
    args = ap.parse_args()
    if args.measured:
        measured_main(args)
        return
    global GRAN
    GRAN = Granularity.parse(args.granularity)

    fp = build("digits-vit")
    calib = calibration_for(fp, samples=max(args.samples, 32))
    layers = quantizable_layers(fp.module)
    t0 = time.perf_counter()
    sens = layer_sensitivity(
        fp.module, fp.weights, calib, layers, BITS, GRAN, ["noise", "rounding"], args.samples
    )
    t_sens = time.perf_counter() - t0
    names = [lay.name for lay in layers]
    print(f"digits-vit: {len(layers)} linear layers, sensitivity on {args.samples} calibration")
    print(f"samples in {t_sens:.1f} s (KL of softmax logits, one layer perturbed at a time)")
    for b in BITS:
        rho = spearman(
            [sens["noise"][n][b] for n in names], [sens["rounding"][n][b] for n in names]
        )
        top = sorted(names, key=lambda n: -sens["noise"][n][b])[:3]
        print(f"  int{b}: noise vs rounding rank correlation {rho:.2f}; most sensitive {top}")
    cache: dict = {}
    shapes: dict[str, tuple[int, int, int]] = {}
    for lay in layers:
        x, (n, k) = shape_of(lay.op.input.type), shape_of(lay.op.weight.type)
        shapes[lay.name] = (int(np.prod(x[:-1])), n, k)
    for hw in args.configs.split(","):
        cfg = load_config(hw)
        cost = {
            name: {
                b: linear_cost(*shapes[name], b, cfg, _groups(shapes[name], b)) for b in (4, 8, 16)
            }
            for name in names
        }
        rest = module_cycles(fp.module, cfg) - sum(op_cycles(lay.op, cfg) for lay in layers)
        print(f"\n== {precision_rates(cfg)}")
        for metric in args.metrics.split(","):
            fp16 = sum(cost[n][16].metric(metric) for n in names)
            print(
                f"-- budget in {metric}; linear layers' fp16 {metric} {fp16:,.0f}; "
                f"rest of the model {rest:,} cycles (fp16)"
            )
            print(
                f"{'allocation':<26} {'acc %':>6} {'lin cyc':>8} {'model cyc':>9} "
                f"{'lin uJ':>7} {'w bytes':>8} {metric + '/fp16':>12}"
            )

            rows = [
                ("fp16", dict.fromkeys(names, 16)),
                ("uniform int8", dict.fromkeys(names, 8)),
                ("uniform int4", dict.fromkeys(names, 4)),
            ]
            lo = sum(cost[n][4].metric(metric) for n in names) / fp16
            hi = sum(cost[n][8].metric(metric) for n in names) / fp16
            lo, hi = min(lo, hi), max(lo, hi)
            for frac in np.linspace(lo, hi, 6)[1:-1]:
                alloc = allocate(
                    [[cost[n][b].metric(metric) for b in BITS] for n in names],
                    [[sens["noise"][n][b] for b in BITS] for n in names],
                    frac * fp16,
                )
                assert alloc is not None
                bits = {n: BITS[j] for n, j in zip(names, alloc.choice, strict=True)}
                n4 = sum(1 for v in bits.values() if v == 4)
                rows.append((f"mixed <={frac:.3f} ({n4} int4)", bits))
            for label, bits in rows:
                cyc = sum(cost[n][bits[n]].cycles for n in names)
                uj = sum(cost[n][bits[n]].energy_pj for n in names) / 1e6
                wb = sum(cost[n][bits[n]].weight_bytes for n in names)
                frac = sum(cost[n][bits[n]].metric(metric) for n in names) / fp16
                acc = accuracy(bits, calib, args.limit, cache)
                print(
                    f"{label:<26} {acc:6.2f} {cyc:8,} {cyc + rest:9,} {uj:7.2f} {wb:8,} {frac:12.3f}"
                )


if __name__ == "__main__":
    main()
