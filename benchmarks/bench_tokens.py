"""Token and head pruning on digits-vit (360 test images, no fine-tuning), spatten config.

    python benchmarks/bench_tokens.py [--keeps 0.9,0.7,0.5,0.3] [--no-npu] [--only fact]
                                      [--config spatten|fact]

For each method (spatten, tps, evit, topk) and keep ratio (ramp schedule: the first layer keeps
all tokens, the kept fraction falls linearly to `keep` at the last layer), plus a few fixed
schedules, head pruning, FACT prediction and a combined pipeline:

- accuracy and the mean KL(dense ‖ pruned) of the output softmax, reference executor, 360 images;
- for pipelines the backend lowers (every token-prune method, head-prune, eager-predict,
  structured-prune, 2:4, quantize): modeled cycles, DRAM
  bytes and energy per inference on the ISA interpreter (one image: token pruning has static
  shapes, so the cost does not depend on the image), and the interpreter's accuracy on all 360
  images with the number of predictions agreeing with the reference (unless --no-npu).

`--only fact` runs dense and the FACT rows only (eager prediction, its int8 FFN, and the
mixed-precision FFN `mixed-ffn`: predicted-unimportant token rows at INT4-MSB).

eager-predict is lowered (PREDICT/TOPK masks bit-exact with the reference). head-prune's
cost does not depend on which heads survive (every head costs the same), so one image gives it.
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
from backend.errors import BackendError  # noqa: E402
from backend.interpreter import run  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.datasets import load_digits_test  # noqa: E402
from compiler.models import build  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from compiler.progress import QUIET  # noqa: E402

METHODS = ("spatten", "tps", "evit", "topk")
STRUCT = "structured-prune{target=macs ratio=0.3 criterion=fisher refit=true hw=spatten}"
FACT_Q = "eager-predict{topk=32},quantize{weights=int8}"
FACT_ROWS = (  # the int8 FFN, then the mixed-precision FFN at three int8 fractions
    FACT_Q,
    f"{FACT_Q},mixed-ffn{{int8=0.5}}",
    f"{FACT_Q},mixed-ffn{{int8=0.25}}",
    f"{FACT_Q},mixed-ffn{{int8=0.0}}",
)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def logits(model, images: np.ndarray) -> np.ndarray:
    return np.stack([reference.run(model, {"image": x})["out0"][0] for x in images])


def row(spec: str, images, labels, dense_p, cfg, npu: bool) -> str:
    m = build("digits-vit")
    if spec:
        run_pipeline(m, spec, quiet=True)
    z = logits(m, images)
    acc = (z.argmax(1) == labels).mean()
    p = softmax(z)
    kl = float((dense_p * (np.log(dense_p) - np.log(p))).sum(1).mean())
    try:
        prog = compile_module(m.module, m.weights, cfg).program
    except BackendError:
        return f"| `{spec or 'dense'}` | {100 * acc:.2f} | {kl:.4f} | — | — | — | — |"
    rep = run(prog, {"image": images[0]}, cfg).report
    cost = f"{rep.cycles:,} | {rep.dram_read + rep.dram_write:,} | {rep.energy_total_pj / 1e6:.2f}"
    agree = "—"
    if npu:
        preds = [run(prog, {"image": x}, cfg).outputs["out0"].argmax() for x in images]
        npu_acc = (np.array(preds) == labels).mean()
        same = int((np.array(preds) == z.argmax(1)).sum())
        agree = f"{100 * npu_acc:.2f} ({same}/{len(labels)})"
    return f"| `{spec or 'dense'}` | {100 * acc:.2f} | {kl:.4f} | {cost} | {agree} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keeps", default="0.9,0.7,0.5,0.3")
    ap.add_argument("--no-npu", action="store_true", help="skip the 360-image interpreter runs")
    ap.add_argument("--only", choices=("all", "fact"), default="all", help="which rows to run")
    ap.add_argument("--config", default="spatten", help="NPU config (default spatten)")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    args = ap.parse_args()
    QUIET.set(args.quiet)
    start = time.perf_counter()
    keeps = [float(k) for k in args.keeps.split(",")]
    for line in table(keeps, not args.no_npu, only=args.only, config=args.config):
        print(line, flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


def table(
    keeps: list[float], npu: bool = True, only: str = "all", config: str = "spatten"
) -> Iterator[str]:
    """The markdown table, line by line (rows as they are measured)."""
    images, labels = load_digits_test()
    cfg = load_config(config)
    dense_p = softmax(logits(build("digits-vit"), images))
    specs = [""]
    for keep in keeps:
        specs += [f"token-prune{{method={m} keep={keep}}}" for m in METHODS]
    specs += [
        "token-prune{method=topk keep=0.5 schedule=step start=1}",
        "token-prune{method=tps keep=0.5 schedule=step start=1}",
        "token-prune{method=topk keep=0.6 schedule=each start=1}",
        "token-prune{method=spatten keep=0.6 schedule=each start=1}",
        "token-prune{method=topk keep=0.4 schedule=step start=1}",
        "head-prune{keep=3}",
        "head-prune{keep=2}",
        "eager-predict{topk=32}",
        "eager-predict{topk=16}",
        "eager-predict{topk=32 onehot=true}",
        "eager-predict{topk=8 kv_tile=8}",
        f"{STRUCT},sparsify-2-4{{refit=true}}",
        f"{STRUCT},sparsify-2-4{{refit=true}},token-prune{{method=topk keep=0.5 schedule=step start=1}}",
        f"{STRUCT},sparsify-2-4{{refit=true}},quantize{{weights=int8}},"
        "token-prune{method=topk keep=0.4 schedule=step start=1}",
        *FACT_ROWS,
    ]
    if only == "fact":
        specs = ["", "eager-predict{topk=32}", *FACT_ROWS]
    yield ("| pipeline | accuracy % (reference) | KL to dense | cycles | DRAM B | energy uJ |"
           " interpreter accuracy % (agreeing) |")  # fmt: skip
    yield "|---|---|---|---|---|---|---|"
    for spec in specs:
        yield row(spec, images, labels, dense_p, cfg, npu)


if __name__ == "__main__":
    main()
