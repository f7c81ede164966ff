"""wisp generate: text from a GPT-2 family model, one program run per token (prefill, then cached
decode steps), streamed, then a per-token cost table measured by the interpreter."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = (
    "generate text with a GPT-2 family model (e.g. char-gpt) on the NPU interpreter: prefill the "
    "prompt, decode with a KV cache, print the text and per-token cycles, DRAM bytes and energy"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL",
        help="a gpt2-family zoo name (char-gpt) or an OUTDIR compiled from one (its pipeline and "
        "target are used)",
    )
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue")
    p.add_argument("--tokens", type=int, default=64, metavar="N", help="tokens to generate (64)")
    p.add_argument(
        "--target",
        default=None,
        metavar="CONFIG",
        help="NPU config (default spatten, or an OUTDIR's); 'none' runs the reference executor "
        "only (no cost figures)",
    )
    p.add_argument(
        "-p",
        "--passes",
        default=None,
        metavar="PIPELINE",
        help="pass pipeline applied to the prefill and decode programs (default: none, or an "
        "OUTDIR's)",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--greedy", action="store_true", help="take the most likely token (default)")
    how.add_argument(
        "--temperature", type=float, default=None, metavar="T", help="sample from softmax(logits/T)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (with --temperature)")
    p.add_argument(
        "--timing-only",
        action="store_true",
        help="values from the reference executor, cost from timing-only interpreter runs (faster)",
    )
    # --quiet (wisp's global flag: no progress display) also prints the text and the summary only


def run(args: argparse.Namespace) -> int:
    from compiler.generation.report import token_table
    from compiler.generation.session import Generator, Sampler
    from compiler.pipeline import parse_pipeline

    lm, pipeline, target = _resolve(args)
    parse_pipeline(pipeline)  # a bad pipeline is one error before any work
    gen = Generator(lm, pipeline=pipeline, target=target, timing_only=args.timing_only)
    sampler = Sampler(args.temperature, args.seed)
    ids = gen.check_request(args.prompt, args.tokens)  # bad requests fail before any output
    gen.prepare(ids.size, args.tokens)
    out = sys.stdout
    out.write(args.prompt)
    out.flush()
    steps = []
    t0 = time.perf_counter()
    for step in gen.generate(args.prompt, args.tokens, sampler):
        out.write(step.text)
        out.flush()
        steps.append(step)
    wall = time.perf_counter() - t0
    out.write("\n\n")
    for line in token_table(steps, gen, wall, quiet=args.quiet):
        print(line)
    return 0


def _resolve(args: argparse.Namespace):  # noqa: ANN202
    """(LanguageModel, pipeline, target) from MODEL (a zoo name or an OUTDIR) and the flags."""
    import json

    from compiler.errors import WispError
    from compiler.generation.forms import LanguageModel
    from compiler.loading import MANIFEST, load_model
    from compiler.models.zoo import ZOO

    pipeline, target = args.passes, args.target
    path = Path(args.model)
    if args.model not in ZOO and path.is_dir() and (path / MANIFEST).exists():
        manifest = json.loads((path / MANIFEST).read_text())
        name = str(manifest.get("model", ""))
        entry = ZOO.get(name)
        if entry is None or entry.trained is None or entry.family != "gpt2":
            raise WispError(
                f"{args.model}: generation from an OUTDIR needs one compiled from a trained gpt2 "
                f"zoo model (char-gpt); it holds '{name}'"
            )
        base = load_model(name)
        pipeline = manifest.get("pipeline", "") if pipeline is None else pipeline
        if target is None:
            target = str(path / "config.json") if (path / "config.json").is_file() else None
            target = target or manifest.get("target") or "spatten"
    else:
        base = load_model(args.model)
    target = "spatten" if target is None else target
    return LanguageModel.of(base), pipeline or "", None if target == "none" else target
