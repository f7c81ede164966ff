"""Generation benchmark: char-gpt, 128-character prompts of held-out Python source + 128
teacher-forced decode steps through the KV cache, per pipeline (figures measured by the interpreter).

    python benchmarks/bench_generate.py                  # 4 prompts, dense + int8 pipelines
    python benchmarks/bench_generate.py --prompts 1 --timing-only

For each pipeline: next-character accuracy of the decode steps (the argmax of each step against
the true next character; prefill predictions excluded), the same from the reference executor on
the same compressed forms, and per decode step the mean DRAM bytes, cycles and energy, plus the
growth of DRAM bytes from the first to the last cache bucket; host decode tokens/s of the
interpreter (compile time excluded); with kv-prune, the share of steps whose surviving cache
entries are the same on the interpreter as on the reference. Markdown table for docs/generation.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ.get("WISP_BLAS_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("WISP_BLAS_THREADS", "1"))

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.generation.forms import LanguageModel  # noqa: E402
from compiler.generation.lm_eval import heldout_text  # noqa: E402
from compiler.generation.session import Generator  # noqa: E402
from compiler.loading import load_model  # noqa: E402
from compiler.models.char_vocab import encode  # noqa: E402

PIPELINES = [
    ("dense fp16", ""),
    ("int8 weights (W8A8)", "quantize"),
    ("KV pruning, keep 64", "kv-prune{keep=64 recent=32}"),
    ("KV pruning, keep 32", "kv-prune{keep=32 recent=16}"),
    ("(baseline: last 32 only)", "kv-prune{keep=32 recent=32}"),
    ("KV pruning 32 + int8 weights", "quantize,kv-prune{keep=32 recent=16}"),
    ("KV pruning 32 + head pruning 3/4", "head-prune{keep=3},kv-prune{keep=32 recent=16}"),
    ("KV 32 + heads 3/4 + int8 weights", "quantize,head-prune{keep=3},kv-prune{keep=32 recent=16}"),
]
PROMPT, GENERATED = 128, 128


def windows(n: int) -> list[np.ndarray]:
    """n fixed windows of PROMPT + GENERATED held-out characters, evenly spaced."""
    ids = encode(heldout_text())
    span = PROMPT + GENERATED
    starts = np.linspace(0, ids.size - span - 1, n).astype(int)
    return [ids[s : s + span + 1] for s in starts]


def measure(lm: LanguageModel, pipeline: str, target: str | None, wins, timing_only: bool):  # noqa: ANN001, ANN201
    gen = Generator(lm, pipeline=pipeline, target=target, timing_only=timing_only)
    gen.prepare(PROMPT, GENERATED + 1)
    hits = total = 0
    steps_all = []
    for w in wins:
        logits, steps = gen.force(w[: PROMPT + GENERATED], PROMPT)
        pred = logits[PROMPT:].argmax(-1)  # decode-step predictions of w[PROMPT+1 :]
        hits += int((pred == w[PROMPT + 1 :]).sum())
        total += pred.size
        steps_all += [s for s in steps if s.index > 0]
    return hits / total, steps_all, gen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--target", default="spatten")
    ap.add_argument("--timing-only", action="store_true", help="values from the reference")
    args = ap.parse_args(argv)
    lm = LanguageModel.of(load_model("char-gpt"))
    wins = windows(args.prompts)
    rows = []
    dense_dram = None
    for label, pipeline in PIPELINES:
        t0 = time.perf_counter()
        acc, steps, gen = measure(lm, pipeline, args.target, wins, args.timing_only)
        ref_acc, _, ref_gen = measure(lm, pipeline, None, wins, False)
        same = sum(
            a.tolist() == b.tolist() for a, b in zip(gen.survivors, ref_gen.survivors, strict=True)
        )
        agree = f"{same}/{len(gen.survivors)}" if gen.kv is not None else "-"
        n = len(steps)
        dram = sum(s.dram_bytes for s in steps) / n
        cycles = sum(s.cycles for s in steps) / n
        energy = sum(s.energy_uj for s in steps) / n
        first = min(steps, key=lambda s: s.context)
        last = max(steps, key=lambda s: s.context)
        rate = n / sum(s.seconds for s in steps)
        dense_dram = dense_dram or dram
        rows.append(
            f"| {label} | `{pipeline or '-'}` | {100 * acc:.2f} | {100 * ref_acc:.2f} | {dram:,.0f} "
            f"| {dense_dram / dram:.2f}x | {first.dram_bytes:,} → {last.dram_bytes:,} | {cycles:,.0f} "
            f"| {energy:.2f} | {rate:.1f} | {agree} |"
        )
        print(
            f"{label}: {n} decode steps, {time.perf_counter() - t0:.0f} s "
            f"(compile {gen.compile_seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    mode = (
        "timing-only interpreter runs, values from the reference"
        if args.timing_only
        else "interpreter"
    )
    print(
        f"char-gpt on {args.target}: {args.prompts} held-out prompts x ({PROMPT} prompt + "
        f"{GENERATED} teacher-forced decode steps); cost measured ({mode})\n"
    )
    print(
        "| pipeline | passes | next-char acc % (interp) | acc % (reference) | DRAM B / step "
        "| DRAM vs dense | DRAM first → last bucket | cycles / step | energy uJ / step "
        "| host decode tokens/s | survivors interp = ref |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
