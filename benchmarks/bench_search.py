"""Joint compression search vs single-knob searches on digits-vit (spatten, no fine-tuning).

    python benchmarks/bench_search.py [--trials 200] [--single 40] [--out bench-search] [--workers 2]

Runs (or resumes: each search keeps its Optuna study in OUT/NAME/study.db):

- the joint search over every searchable pass (objectives accuracy, cycles, DRAM, energy;
  --max-drop 1.0), and single-knob searches (pruning + 2:4 only, bits only, tokens only) with
  the same settings and fewer trials;
- for each: the best candidate within 1 point of dense validation accuracy per cost, and the one
  candidate with the largest min(cycles, DRAM, energy) reduction; all costs are the static
  estimate of the shared cost model for one inference, reductions are dense / candidate;
- the joint front confirmed on the interpreter (one test image; relative error of the estimate)
  and its test-split accuracy (reference executor; the search itself never reads the test split);
- evaluation throughput: cost only, proxy (32 images), full validation accuracy (192 images), and
  the speed-up of 2 worker processes over 1 on the same 8 candidates.

Writes OUT/NAME/search.json, OUT/NAME/pareto.png and OUT/fronts.png (the fronts side by side).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from compiler.search.confirm import confirm, worst_error  # noqa: E402
from compiler.search.evaluate import Task, _prefixes  # noqa: E402
from compiler.search.executors import InlineExecutor, LocalExecutor  # noqa: E402
from compiler.search.output import plot, summary, write_json  # noqa: E402
from compiler.search.study import SearchResult, search  # noqa: E402

MODEL, TARGET = "digits-vit", "spatten"
OBJECTIVES = "accuracy,cycles,dram,energy"
COSTS = (("cycles", "cycles"), ("dram", "dram_bytes"), ("energy", "energy_pj"))
SINGLE = {"prune+2:4": ["prune", "sparsity"], "bits": ["bits"], "tokens": ["tokens"]}


WALL: dict[str, float] = {}  # search name → wall seconds of its last run here (volatile)


def run(
    name: str, out: Path, trials: int, workers: int, groups: list[str] | None, label: str = ""
) -> SearchResult:
    """Run (or resume) one search in OUT/name; its wall time is kept under `label` (or name)."""
    start = time.perf_counter()
    result = search(
        MODEL,
        target=TARGET,
        objectives=OBJECTIVES,
        max_drop=1.0,
        trials=trials,
        workers=workers,
        study_dir=out / name,
        seed=0,
        groups=groups,
    )
    write_json(out / name / "search.json", summary(result))
    plot(result, out / name / "pareto.png")
    WALL[label or name] = time.perf_counter() - start
    print(
        f"[{name}] {len(result.trials)} trials, {result.evaluated} evaluated now "
        f"({result.cached} cached) in {WALL[label or name]:.0f} s",
        flush=True,
    )
    return result


def reductions(r: dict[str, Any], dense: dict[str, Any]) -> dict[str, float]:
    return {name: dense[key] / r[key] for name, key in COSTS}


TABLE_VOLATILE = ("wall s",)


def table(results: dict[str, SearchResult]) -> list[str]:
    """The fronts side by side: per search the best reduction of each cost among feasible
    candidates and the balanced pick (largest min(cycles, DRAM, energy) reduction)."""
    lines = [
        "| search | trials | feasible | best cycles × | best DRAM × | best energy × |"
        " balanced pick: acc % (drop) | cycles × | DRAM × | energy × | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        feas = [r for r in res.trials if r["feasible"]]
        dense = res.dense
        wall = f"{WALL[name]:.0f}" if name in WALL else "—"
        if not feas:
            lines.append(f"| {name} | {len(res.trials)} | 0 | — | — | — | — | — | — | — | {wall} |")
            continue
        red = [reductions(r, dense) for r in feas]
        best = {c: max(x[c] for x in red) for c, _ in COSTS}
        b, rb = balanced(feas, dense)
        drop = 100 * (dense["accuracy"] - b["accuracy"])
        lines.append(
            f"| {name} | {len(res.trials)} | {len(feas)} | {best['cycles']:.2f} | {best['dram']:.2f}"
            f" | {best['energy']:.2f} | {100 * b['accuracy']:.2f} ({drop:.2f}) | {rb['cycles']:.2f}"
            f" | {rb['dram']:.2f} | {rb['energy']:.2f} | {wall} |"
        )
    return lines


def balanced(
    feas: list[dict[str, Any]], dense: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    """The feasible candidate with the largest min(cycles, DRAM, energy) reduction, and its reductions."""
    red = [reductions(r, dense) for r in feas]
    i = max(range(len(feas)), key=lambda j: (min(red[j].values()), -feas[j]["trial"]))
    return feas[i], red[i]


def fronts_png(results: dict[str, SearchResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, (cname, key) in zip(axes, COSTS, strict=True):
        for name, res in results.items():
            feas = sorted((r for r in res.trials if r["feasible"]), key=lambda r: r[key])
            xs, ys, best = [], [], -1.0
            for r in feas:  # the accuracy-vs-this-cost staircase of the feasible trials
                if 100 * r["accuracy"] > best:
                    best = 100 * r["accuracy"]
                    xs.append(r[key] / res.dense[key])
                    ys.append(best)
            ax.step(xs, ys, "o-", where="post", ms=4, label=name)
        ax.set_xlabel(f"{cname} relative to dense (static estimate)")
        ax.set_ylabel("validation accuracy %")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{MODEL} on {TARGET}: feasible fronts (within 1 point of dense)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


THROUGHPUT_VOLATILE = ("evaluations/s", "wall s", "speed-up")


def throughput(workers: int) -> list[str]:
    """Evaluations per second in one process (8 candidates, no pipeline prefix reused): cost only,
    cost + 32-image proxy, cost + full validation accuracy; and `workers` processes against one."""
    cands = [
        "",
        "token-prune{method=topk keep=0.5 schedule=step start=1}",
        "quantize{weights=int8}",
        "structured-prune{ratio=0.3 kinds=ffn hw=spatten}",
        "structured-prune{ratio=0.5 kinds=ffn hw=spatten},token-prune{method=evit keep=0.2 start=1}",
        "token-prune{method=tps keep=0.3 start=1},head-prune{keep=2 start=2}",
        "quantize{weights=int4 granularity=group:16},token-prune{keep=0.4 start=1}",
        "quantize{attn=int8 stream=int8},token-prune{method=topk keep=0.3 start=1}",
    ]
    lines = ["| evaluation (8 candidates) | evaluations/s | wall s |", "|---|---|---|"]
    inline = InlineExecutor()
    for label, kw in (
        ("cost only (0 images), 1 process", {"limits": (("cycles", 0.0),), "proxy": 0}),
        ("cost + proxy (32 images), 1 process", {"limits": (("cycles", 0.0),), "proxy": 32}),
        ("cost + full accuracy (192 images), 1 process", {}),
    ):
        tasks = [Task(MODEL, TARGET, p, **kw) for p in cands]
        inline.map(
            [Task(MODEL, TARGET, "", proxy=0, limits=(("cycles", 0.0),))]
        )  # load model, data
        _prefixes.clear()  # no pipeline prefix reused from an earlier measurement
        t = time.perf_counter()
        inline.map(tasks)
        dt = time.perf_counter() - t
        lines.append(f"| {label} | {len(tasks) / dt:.3f} | {dt:.1f} |")
    tasks = [Task(MODEL, TARGET, p) for p in cands]

    def pooled(n: int) -> tuple[float, list[dict[str, Any]]]:
        """Wall time of the tasks on a fresh pool of n processes (each warmed on the dense model:
        both pools pay the same first-use costs of the passes)."""
        pool = LocalExecutor(n)
        pool.map([Task(MODEL, TARGET, "", proxy=0, limits=(("cycles", 0.0),))] * n)
        t = time.perf_counter()
        res = pool.map(tasks)
        dt = time.perf_counter() - t
        pool.close()
        return dt, res

    t1, one = pooled(1)
    t2, many = pooled(workers)
    same = [{k: v for k, v in r.items() if k != "seconds"} for r in one] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in many
    ]
    lines.append(f"| cost + full accuracy, 1 worker process | {len(tasks) / t1:.3f} | {t1:.1f} |")
    lines.append(
        f"| cost + full accuracy, {workers} processes | {len(tasks) / t2:.3f} | {t2:.1f} |"
    )
    lines += [
        "",
        f"| {workers} worker processes vs 1 (same 8 candidates, fresh pools) | speed-up | same results |",
        "|---|---|---|",
        f"| cost + full accuracy | {t1 / t2:.2f}× | {'yes' if same else 'NO'} |",
    ]
    return lines


def report(
    out: Path, trials: int, single: int, workers: int, with_throughput: bool = True
) -> list[str]:
    """Run (or resume) the joint and single-knob searches, confirm the joint front on the
    interpreter and measure throughput; the markdown of docs/search.md's figures."""
    results = {"joint": run("joint", out, trials, workers, None)}
    for name, groups in SINGLE.items() if single > 0 else ():
        results[name] = run(
            name.replace(":", "").replace("+", "-"), out, single, workers, groups, name
        )
    fronts_png(results, out / "fronts.png")
    d = results["joint"].dense
    lines = [
        f"Dense fp16: validation {100 * d['accuracy']:.2f}% ({d['correct']}/{d['total']}),"
        f" {d['cycles']:,} cycles, {d['dram_bytes']:,} DRAM bytes, {d['energy_pj'] / 1e6:.2f} uJ"
        " (static estimate). Joint search: "
        f"{trials} trials; single-knob searches: {single} trials each; objectives"
        f" {OBJECTIVES}, --max-drop 1.0, seed 0, {workers} worker processes.",
        "",
        *table(results),
        "",
    ]
    feas = [r for r in results["joint"].trials if r["feasible"]]
    if feas:
        b, rb = balanced(feas, d)
        lines += [
            "Balanced pick of the joint search (static estimate; validation accuracy):",
            "",
            f"    {b['pipeline']}",
            "",
            f"{100 * b['accuracy']:.2f}% ({b['correct']}/{b['total']}), {b['cycles']:,} cycles"
            f" ({rb['cycles']:.2f}×), {b['dram_bytes']:,} DRAM bytes ({rb['dram']:.2f}×),"
            f" {b['energy_pj'] / 1e6:.2f} uJ ({rb['energy']:.2f}×).",
            "",
        ]
    front = results["joint"].front
    conf = confirm(MODEL, TARGET, front)
    lines += [
        f"Joint front ({len(front)} candidates) on the interpreter: static estimate within"
        f" {100 * worst_error(conf):.3f}% of measured; test-split accuracy (used once, here):",
        "",
        "| trial | validation % | test % | measured cycles | DRAM B | energy uJ | pipeline |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, r in zip(conf, front, strict=True):
        m = c["measured"]
        lines.append(
            f"| {r['trial']} | {100 * r['accuracy']:.2f} | {100 * c['test_accuracy']:.2f} |"
            f" {m['cycles']:,} | {m['dram_bytes']:,} | {m['energy_pj'] / 1e6:.2f} |"
            f" `{r['pipeline']}` |"
        )
    if with_throughput:
        lines += ["", *throughput(workers)]
    return lines


VOLATILE = tuple(dict.fromkeys(TABLE_VOLATILE + THROUGHPUT_VOLATILE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--single", type=int, default=40, help="trials of each single-knob search")
    ap.add_argument("--out", default="bench-search")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--throughput-only", action="store_true")
    args = ap.parse_args()
    if args.throughput_only:
        print("\n".join(throughput(args.workers)))
        return
    lines = report(Path(args.out), args.trials, args.single, args.workers, not args.no_throughput)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
