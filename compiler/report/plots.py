"""The PNGs of `wisp report` (matplotlib, Agg): per-layer cost by precision, queue utilisation over
time, the roofline. Deterministic bytes: no Software/date metadata, a fixed hash salt."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, cast

from backend.config import Config
from backend.interpreter.report import QUEUE_NAMES
from compiler.report.figures import (
    PRECISIONS,
    Breakdown,
    RooflinePoint,
    Timeline,
    peak_macs_per_cycle,
)

PNG_MARK = "wisp report"  # the PNG Title: how `wisp report` knows it wrote a file
COLORS: dict[str, str] = dict(
    zip(PRECISIONS, ("#8c564b", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#aaaaaa"), strict=True)
)
_RC = {"svg.hashsalt": "wisp-report", "font.size": 9, "axes.titlesize": 10}


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _label(text: str, width: int = 40) -> str:
    """A name as plain text in matplotlib (no mathtext: `$` escaped), at most ``width`` chars."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("$", r"\$")


def _render(draw: Callable[[Any], Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(cast(Any, _RC)):
        fig = draw(plt)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None, "Title": PNG_MARK})
        plt.close(fig)
    return buf.getvalue()


def layers_png(b: Breakdown, order: Sequence[str], title: str) -> bytes:
    """Three panels (busy cycles, DRAM bytes, energy) of horizontal bars, one per layer, stacked
    by precision."""
    precs = b.precisions()
    names = [_label(t) for t in order]

    def draw(plt: Any) -> Any:
        fig, axes = plt.subplots(1, 3, figsize=(12, 1.4 + 0.26 * len(order)), sharey=True)
        metrics = (
            ("cycles", "busy cycles (all queues)", 1.0),
            ("dram_bytes", "DRAM bytes", 1.0),
            ("energy_pj", "energy (µJ)", 1e-6),
        )
        ys = list(range(len(order)))
        for ax, (key, label, scale) in zip(axes, metrics, strict=True):
            left = [0.0] * len(order)
            for p in precs:
                vals = [
                    float(getattr(b.layers[t][p], key)) * scale if p in b.layers[t] else 0.0
                    for t in order
                ]
                ax.barh(ys, vals, left=left, color=COLORS[p], label=p, height=0.7)
                left = [a + v for a, v in zip(left, vals, strict=True)]
            ax.set_xlabel(label)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(ys, names)
        axes[0].invert_yaxis()
        axes[-1].legend(title="precision", fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(_label(title, 120))
        return fig

    return _render(draw)


def queues_png(tl: Timeline, title: str) -> bytes:
    """Busy fraction of each queue per time bin, one row per queue."""
    xs = tl.edges

    def draw(plt: Any) -> Any:
        fig, axes = plt.subplots(
            len(QUEUE_NAMES), 1, figsize=(12, 0.9 + 0.8 * len(QUEUE_NAMES)), sharex=True
        )
        for ax, q in zip(axes, QUEUE_NAMES, strict=True):
            u = [100.0 * v for v in tl.utilisation(q)]
            ax.stairs(u, xs, fill=True, color="#4c72b0", alpha=0.8)
            ax.set_ylim(0, 100)
            ax.set_yticks([0, 50, 100])
            ax.set_ylabel(f"{q} %", rotation=0, ha="right", va="center")
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("cycle")
        axes[-1].set_xlim(xs[0], xs[-1])
        fig.suptitle(_label(title, 120))
        return fig

    return _render(draw)


def roofline_png(points: Sequence[RooflinePoint], cfg: Config, title: str) -> bytes:
    """Log-log roofline: a roof per MAC precision used, the DRAM slope, a point per layer."""
    with_dram = [p for p in points if p.intensity is not None and p.attained > 0]
    precs = [p for p in PRECISIONS if any(pt.precision == p for pt in points)] or ["fp16"]
    bw = cfg.dram.bytes_per_cycle

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(9, 5.6))
        peaks = {p: peak_macs_per_cycle(cfg, p) for p in precs}
        lo = min([pt.intensity or 1.0 for pt in with_dram] + [0.5 * min(peaks.values()) / bw])
        hi = max([pt.intensity or 1.0 for pt in with_dram] + [4 * max(peaks.values()) / bw])
        xs = [lo / 2, hi * 2]
        for n, p in enumerate(precs):  # equal roofs stay visible: each its own dash pattern
            knee = peaks[p] / bw
            ax.plot([xs[0], knee, xs[1]], [xs[0] * bw, peaks[p], peaks[p]], c=COLORS[p], lw=1.5,
                    ls=("-", "--", ":", "-.")[n % 4],
                    label=f"{p} roof: {peaks[p]:,.0f} MAC/cycle, {bw:g} B/cycle")  # fmt: skip
        spots: dict[tuple[float, float, str], list[str]] = {}  # equal layers share a label
        for pt in with_dram:
            assert pt.intensity is not None
            key = (round(pt.intensity, 9), round(pt.attained, 9), pt.precision)
            spots.setdefault(key, []).append(pt.layer)
        for n, ((x, y, prec), layers) in enumerate(spots.items()):
            ax.scatter([x], [y], c=COLORS[prec], edgecolors="k", s=40, zorder=3)
            text = _label(layers[0], 24) + (f" (+{len(layers) - 1})" if len(layers) > 1 else "")
            ax.annotate(text, (x, y), fontsize=7, xytext=(5, 4 if n % 2 else -10),
                        textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("operational intensity (MACs per DRAM byte)")
        ax.set_ylabel("attained MACs per cycle")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(_label(title, 120))
        return fig

    return _render(draw)
