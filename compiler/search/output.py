"""What a search leaves behind: the front as a table, search.json and pareto.png."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compiler.search.study import SearchResult

SEARCH_JSON = "search.json"
PARETO_PNG = "pareto.png"


def front_table(result: SearchResult) -> list[str]:
    """The Pareto front (and the dense model) as an aligned text table; costs relative to dense."""
    costs = [o for o in result.settings.objectives if o.name != "accuracy"]
    head = f"  {'trial':>5}  {'acc %':>6}  {'drop':>5}  " + "  ".join(
        f"{o.name + ' ×':>12}" for o in costs
    )
    lines = [head]
    dense = result.dense

    def row(label: str, r: dict[str, Any]) -> str:
        drop = 100.0 * (dense["accuracy"] - r["accuracy"])
        ratios = "  ".join(f"{dense[o.key] / r[o.key]:>11.2f}×" for o in costs)
        return f"  {label:>5}  {100 * r['accuracy']:6.2f}  {drop:5.2f}  {ratios}  {r['pipeline']}"

    lines.append(row("dense", dense))
    lines += [row(str(r["trial"]), r) for r in result.front]
    return lines


def summary(result: SearchResult) -> dict[str, Any]:
    """search.json's content: settings, references, every trial, the front and the pick
    (deterministic: no wall-clock figures)."""
    s = result.settings
    return {
        "model": s.model,
        "target": s.target,
        "objectives": [o.name for o in s.objectives],
        "max_drop_points": s.max_drop,
        "budgets": s.budgets,
        "seed": s.seed,
        "sampler": s.sampler,
        "batch": s.batch,
        "space": {
            "signature": result.space.signature(),
            "dims": {d.name: [_plain(v) for v in d.values] for d in result.space.dims},
            "pinned": {k: _plain(v) for k, v in result.space.fixed},
        },
        "accuracy_on": "validation (calibration split minus the passes' calibration samples)",
        "costs": "static estimate of the shared cost model, one inference",
        "dense": result.dense,
        "hand_tuned": result.hand,
        "trials": result.trials,
        "front": [r["trial"] for r in result.front],
        "best": result.best,
        "closest": result.closest,
    }


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def write_json(path: Path, data: Any) -> None:
    """Write atomically (a temporary file renamed into place)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_plain) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def plot(result: SearchResult, path: Path, confirmed: Sequence[dict[str, Any]] = ()) -> bool:
    """pareto.png: accuracy against each cost objective; every trial, the front highlighted, the
    dense and hand-tuned points marked. False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s, dense = result.settings, result.dense
    costs = [o for o in s.objectives if o.name != "accuracy"]
    fig, axes = plt.subplots(1, len(costs), figsize=(6.2 * len(costs), 4.6), squeeze=False)
    ok = [r for r in result.trials if not r["error"]]
    floor = 100 * dense["accuracy"] - s.max_drop
    for ax, o in zip(axes[0], costs, strict=True):

        def xs(rows: Sequence[dict[str, Any]], key: str = o.key) -> list[float]:
            return [r[key] / dense[key] for r in rows]

        def ys(rows: Sequence[dict[str, Any]]) -> list[float]:
            return [100 * r["accuracy"] for r in rows]

        partial = [r for r in ok if not r["complete"]]
        infeasible = [r for r in ok if r["complete"] and not r["feasible"]]
        feasible = [r for r in ok if r["feasible"]]
        ax.scatter(xs(partial), ys(partial), s=14, marker="x", c="#bbbbbb", label="rejected early")
        ax.scatter(xs(infeasible), ys(infeasible), s=16, c="#999999", label="infeasible")
        ax.scatter(xs(feasible), ys(feasible), s=18, c="#4c72b0", label="feasible")
        front = sorted(result.front, key=lambda r: r[o.key])
        ax.plot(xs(front), ys(front), "o-", c="#d62728", ms=6, lw=1.2, label="Pareto front")
        if result.best is not None:
            b = result.best
            ax.scatter([b[o.key] / dense[o.key]], [100 * b["accuracy"]], s=160,
                       facecolors="none", edgecolors="#d62728", lw=2, label="best pick")  # fmt: skip
        hand = [r for r in result.hand if not r["error"]]
        ax.scatter(xs(hand), ys(hand), s=70, marker="D", c="#2ca02c", label="hand-tuned")
        ax.scatter([1.0], [100 * dense["accuracy"]], s=150, marker="*", c="k", label="dense fp16")
        ax.axhline(floor, ls="--", c="#888888", lw=0.8)
        if o.name in s.budgets:
            ax.axvline(s.budgets[o.name], ls=":", c="#888888", lw=0.8)
        ax.set_xlabel(f"{o.name} relative to dense (static estimate, {s.target})")
        ax.set_ylabel("top-1 accuracy % (validation)")
        ax.set_title(f"{s.model} on {s.target}: {len(ok)} trials")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
    return True
