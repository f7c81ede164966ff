"""The HTML page of `wisp report`: one self-contained file (inline CSS, PNGs as data URIs, no
scripts, no external URL). Every string from the OUTDIR is escaped."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from html import escape
from typing import Any

from backend.interpreter.report import QUEUE_NAMES
from compiler.report.figures import (
    UNTAGGED,
    Breakdown,
    RooflinePoint,
    roof,
)
from compiler.report.load import Outdir, PassInfo

GENERATOR = '<meta name="generator" content="wisp report">'  # how `wisp report` knows its files
MAX_ROWS = 400  # rows of one generic pass-report table shown

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ddd;padding:.2em .55em}th{background:#f3f3f3;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:bold;background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee}
.src{display:inline-block;font-size:.75em;padding:.1em .5em;border-radius:.8em;margin-left:.4em;
vertical-align:middle}.static{background:#e8eefc;color:#1a3d8f}.measured{background:#e6f4e6;color:#1d5e1d}
.note{color:#555;font-size:.9em}code{background:#f5f5f5;padding:0 .2em;word-break:break-all}
"""


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def num(v: int | float, digits: int = 0) -> str:
    """A number for a table cell: integers exactly (with thousands separators)."""
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def badge(source: str) -> str:
    kind = "measured" if source.startswith("measured") else "static"
    return f'<span class="src {kind}">{esc(source)}</span>'


def table(
    ident: str,
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    total: Sequence[str] | None = None,
) -> str:
    """A table; cells are HTML already (numbers right-aligned: mark them with a leading '#')."""

    def cell(c: str) -> str:
        return f'<td class="n">{c[1:]}</td>' if c.startswith("#") else f"<td>{c}</td>"

    out = [
        f'<table id="{esc(ident)}"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
    ]
    out += ["<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows]
    if total is not None:
        out.append('<tr class="total">' + "".join(cell(c) for c in total) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></p>'


def _fmt(v: Any) -> str:
    """A JSON value from a pass report as escaped HTML."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return esc(str(v).lower())
    if isinstance(v, int):
        return f"{v:,}" if abs(v) < 10**30 else esc(f"{v:.4g}")
    if isinstance(v, float):
        return esc(f"{v:,.4g}")
    if isinstance(v, str):
        return esc(v)
    text = json.dumps(v, sort_keys=True)
    return esc(text if len(text) <= 200 else text[:199] + "…")


def _generic(ident: str, key: str, v: Any) -> str:
    """A pass-report entry: a table for a mapping or list of objects, else a line."""
    title = f"<p><b>{esc(key)}</b></p>"
    rows_in: list[tuple[str, dict[str, Any]]] = []
    first = ["#"]
    if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
        rows_in = [(str(k), x) for k, x in v.items()]
        first = [esc(key.rstrip("s") or "key")]
    elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        rows_in = [(str(i), x) for i, x in enumerate(v)]
    if rows_in:
        cols: list[str] = []
        for _, x in rows_in:
            cols += [str(c) for c in x if str(c) not in cols]
        cols = cols[:40]
        rows = [[esc(name)] + [_fmt(x.get(c)) for c in cols] for name, x in rows_in[:MAX_ROWS]]
        more = len(rows_in) - MAX_ROWS
        tail = f'<p class="note">{more:,} more rows not shown</p>' if more > 0 else ""
        return title + table(ident, first + [esc(c) for c in cols], rows) + tail
    if isinstance(v, dict):
        return title + table(
            ident, ["key", "value"], [[esc(k), _fmt(x)] for k, x in list(v.items())[:MAX_ROWS]]
        )
    if isinstance(v, list) and all(not isinstance(x, dict | list) for x in v):
        return f"<p><b>{esc(key)}</b>: {', '.join(_fmt(x) for x in v[:MAX_ROWS])}</p>"
    return f"<p><b>{esc(key)}</b>: {_fmt(v)}</p>"


_COSTS = ("cycles", "energy")  # pass-report figures that are static cost-model estimates


def pass_section(index: int, p: PassInfo) -> str:
    """One pass: its before → after figures, its notes, then its other report entries."""
    rep = p.report
    out = [f"<h3>{index + 1}. {esc(p.name)}</h3>"]
    before, after = rep.get("before"), rep.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        rows = []
        for k in [*b, *(k for k in a if k not in b)]:
            x, y = b.get(k), a.get(k)
            change = ""
            nums = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
            if nums and x:
                change = esc(f"{100 * (y - x) / x:+.1f}%")
            label = esc(k) + (" (static estimate)" if any(w in str(k) for w in _COSTS) else "")
            rows.append([label, "#" + _fmt(x), "#" + _fmt(y), "#" + change])
        out.append(
            table(f"pass-{index}-before-after", ["figure", "before", "after", "change"], rows)
        )
    notes = rep.get("notes")
    if isinstance(notes, list) and notes:
        out.append("<ul>" + "".join(f"<li>{_fmt(n)}</li>" for n in notes[:MAX_ROWS]) + "</ul>")
    for k, v in rep.items():
        if k not in ("before", "after", "notes"):
            out.append(_generic(f"pass-{index}-{len(out)}", str(k), v))
    if len(out) == 1:
        out.append('<p class="note">no report</p>')
    return "\n".join(out)


def layer_rows(b: Breakdown, order: Sequence[str]) -> list[list[str]]:
    """Per layer and precision: instructions, busy cycles, DRAM bytes, energy (nJ), MACs."""
    rows = []
    for tag in order:
        for p in b.precisions():
            c = b.layers[tag].get(p)
            if c is not None:
                rows.append([esc(tag), esc(p), "#" + num(c.instrs), "#" + num(c.cycles),
                             "#" + num(c.dram_bytes), "#" + num(c.energy_pj / 1e3, 3),
                             "#" + num(c.macs)])  # fmt: skip
    return rows


def precision_table(ident: str, b: Breakdown, order: Sequence[str]) -> str:
    t = b.total()
    total = ["total", "", "#" + num(t.instrs), "#" + num(t.cycles), "#" + num(t.dram_bytes),
             "#" + num(t.energy_pj / 1e3, 3), "#" + num(t.macs)]  # fmt: skip
    head = [
        "layer",
        "precision",
        "instructions",
        "busy cycles",
        "DRAM bytes",
        "energy (nJ)",
        "MACs",
    ]
    return table(ident, head, layer_rows(b, order), total)


def roofline_table(points: Sequence[RooflinePoint], cfg: Any) -> str:
    rows = []
    for p in points:
        i = p.intensity
        r = roof(cfg, p.precision, i) if i is not None else None
        bound = "-"
        if i is not None and r is not None:
            bound = "DRAM" if r < roof(cfg, p.precision, float("inf")) else "compute"
        rows.append([
            esc(p.layer), esc(p.precision), "#" + num(p.macs), "#" + num(p.dram_bytes),
            "#" + num(p.cycles), "#" + (num(i, 2) if i is not None else "-"),
            "#" + num(p.attained, 2), "#" + (num(r, 1) if r is not None else "-"),
            "#" + (num(100 * p.attained / r, 1) if r else "-"), bound,
        ])  # fmt: skip
    head = ["layer", "precision", "MACs", "DRAM bytes", "cycles", "MACs / DRAM byte",
            "MACs / cycle", "roof (MACs / cycle)", "% of roof", "roof bound"]  # fmt: skip
    return table("roofline", head, rows)


def page(title: str, body: Sequence[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        GENERATOR,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        *body,
        '<p class="note">Written by <code>wisp report</code>. Static estimates: the shared cost '
        "model (backend/cost) over the program, as report.json; measured: one run of the bit-exact "
        "ISA interpreter (cycles from its event-driven timing).</p>",
        "</body></html>",
        "",
    ])  # fmt: skip


def header(out: Outdir, measured_label: str | None) -> list[str]:
    lines = [
        f"<h1>wisp report: {esc(out.model)} on {esc(out.target)}</h1>",
        "<p>pipeline: <code>" + (esc(out.pipeline) if out.pipeline else "(none)") + "</code></p>",
        f"<p>compiled program: <code>{esc(out.path.name)}</code>, "
        f"{len(out.program.instrs):,} instructions, {len(out.program.data):,} B DRAM image; "
        f"config {esc(out.config.name)} at {out.config.clock_mhz:g} MHz</p>",
    ]
    if measured_label is not None:
        lines.append(f"<p>measured on: {esc(measured_label)}</p>")
    else:
        lines.append(
            '<p class="note">--static: no interpreter run; every figure is a static estimate.</p>'
        )
    return lines


def queue_rows(rep: Any, static_busy: dict[str, int]) -> tuple[list[list[str]], list[str]]:
    rows, tot = [], [0, 0, 0, 0, 0]
    cyc = max(rep.cycles, 1)
    for name in QUEUE_NAMES:
        q = rep.queues[name]
        rows.append([esc(name), "#" + num(q.instrs), "#" + num(q.skipped), "#" + num(q.busy),
                     "#" + num(q.stall), "#" + num(100 * q.busy / cyc, 1),
                     "#" + num(static_busy.get(name, 0))])  # fmt: skip
        for k, v in enumerate((q.instrs, q.skipped, q.busy, q.stall, static_busy.get(name, 0))):
            tot[k] += v
    total = ["total", *("#" + num(v) for v in tot[:4]), "", "#" + num(tot[4])]
    return rows, total


def untagged_note(b: Breakdown) -> str:
    if UNTAGGED not in b.layers and not b.skipped:
        return ""
    parts = []
    if UNTAGGED in b.layers:
        parts.append(
            f"{esc(UNTAGGED)}: instructions without a layer tag (FINISH, token bookkeeping)"
        )
    if b.skipped:
        parts.append(
            f"{b.skipped:,} predicated-off instructions ({b.skipped_cycles:,} issue cycles) are not in any layer"
        )
    return f'<p class="note">{"; ".join(parts)}.</p>'
