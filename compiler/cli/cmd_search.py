"""wisp search: search pruning, 2:4, bit widths and token/head pruning jointly under the cost model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HELP = (
    "search compression pipelines for MODEL jointly (pruning, 2:4, bits, tokens, heads): "
    "Pareto front of validation accuracy vs modeled cost on --target, and a pipeline to paste"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="zoo name with a bundled dataset (digits-vit)")
    p.add_argument("--target", default="spatten", metavar="CONFIG", help="NPU config (spatten)")
    p.add_argument(
        "--objectives",
        default="accuracy,cycles",
        metavar="A,B",
        help="accuracy, cycles, energy, dram, weight_bytes (default accuracy,cycles)",
    )
    p.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        metavar="POINTS",
        help="feasible: validation accuracy at most this many points below dense (default 1.0)",
    )
    p.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="COST=FRACTION",
        help="feasible: cost at most this fraction of dense, e.g. cycles=0.33 (repeatable)",
    )
    p.add_argument("--trials", type=int, default=50, metavar="N", help="trials (default 50)")
    p.add_argument(
        "--executor", default="local", choices=("local", "ray"), help="local processes or Ray"
    )
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="parallel evaluations (default 2)"
    )
    p.add_argument(
        "--study",
        metavar="DIR",
        help="keep the study in DIR/study.db (SQLite): rerun the same command to resume",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "nsga2"), help="Optuna sampler")
    p.add_argument(
        "--batch", type=int, default=8, metavar="N", help="trials asked at once (default 8)"
    )
    p.add_argument(
        "--groups",
        metavar="G,H",
        help="search only these stage groups (prune, sparsity, bits, tokens, heads)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="pin a knob, e.g. token-prune.method=topk (repeatable; see --list-knobs)",
    )
    p.add_argument("--list-knobs", action="store_true", help="print the search space and exit")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="where search.json and pareto.png go (default: --study DIR, else wisp-search)",
    )
    p.add_argument(
        "--no-confirm",
        action="store_true",
        help="skip confirming the front on the interpreter and the test split",
    )


def _pins(items: list[str]) -> dict[str, str]:
    from compiler.errors import WispError

    out = {}
    for item in items:
        if "=" not in item:
            raise WispError(f"--set {item}: expected KNOB=VALUE (see --list-knobs)")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


class _Progress:
    """Trials done, best so far and ETA (tqdm on a terminal; a line per batch otherwise)."""

    def __init__(self, cost: str) -> None:
        self.cost = cost
        self.bar: Any = None
        self.start = time.perf_counter()
        self.first: int | None = None

    def __call__(self, done: int, total: int, best: dict[str, Any] | None) -> None:
        note = "no feasible candidate yet"
        if best is not None:
            ratio = float(best[f"{self.cost}_ratio"])
            note = f"best {self.cost} {1 / ratio:.2f}× at {100 * best['accuracy']:.2f}%"
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                if self.bar is None:
                    self.bar = tqdm(total=total, initial=0, unit="trial", file=sys.stderr)
                self.bar.update(done - self.bar.n)
                self.bar.set_postfix_str(note)
                return
        if self.first is None:
            self.first = done
        elapsed = time.perf_counter() - self.start
        rate = (done - self.first) / elapsed if elapsed > 0 and done > self.first else 0.0
        eta = f", ETA {(total - done) / rate:.0f} s" if rate else ""
        print(f"wisp search: {done}/{total} trials, {note}{eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from compiler.errors import WispError
    from compiler.search.confirm import confirm, worst_error
    from compiler.search.objectives import parse_objectives
    from compiler.search.output import (
        PARETO_PNG,
        SEARCH_JSON,
        front_table,
        plot,
        summary,
        write_json,
    )
    from compiler.search.space import derive_space
    from compiler.search.study import dims_table, search

    groups = [g for g in args.groups.split(",") if g] if args.groups else None
    pins = _pins(args.set)
    if args.list_knobs:
        space = derive_space(groups).pin(pins)
        print(f"search space ({len(space.dims)} knobs, from the passes' declarations):")
        for line in dims_table(space.dims):
            print(line)
        return 0
    objectives = parse_objectives(args.objectives)
    cost = next(o.name for o in objectives if o.name != "accuracy")
    out = Path(args.output or args.study or "wisp-search")
    progress = _Progress(cost)
    try:
        result = search(
            args.model,
            target=args.target,
            objectives=args.objectives,
            max_drop=args.max_drop,
            budget=args.budget,
            trials=args.trials,
            executor=args.executor,
            workers=args.workers,
            study_dir=args.study,
            seed=args.seed,
            sampler=args.sampler,
            batch=args.batch,
            groups=groups,
            pin=pins,
            on_batch=progress,
        )
    finally:
        progress.close()
    confirmed = [] if args.no_confirm else confirm(args.model, args.target, result.front)
    data = summary(result)
    data["confirmed"] = confirmed
    write_json(out / SEARCH_JSON, data)
    plotted = plot(result, out / PARETO_PNG)
    s = result.settings
    print(
        f"{s.model} on {s.target}: {len(result.trials)} trials ({result.evaluated} evaluated, "
        f"{result.cached} cached this run); accuracy on {result.dense['total']} validation images, "
        "costs estimated (static cost model); Pareto front:"
    )
    for line in front_table(result):
        print(line)
    if confirmed:
        print(
            f"confirmed on the interpreter: static estimate within {100 * worst_error(confirmed):.2f}%"
            " of measured; test-split accuracy (reference): "
            + ", ".join(f"#{c['trial']} {100 * c['test_accuracy']:.2f}%" for c in confirmed)
        )
    print(f"wrote {out / SEARCH_JSON}" + (f", {out / PARETO_PNG}" if plotted else ""))
    if not plotted:
        print("wisp search: pareto.png not written: pip install 'wisp[search]' (matplotlib)")
    if result.best is None:
        c = result.closest
        where = ""
        if c is not None:
            ratios = ", ".join(
                f"{k} {c[f'{k}_ratio']:.3f} of dense" for k in s.budgets if f"{k}_ratio" in c
            )
            where = (
                f"; the closest: trial {c['trial']} ({ratios}, accuracy "
                f"{-c['drop_points']:+.2f} points{'' if c['complete'] else ', partial'}): "
                f"{c['pipeline']}"
            )
        budgets = " ".join(f"--budget {k}={v:g}" for k, v in s.budgets.items())
        raise WispError(f"no candidate meets --max-drop {s.max_drop:g} {budgets}".rstrip() + where)
    print(f"best pipeline ({cost} {1 / result.best[f'{cost}_ratio']:.2f}× fewer than dense):")
    print(f"  {result.best['pipeline']}")
    return 0
