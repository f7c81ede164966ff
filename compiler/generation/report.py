"""The per-token table of a generation run and its summary lines."""

from __future__ import annotations

from collections.abc import Sequence

from compiler.generation.session import Generator, Step


def token_table(
    steps: Sequence[Step], gen: Generator, wall: float, *, quiet: bool = False
) -> list[str]:
    """Rows per token (cycles, DRAM bytes, energy: measured by the interpreter) and a summary."""
    measured = gen.target is not None
    lines: list[str] = []
    if not quiet:
        for key, text in gen.pass_reports.items():
            if text.strip():
                lines.append(f"passes on {key}:")
                lines += [f"  {ln}" for ln in text.rstrip().splitlines()]
    if measured and not quiet:
        lines.append(
            f"{'tok':>4} {'char':>6} {'program':>10} {'context':>7} {'cycles':>10} "
            f"{'DRAM B':>11} {'energy uJ':>10}"
        )
        for s in steps:
            lines.append(
                f"{s.index:>4} {s.text!r:>6} {s.form:>10} {s.context:>7} {s.cycles:>10,} "
                f"{s.dram_bytes:>11,} {s.energy_uj:>10.3f}"
            )
    n = len(steps)
    decode = [s for s in steps if s.index > 0]
    where = (
        "reference executor" if not measured else f"interpreter ({gen.target_name or gen.target})"
    )
    how = " timing-only" if gen.timing_only else ""
    run = sum(s.seconds for s in decode)
    rate = f"{len(decode) / run:.1f} decode tokens/s" if run > 0 else "no decode step"
    lines.append(
        f"{n} tokens in {wall:.2f} s host time: {rate} on the {where}{how}; "
        f"{len(gen._forms)} programs compiled once in {gen.compile_seconds:.2f} s"
    )
    if measured and decode:
        cyc = sum(s.cycles for s in decode) / len(decode)
        dram = sum(s.dram_bytes for s in decode) / len(decode)
        energy = sum(s.energy_uj for s in decode) / len(decode)
        clock = float(gen.clock_mhz or 0.0)
        rate = f", {clock * 1e6 / cyc:,.0f} tokens/s modeled" if clock and cyc else ""
        lines.append(
            f"per decode step (mean of {len(decode)}, measured): {cyc:,.0f} cycles{rate}, "
            f"DRAM {dram:,.0f} B, energy {energy:.3f} uJ; prefill {steps[0].cycles:,} cycles, "
            f"DRAM {steps[0].dram_bytes:,} B"
        )
    return lines
