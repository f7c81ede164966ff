"""Differential campaign: random zoo models × random pass pipelines × configs, interpreter vs oracle.

    OPENBLAS_NUM_THREADS=1 python benchmarks/differential.py --n 500 --seed 1 [--out DIR]

Each case draws (deterministically from ``--seed`` and its index) a model from the deit-tiny,
bert-tiny and gpt2 families with small random shapes (1–3 layers, 1–4 heads, head dims including
odd ones like 12, 24 and 40, odd token counts), a pipeline composed in the documented order
``structured-prune{target=macs ratio=R}`` → ``sparsify-2-4`` → ``quantize{…}`` (int8/int4 weights,
per channel/tensor/group:32, optionally ``attn=int8 stream=int8``) → ``token-prune{method=topk|tps|evit
keep=K}`` (ViT and BERT only), each stage present or not, and a config (spatten, fact, edge). It is
compiled with `compiler.api.compile_model`, run on the interpreter on random inputs and compared with
the reference executor:

- every output within ``rtol · max(1, max|ref|)`` (`tests/backend/compile_util.check`: rtol 1e-2;
  3e-2 once quantize or token-prune is in the pipeline, as their own interpreter tests use), plus
  4 quantization steps of the int8 residual-stream scales (`tests/backend/test_lower_quant.py`),
  plus, with quantize, twice max|ref(fp32) − ref(fp16)|: int8 activations turn the fp16 rounding
  upstream into whole quantization steps (amplified downstream), so the oracle itself moves that
  much when run in fp16 (the interpreter's outputs were identical on all three configs in every
  such case looked at);
- no unconsumed tokens in the interpreter's report;
- token pruning: survivors are observable only through a per-token output, so BERT cases sometimes
  ask for ``outputs=logits,hidden``; there each row of the interpreter's last hidden state must be
  nearest to the reference row of the same index (the same tokens survived, in the same order). For
  ViT (logits from the CLS row only) survivors are not observable from outputs; those cases check
  values only.

Outcomes: ``pass``; ``refused`` (a pass refused the options with a one-line `WispError`, e.g.
``group:32`` where K is not a multiple of 32); ``too-big`` (a `BackendError` "does not fit");
``unsupported`` (any other one-line `BackendError` from compile: a documented backend limit, e.g.
int4 weights with an odd number of output features on `edge`; the distinct messages are listed);
``near-tie`` (token pruning only: out of tolerance, and the oracle's top-k boundary has two
scores within NEAR_TIE relative of each other, so fp16 rounding on the interpreter may keep the
other token: a divergence of fp16 vs fp32, not a compiler bug; reported, not a failure);
``mismatch`` (outputs out of tolerance or survivors differ); ``error`` (any other exception during
compile or run); ``timeout`` (the per-case alarm). Each non-pass/refused/too-big case is saved as a
JSON reproducer under ``--out`` (``python benchmarks/differential.py --repro FILE`` re-runs one).
Exit status 1 if any mismatch, error or timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import re
import signal
import sys
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backend.errors import BackendError  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.api import compile_model  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.models.zoo import build  # noqa: E402

FAMILIES = ("deit-tiny", "bert-tiny", "gpt2")
CONFIGS = ("spatten", "fact", "edge")
HEAD_DIMS = (8, 12, 16, 24, 32, 40)
TIMEOUT_S = 300


@dataclass
class Case:
    index: int
    seed: int
    model: str
    options: dict[str, Any]
    pipeline: str
    config: str
    input_seed: int
    kinds: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "+".join(self.kinds) or "dense"


def _model_options(rng: random.Random, name: str) -> dict[str, Any]:
    heads = rng.randint(1, 4)
    head_dim = rng.choice(HEAD_DIMS)
    while heads * head_dim > 160:
        head_dim = rng.choice(HEAD_DIMS[:3])
    dim = heads * head_dim
    opts: dict[str, Any] = {
        "layers": rng.randint(1, 3),
        "dim": dim,
        "heads": heads,
        "mlp_dim": rng.choice([dim, 2 * dim, 4 * dim, 3 * dim // 2 + 8]),
    }
    if name == "deit-tiny":
        patch = rng.choice([2, 4, 8])
        opts["patch"] = patch
        opts["image"] = patch * rng.randint(2, 5)  # 4–25 patches + CLS: odd and even counts
        opts["classes"] = rng.randint(2, 12)
    else:
        opts["seq"] = rng.randint(3, 33)
        opts["vocab"] = rng.randint(40, 200)
    if name == "bert-tiny":
        opts["classes"] = rng.randint(2, 12)
        if rng.random() < 0.4:
            opts["outputs"] = "logits,hidden"
        if rng.random() < 0.2:
            opts["token_types"] = True
    return opts


def _pipeline(rng: random.Random, name: str, dim: int) -> tuple[str, list[str]]:
    stages: list[str] = []
    kinds: list[str] = []
    if rng.random() < 0.3:
        ratio = rng.choice([0.1, 0.2, 0.3, 0.5])
        stages.append(f"structured-prune{{target=macs ratio={ratio}}}")
        kinds.append("prune")
    if rng.random() < 0.3:
        stages.append("sparsify-2-4")
        kinds.append("2:4")
    if rng.random() < 0.45:
        bits = rng.choice(["int8", "int4"])
        gran = rng.choice(["channel", "tensor"])
        if dim % 32 == 0 and rng.random() < 0.4:
            gran = "group:32"
        spec = f"weights={bits} granularity={gran}"
        if rng.random() < 0.35:
            spec += " attn=int8 stream=int8"
        stages.append(f"quantize{{{spec} samples=4}}")
        kinds.append("quant")
    if name != "gpt2" and rng.random() < 0.35:
        method = rng.choice(["topk", "tps", "evit"])
        keep = rng.choice([0.3, 0.5, 0.7, 0.9])
        extra = " start=0" if rng.random() < 0.5 else ""
        stages.append(f"token-prune{{method={method} keep={keep}{extra}}}")
        kinds.append("tokens")
    return ",".join(stages), kinds


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"differential:{seed}:{index}")
    name = rng.choice(FAMILIES)
    opts = _model_options(rng, name)
    pipeline, kinds = _pipeline(rng, name, int(opts["dim"]))
    return Case(index, seed, name, opts, pipeline, rng.choice(CONFIGS), rng.randrange(2**31), kinds)


def build_model(case: Case) -> Model:
    """The zoo model with weights scaled up (std 0.1) so outputs are O(1) (`compile_util.small_zoo`)."""
    m = build(case.model, seed=case.input_seed % 1000, **case.options)
    for k in list(m.weights):
        if not k.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            m.weights[k] = (m.weights[k] * 5).astype(np.float32)
    return m


def random_inputs(m: Model, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab = int(m.meta["config"].get("vocab", 100))
    out: dict[str, np.ndarray] = {}
    for k, (shape, dt) in m.input_specs().items():
        if k == "token_type_ids":
            out[k] = rng.integers(0, 2, shape).astype(np.int32)
        elif k == "attention_mask":
            out[k] = np.ones(shape, np.int32)
        elif dt.kind == "i":
            out[k] = rng.integers(0, vocab, shape).astype(np.int32)
        else:
            out[k] = rng.standard_normal(shape).astype(np.float32)
    return out


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _rows_of(y: np.ndarray, x: np.ndarray) -> list[int]:
    """Which rows of x the rows of y are nearest to."""
    return [int(np.abs(x - r).sum(1).argmin()) for r in y]


# Relative gap between the k-th and (k+1)-th importance score under which fp16 rounding upstream
# (≈ 2^-11 relative per value, amplified by quantized q/k) may reorder the two: a few fp16 steps.
NEAR_TIE = 4e-3


def _selection_margin(model: Model, inputs: dict[str, np.ndarray]) -> float:
    """The smallest relative gap, over the oracle's tokens.select ops, between the last kept and the
    first dropped score (protected positions aside)."""
    from compiler.reference_tokens import protected
    from dialects import tokens

    values: dict[Any, np.ndarray] = {}
    reference.run(model, inputs, values=values)
    gaps = [np.inf]
    for op in model.main.body.block.ops:
        if isinstance(op, tokens.SelectOp):
            s = values[op.operands[0]].astype(np.float64).copy()
            s[protected(op, s.shape[0])] = np.inf
            k = op.int_prop("k")
            if k < s.shape[0]:
                top = np.sort(s)[::-1]
                finite = np.abs(s[np.isfinite(s)])
                gaps.append((top[k - 1] - top[k]) / max(float(finite.max(initial=0.0)), 1e-30))
    return float(min(gaps))


def run_case(case: Case) -> tuple[str, str]:
    """(outcome, detail) for one case."""
    signal.alarm(TIMEOUT_S)
    try:
        model = build_model(case)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the passes' reports
                prog = compile_model(model, pipeline=case.pipeline, target=case.config)
        except BackendError as e:
            first = str(e).splitlines()[0]
            return ("too-big" if "does not fit" in first else "unsupported"), first
        except WispError as e:
            return "refused", str(e).splitlines()[0]
        inputs = random_inputs(prog.model, case.input_seed)
        res = prog.run(inputs)
        want = prog.reference(inputs)
        rtol = 3e-2 if {"quant", "tokens"} & set(case.kinds) else 1e-2
        steps = [float(v.max()) for k, v in prog.model.weights.items() if k.startswith("stream.")]
        slack = 4 * max(steps, default=0.0)
        if "quant" in case.kinds:
            # int8 activations turn fp16-vs-fp32 rounding upstream into whole quantization steps
            # (amplified by the following layers): allow twice the oracle's own move when it runs in
            # fp16 (0 on a model that is not sensitive to it)
            want16 = prog.reference(inputs, dtype=np.float16)
            moved = [
                float(np.abs(want16[k].astype(np.float32) - w).max())
                for k, w in want.items()
                if w.size and k in want16
            ]
            slack += 2 * max(moved, default=0.0)
        problems: list[str] = []
        if sorted(res.outputs) != sorted(want):
            problems.append(f"outputs {sorted(res.outputs)} != reference {sorted(want)}")
        worst = 0.0
        for k, w in want.items():
            if k not in res.outputs:
                continue
            got = res.outputs[k].astype(np.float32)
            if got.shape != w.shape:
                problems.append(f"{k}: shape {got.shape} != {w.shape}")
                continue
            if not w.size:
                continue
            err = float(np.abs(got - w).max())
            scale = max(1.0, float(np.abs(w).max()))
            worst = max(worst, err / scale)
            if not np.isfinite(err) or err > rtol * scale + slack:
                problems.append(f"{k}: max abs err {err:.4g} > {rtol}·{scale:.4g} + {slack:.3g}")
        if res.report.unconsumed_tokens:
            problems.append(f"unconsumed tokens {res.report.unconsumed_tokens}")
        if "tokens" in case.kinds and "hidden" in str(case.options.get("outputs", "")):
            # the hidden state is the last output (outputs in logits, hidden order)
            name = sorted(want)[-1]
            g, w = res.outputs[name].astype(np.float32), want[name]
            if g.shape == w.shape and _rows_of(g, w) != list(range(len(w))):
                problems.append(f"survivors differ: interpreter rows map to {_rows_of(g, w)}")
        if problems and "tokens" in case.kinds:
            gap = _selection_margin(prog.model, inputs)
            if gap < NEAR_TIE:
                return "near-tie", f"{'; '.join(problems)} (top-k boundary gap {gap:.2g})"
        if problems:
            return "mismatch", "; ".join(problems)
        return "pass", f"max rel err {worst:.3g}"
    except _Timeout:
        return "timeout", f"> {TIMEOUT_S} s"
    except Exception as e:  # noqa: BLE001 - the campaign records every other exception
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        return (
            "error",
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} | {tb[-3:]}",
        )
    finally:
        signal.alarm(0)


BAD = ("mismatch", "error", "timeout")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first case index (to resume)")
    ap.add_argument("--out", type=Path, default=None, help="save reproducers here")
    ap.add_argument("--repro", type=Path, default=None, help="re-run one saved reproducer")
    ap.add_argument("--budget", type=float, default=0.0, help="stop after this many seconds")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)

    if args.repro is not None:
        data = json.loads(args.repro.read_text())
        data.pop("outcome", None)
        data.pop("detail", None)
        case = Case(**data)
        outcome, detail = run_case(case)
        print(f"{outcome}: {detail}")
        return 1 if outcome in BAD else 0

    t0 = time.perf_counter()
    outcomes: Counter[str] = Counter()
    by_family: dict[str, Counter[str]] = defaultdict(Counter)
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    by_config: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    done = 0
    for i in range(args.start, args.start + args.n):
        if args.budget and time.perf_counter() - t0 > args.budget:
            print(f"budget of {args.budget:.0f} s reached after {done} cases")
            break
        case = make_case(args.seed, i)
        t1 = time.perf_counter()
        outcome, detail = run_case(case)
        done += 1
        outcomes[outcome] += 1
        by_family[case.model][outcome] += 1
        by_kind[case.kind][outcome] += 1
        by_config[case.config][outcome] += 1
        if outcome in ("refused", "too-big", "unsupported"):
            # one line per kind of refusal: numbers and op tags blanked
            reasons[f"{outcome}: {re.sub(r'[0-9]+', 'N', detail)}"] += 1
        if args.verbose or outcome in BAD:
            print(
                f"[{i}] {outcome} {case.model} {case.options} '{case.pipeline}' {case.config} "
                f"({time.perf_counter() - t1:.1f} s): {detail}",
                flush=True,
            )
        if outcome in BAD and args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            record = asdict(case) | {"outcome": outcome, "detail": detail}
            path = args.out / f"case-{args.seed}-{i}.json"
            path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    elapsed = time.perf_counter() - t0

    def fmt(c: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))

    print(f"\n{done} cases (seed {args.seed}) in {elapsed:.1f} s: {fmt(outcomes)}")
    for title, table in (("family", by_family), ("pipeline", by_kind), ("config", by_config)):
        print(f"by {title}:")
        for key in sorted(table):
            print(f"  {key:28s} {sum(table[key].values()):4d}  {fmt(table[key])}")
    if reasons:
        print("refusals:")
        for reason, count in reasons.most_common():
            print(f"  {count:4d}  {reason[:160]}")
    checked = done - outcomes["refused"] - outcomes["too-big"] - outcomes["unsupported"]
    print(
        f"interpreter = reference on {outcomes['pass']}/{checked} compiled cases"
        f" ({outcomes['near-tie']} fp16 near-ties in token selection)"
    )
    return 1 if any(outcomes[b] for b in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
