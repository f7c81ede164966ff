"""Quantization on digits-vit: accuracy and modeled cost of fp16 / W8A8 / W4A8 / mixed precision /
2:4 + W8A8 / prune + 2:4 + W8A8, per hardware config, in one run.

    python benchmarks/bench_quant.py [--configs spatten,edge] [--limit N] [--shapes]

Per variant and config: the pipeline is run (calibration split only), the program compiled for the
config and all 360 test images run on the ISA interpreter. Printed: interpreter accuracy (measured),
the reference executor's accuracy on the same compressed model, predictions agreeing, the output KL
divergence to the fp32 model (reference, mean over images), mean cycles / DRAM bytes / energy per
image (measured: interpreter), and the program's data-section bytes (weights as laid out). `--shapes`
adds deit-small and bert-base (random weights) fp16 vs W8A8 DRAM traffic / compulsory bytes from the
static report (estimated: cost model). `--progressive` prints the progressive-quantization table
instead (SpAtten's MSB-first K with LSB refetch, per threshold, against dense fp16).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from backend.compile import compile_module  # noqa: E402
from backend.config import load_config  # noqa: E402
from backend.interpreter import run  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.evaluate import compare, dataset_of  # noqa: E402
from compiler.loading import load_model  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from compiler.progress import QUIET  # noqa: E402
from passes.context import PassError  # noqa: E402

PRUNE = "structured-prune{target=macs ratio=0.3 criterion=fisher refit=true}"


def variants(config: str) -> dict[str, str]:
    metric = "cycles" if config == "edge" else "energy"
    full = "weights=int8 attn=int8 stream=int8"
    return {
        "fp16": "canonicalize",
        "W8A8 (linears)": "quantize{weights=int8}",
        "W8A8 + int8 attention": "quantize{weights=int8 attn=int8}",
        "W8A8 + int8 attention + int8 stream": f"quantize{{{full}}}",
        "W4A8 rtn channel": "quantize{weights=int4}",
        "W4A8 rtn group:32": "quantize{weights=int4 granularity=group:32}",
        "W4A8 gptq group:32": "quantize{weights=int4 granularity=group:32 method=gptq}",
        f"mixed 4/8, 50% fp16 {metric}": (
            f"mixed-precision{{budget=0.5 metric={metric} hw={config} candidates=4,8}}"
        ),
        f"mixed 4/8, 70% fp16 {metric}": (
            f"mixed-precision{{budget=0.7 metric={metric} hw={config} candidates=4,8}}"
        ),
        "2:4 + W8A8": f"sparsify-2-4{{refit=true}},quantize{{{full}}}",
        "prune 30% + 2:4 + W8A8": f"{PRUNE},sparsify-2-4{{refit=true}},quantize{{{full}}}",
    }


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def kl_to(model: Model, base_probs: np.ndarray, images: np.ndarray, name: str) -> float:
    probs = np.stack(
        [_softmax(reference.run(model, {name: im})["out0"].reshape(-1)) for im in images]
    )
    return float(np.mean(np.sum(base_probs * np.log(base_probs / np.maximum(probs, 1e-30)), -1)))


def measure(label: str, spec: str, config: str, limit: int | None, base: np.ndarray) -> str:
    model = load_model("digits-vit")
    t0 = time.perf_counter()
    try:
        run_pipeline(model, spec, quiet=True)
    except (WispError, PassError) as e:
        return f"| {label} | {config} | not reached: {e} | | | | | | | |"
    t_pass = time.perf_counter() - t0
    cfg = load_config(config)
    program = compile_module(model.module, model.weights, cfg).program

    npu, ref, agree = compare(model, lambda x: run(program, x, cfg), limit=limit)
    _, images, _ = dataset_of(model, limit)
    (name,) = model.input_specs()
    kl = kl_to(model, base, images, name)
    return (
        f"| {label} | {config} | {100 * npu.accuracy:.2f} | {100 * ref.accuracy:.2f} |"
        f" {agree}/{npu.total} | {kl:.4f} | {npu.cycles:,.0f} | {npu.dram_bytes:,.0f} |"
        f" {npu.energy_uj:.2f} | {len(program.data):,} | {t_pass:.1f} |"
    )


def traffic_rows() -> list[str]:
    """deit-small and bert-base fp16 vs W8A8: DRAM traffic / compulsory bytes and cycles
    (interpreter, timing only; compulsory as in bench_compile.py)."""
    from bench_compile import compulsory_bytes

    from compiler.models.zoo import build

    rows = [
        "| model | config | fp16 traffic/compulsory | W8A8 (+int8 attention, stream) traffic/compulsory |"
        " fp16 DRAM MB | W8A8 DRAM MB | fp16 cycles | W8A8 cycles | calibrate+quantize s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("deit-small", "bert-base"):
        models = {}
        for spec in ("canonicalize", "quantize{weights=int8 attn=int8 stream=int8 samples=8}"):
            m = build(name)
            t0 = time.perf_counter()
            run_pipeline(m, spec, quiet=True)
            models[spec] = (m, time.perf_counter() - t0)
        for config in ("spatten", "fact"):
            figs = []
            for m, _ in models.values():
                c = compile_module(m.module, m.weights, config)
                r = run(c.program, None, config, timing_only=True).report
                traffic = r.dram_read + r.dram_write
                figs.append((traffic / compulsory_bytes(c), traffic / 1e6, r.cycles))
            (rf, df, cf), (rq, dq, cq) = figs
            t_q = list(models.values())[1][1]
            rows.append(
                f"| {name} | {config} | {rf:.2f} | {rq:.2f} | {df:.1f} | {dq:.1f} | {cf:,} |"
                f" {cq:,} | {t_q:.1f} |"
            )
    return rows


# Table columns that vary with the machine (scripts/refresh_docs.py masks them when checking docs).
VOLATILE = ("pass s",)


def table(configs: list[str], limit: int | None = None) -> Iterator[str]:
    """The digits-vit table, line by line (rows as they are measured)."""
    fp = load_model("digits-vit")
    _, images, _ = dataset_of(fp, limit)
    (name,) = fp.input_specs()
    base = np.stack([_softmax(reference.run(fp, {name: im})["out0"].reshape(-1)) for im in images])
    yield (
        "| variant | config | accuracy % (interpreter) | accuracy % (reference) | agree |"
        " KL to fp32 | cycles | DRAM B | energy uJ | data B | pass s |"
    )
    yield "|---|---|---|---|---|---|---|---|---|---|---|"
    for config in configs:
        for label, spec in variants(config).items():
            yield measure(label, spec, config, limit, base)


PROGRESSIVE_THRESHOLDS = (0.0, 0.02, 0.1)


def progressive_rows(thresholds: tuple[float, ...] = PROGRESSIVE_THRESHOLDS) -> Iterator[str]:
    """digits-vit on spatten, dense fp16 then `progressive-quant{threshold=T}` for each T: the
    interpreter and reference accuracy over the 360 test images (measured), and the pass report's
    refetch fraction and K bytes (16 calibration samples)."""
    cfg = load_config("spatten")
    yield (
        "| `-p` | accuracy % (interpreter / reference) | agree | blocks refetched (calibration)"
        " | K bytes / inference (× fp16) | cycles | DRAM B |"
    )
    yield "|---|---|---|---|---|---|---|"
    for t in (None, *thresholds):
        spec = "" if t is None else f"progressive-quant{{threshold={t}}}"
        model = load_model("digits-vit")
        reports = run_pipeline(model, spec, quiet=True) if spec else []
        program = compile_module(model.module, model.weights, cfg).program

        npu, ref, agree = compare(model, lambda x, program=program: run(program, x, cfg))
        refetch, kbytes = "—", "—"
        if reports:
            rep = reports[-1].report
            k = rep["k_bytes"]
            refetch = f"{100 * rep['refetch_fraction']:.1f}%"
            kbytes = f"{k['progressive']:,} ({k['progressive'] / k['fp16']:.2f}×)"
        yield (
            f"| `{spec or '(none): dense fp16'}` | {100 * npu.accuracy:.2f} / {100 * ref.accuracy:.2f}"
            f" | {agree}/{npu.total} | {refetch} | {kbytes} | {npu.cycles:,.0f} |"
            f" {npu.dram_bytes:,.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--configs", default="spatten,edge")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--shapes", action="store_true")
    ap.add_argument("--progressive", action="store_true", help="the progressive-quant table only")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    args = ap.parse_args()
    QUIET.set(args.quiet)
    if args.progressive:
        for line in progressive_rows():
            print(line, flush=True)
        return
    for line in table([c for c in args.configs.split(",") if c], args.limit):
        print(line, flush=True)
    if args.shapes:
        print("\n" + "\n".join(traffic_rows()))


if __name__ == "__main__":
    main()
