"""Assemble the report of a compile OUTDIR: figures → PNGs → one HTML page (in memory)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from compiler.report import page as P
from compiler.report.figures import (
    MEASURED,
    STATIC,
    UNTAGGED,
    Breakdown,
    measured_breakdown,
    roofline,
    static_breakdown,
    timeline,
)
from compiler.report.load import Outdir, StaticLayer
from compiler.report.measure import Measured
from compiler.report.plots import layers_png, queues_png, roofline_png


@dataclass
class Report:
    """The page and its PNGs (file suffix → bytes), plus warnings to print."""

    html: str
    pngs: dict[str, bytes]
    warnings: list[str] = field(default_factory=list)


def _check_static(out: Outdir, b: Breakdown) -> list[str]:
    """Where report.json's per_layer disagrees with the program under the cost model."""
    notes = []
    tags = set(out.static.per_layer) | {t for t in b.layers if t != UNTAGGED}
    for tag in sorted(tags):
        t = b.layer_total(tag)
        mine = StaticLayer(t.instrs, t.cycles, t.macs, t.dram_bytes)
        theirs = out.static.per_layer.get(tag)
        if theirs != mine:
            notes.append(
                f"report.json: per_layer.{tag} is {theirs} but the program under "
                f"the cost model gives {mine}; the tables show report.json's figures"
            )
    return notes[:3]


def _static_layer_table(out: Outdir, b: Breakdown, order: list[str]) -> str:
    """report.json's per_layer (instructions, busy cycles, MACs, DRAM bytes) and the cost model's
    energy per layer; the untagged instructions; the totals."""
    rows, tot = [], [0, 0, 0, 0]
    energy = 0.0
    for tag in order:
        if tag == UNTAGGED:
            c = b.layer_total(tag)
            vals = [c.instrs, c.cycles, c.macs, c.dram_bytes]
        else:
            s = out.static.per_layer.get(tag) or StaticLayer(0, 0, 0, 0)
            vals = [s.instrs, s.busy_cycles, s.macs, s.dram_bytes]
        e = b.layer_total(tag).energy_pj
        energy += e
        tot = [a + v for a, v in zip(tot, vals, strict=True)]
        rows.append([P.esc(tag), *("#" + P.num(v) for v in vals), "#" + P.num(e / 1e3, 3)])
    total = ["total", *("#" + P.num(v) for v in tot), "#" + P.num(energy / 1e3, 3)]
    head = ["layer", "instructions", "busy cycles", "MACs", "DRAM bytes", "energy (nJ, cost model)"]
    return P.table("static-layers", head, rows, total)


def _measured_layer_table(rep: Any, b: Breakdown, order: list[str]) -> str:
    """The interpreter's per-layer figures (its report), the active cycles from the trace."""
    rows, tot, energy = [], [0, 0, 0, 0], 0.0
    for tag in order:
        if tag == UNTAGGED:
            c = b.layer_total(tag)
            vals, e = [c.instrs, c.cycles, c.macs, c.dram_bytes], c.energy_pj
        else:
            t = rep.per_tag[tag]
            vals, e = [t.instrs, t.busy_cycles, t.macs, t.dram_bytes], t.energy_pj
        energy += e
        tot = [a + v for a, v in zip(tot, vals, strict=True)]
        rows.append([P.esc(tag), *("#" + P.num(v) for v in vals), "#" + P.num(e / 1e3, 3),
                     "#" + P.num(b.span.get(tag, 0))])  # fmt: skip
    total = ["total", *("#" + P.num(v) for v in tot), "#" + P.num(energy / 1e3, 3), ""]
    head = ["layer", "instructions", "busy cycles", "MACs", "DRAM bytes", "energy (nJ)",
            "active cycles (trace)"]  # fmt: skip
    return P.table("measured-layers", head, rows, total)


def _summary(out: Outdir, sb: Breakdown, m: Measured | None) -> str:
    s = out.static
    st = sb.total()
    rows: list[list[str]] = []
    r = m.report if m is not None else None

    def row(name: str, a: str, b: str | None) -> None:
        rows.append([name, a, b if b is not None else ""])

    clock = out.config.clock_mhz
    row("cycles", "#" + P.num(s.cycles), "#" + P.num(r.cycles) if r else None)
    row("time (µs)", "#" + P.num(s.cycles / clock, 3), "#" + P.num(r.time_us, 3) if r else None)
    row("instructions", "#" + P.num(s.instructions), "#" + P.num(r.instructions) if r else None)
    if r is not None:
        row("predicated off", "", "#" + P.num(r.skipped))
    row("DRAM read (bytes)", "#" + P.num(s.dram_read), "#" + P.num(r.dram_read) if r else None)
    row("DRAM write (bytes)", "#" + P.num(s.dram_write), "#" + P.num(r.dram_write) if r else None)
    for p in ("int4", "int8", "fp16", "fp32"):
        a = s.macs.get(p, 0)
        b = r.macs_useful.get(p, 0) if r else 0
        if a or b:
            row(f"MACs {p}", "#" + P.num(a), "#" + P.num(b) if r else None)
    row("energy (nJ)", "#" + P.num(st.energy_pj / 1e3, 3) + " (cost model over the program)",
        "#" + P.num(r.energy_total_pj / 1e3, 3) if r else None)  # fmt: skip
    lb = s.bound.get("lower_bound", 0.0)
    row(
        "lower bound (cycles)",
        "#" + P.num(lb, 0),
        "#" + P.num(r.bound["lower_bound"], 0) if r else None,
    )
    mb = None
    if r is not None:
        mb = max(("matrix", "dram", "vector"), key=lambda k: r.bound.get(k, 0.0))
    row("bound by", P.esc(s.bound_by), P.esc(mb) if mb else None)
    row("efficiency (lower bound / cycles)", "#" + P.num(100 * s.efficiency, 1) + " %",
        "#" + P.num(100 * r.efficiency, 1) + " %" if r else None)  # fmt: skip
    head = ["", P.badge(STATIC), P.badge(MEASURED) if r else "measured: not run (--static)"]
    return P.table("summary", head, rows)


def model_order(tags: list[str], extra: list[str]) -> list[str]:
    """Layer tags in model order: by their first number (the block), within a block by first
    appearance in the program; tags without a number (embed, head) before the blocks when they
    sit in the program's first half on average, else after (the scheduler interleaves blocks)."""
    first: dict[str, int] = {}
    where: dict[str, list[int]] = {}
    for i, t in enumerate(tags):
        if t:
            first.setdefault(t, i)
            where.setdefault(t, []).append(i)
    half = len(tags) / 2

    def key(t: str) -> tuple[float, int]:
        m = re.search(r"\d+", t)
        if m:
            return (int(m.group(0)), first[t])
        early = sum(where[t]) / len(where[t]) < half
        return (-1 if early else math.inf, first[t])

    ordered = sorted(first, key=key)
    return ordered + [t for t in extra if t not in first]


def build(out: Outdir, m: Measured | None) -> Report:
    """The page (and its PNGs) for ``out``; ``m``: the interpreter run (None: --static)."""
    program, cfg = out.program, out.config
    sb = static_breakdown(program.instrs, out.layer_of, cfg)
    order = sb.order(model_order(out.layer_of or [], list(out.static.per_layer)))
    warnings = _check_static(out, sb)
    pngs: dict[str, bytes] = {}
    body = P.header(out, m.input_label if m else None)
    body.append("<h2>Summary</h2>")
    body.append(_summary(out, sb, m))
    for w in warnings:
        body.append(f'<p class="note">warning: {P.esc(w)}</p>')

    mb = None
    if m is not None:
        mb = measured_breakdown(program.instrs, m.events, cfg)
        morder = mb.order(order)
        body.append(f"<h2>Per layer {P.badge(MEASURED)}</h2>")
        pngs["layers-measured"] = layers_png(
            mb, morder, f"{out.model} on {out.target}: per layer, measured (interpreter run)"
        )
        body.append(P.image(pngs["layers-measured"], "per-layer cost by precision, measured"))
        body.append(_measured_layer_table(m.report, mb, morder))
        body.append(P.untagged_note(mb))
        body.append("<h3>by precision</h3>")
        body.append(P.precision_table("measured-precision", mb, morder))

    body.append(f"<h2>Per layer {P.badge(STATIC)}</h2>")
    pngs["layers-static"] = layers_png(
        sb, order, f"{out.model} on {out.target}: per layer, static estimate (cost model)"
    )
    body.append(P.image(pngs["layers-static"], "per-layer cost by precision, static estimate"))
    body.append(_static_layer_table(out, sb, order))
    body.append(P.untagged_note(sb))
    body.append("<h3>by precision</h3>")
    body.append(P.precision_table("static-precision", sb, order))
    body.append(
        '<p class="note">Precision: instructions, cycles, DRAM bytes and energy under the format '
        "of the instruction (a MATMUL's mode, else its element type); MACs under the precision "
        "they ran at (a masked MATMUL's INT4-MSB rows under int4). Busy cycles are summed over the "
        "five queues, which run in parallel. The one untagged instruction is the final FINISH "
        "(one cycle, counted in report.json's per-queue busy like every other).</p>"
    )

    if m is not None:
        assert mb is not None
        body.append(f"<h2>Queue utilisation over time {P.badge(MEASURED)}</h2>")
        tl = timeline(m.events, m.report.cycles)
        pngs["queues"] = queues_png(
            tl,
            f"queue busy % per {tl.edges[1] - tl.edges[0]:,}-cycle bin, measured (interpreter trace)",
        )
        body.append(P.image(pngs["queues"], "queue utilisation over time, measured"))
        rows, total = P.queue_rows(m.report, out.static.busy)
        head = ["queue", "instructions", "predicated off", "busy cycles", "stall cycles", "busy %",
                "busy cycles (static estimate)"]  # fmt: skip
        body.append(P.table("queues", head, rows, total))
    else:
        body.append(f"<h2>Queues {P.badge(STATIC)}</h2>")
        rows = [[P.esc(q), "#" + P.num(v)] for q, v in out.static.busy.items()]
        body.append(P.table("queues", ["queue", "busy cycles (static estimate)"], rows))
        body.append('<p class="note">The timeline needs an interpreter run (drop --static).</p>')

    src = mb if mb is not None else sb
    points = roofline(src, src.order(order), measured=mb is not None)
    how = (
        "measured: cycles during which any of the layer's instructions ran (interpreter trace)"
        if mb is not None
        else "static estimate: cycles of the layer's busiest queue (a lower bound)"
    )
    body.append(f"<h2>Roofline {P.badge(src.source)}</h2>")
    pngs["roofline"] = roofline_png(points, cfg, f"roofline of {out.target}: layers, {src.source}")
    body.append(P.image(pngs["roofline"], f"roofline, {src.source}"))
    body.append(P.roofline_table(points, cfg))
    body.append(
        f'<p class="note">Layer time: {P.esc(how)}. Roof: min(peak MACs per cycle of the '
        f"layer's main MAC precision, MACs per DRAM byte × {cfg.dram.bytes_per_cycle:g} DRAM "
        "bytes per cycle).</p>"
    )

    body.append("<h2>Passes</h2>")
    if not out.passes:
        body.append('<p class="note">no passes (empty pipeline)</p>')
    for i, p in enumerate(out.passes):
        body.append(P.pass_section(i, p))
    html = P.page(f"wisp report: {out.model} on {out.target}", body)
    return Report(html, pngs, warnings)
