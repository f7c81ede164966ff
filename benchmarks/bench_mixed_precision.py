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
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from backend.config import load_config  # noqa: E402
from compiler.calibration import calibration_for  # noqa: E402
from compiler.evaluate import evaluate  # noqa: E402
from compiler.models import build  # noqa: E402
from dialects.nn_base import shape_of  # noqa: E402
from passes.latency import linear_cost, module_cycles, op_cycles  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="edge,spatten")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--limit", type=int, default=360)
    ap.add_argument("--metrics", default="cycles,energy,weight_bytes")
    ap.add_argument("--granularity", default="channel", help="channel, tensor or group:G")
    args = ap.parse_args()
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
    shapes = {}
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
