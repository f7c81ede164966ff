"""Resource limits for running untrusted programs: checked before anything is allocated or run.

A program is data from anywhere. Before the interpreter allocates memory or executes an
instruction it checks that

- the symbols lie inside DRAM (`check_symbols`);
- DRAM plus the SRAM buffers fit in ``max_memory`` bytes (`check_machine`);
- no instruction touches more than ``max_tile_elements`` elements in one operand, counting
  stride-0 (broadcast) rows as many times as they are read: that is what the host allocates
  (`check_tiles`, statically for every instruction and again at issue for data-dependent ones);
- the modeled cycles (the sum over instructions, an upper bound of the run) stay within
  ``max_cycles`` and the multiply-accumulates within ``max_macs`` (`check_work`).

Each failure is one `SimError` that names the instruction index (where there is one) and the
limit, and says which option raises it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backend.cost import InstrCost
from backend.errors import SimError
from backend.interpreter.operands import Tile
from backend.program import Program

BYTES_PER_ELEMENT = 16  # host bytes per tile element: a float64 copy plus one temporary


@dataclass(frozen=True)
class Limits:
    """What one run may use. The defaults admit every zoo model and refuse runaway programs."""

    max_memory: int = 2 << 30  # bytes: DRAM + SRAM
    max_tile_elements: int = 1 << 24  # elements of one operand tile (host temporaries)
    max_cycles: int = 1 << 33  # modeled cycles, summed over instructions
    max_macs: int = 1 << 37  # multiply-accumulates, summed over instructions


DEFAULT_LIMITS = Limits()


def check_symbols(program: Program, dram_size: int) -> None:
    """Every symbol's region lies inside DRAM (``dram_size`` bytes)."""
    for s in program.symbols.values():
        end = s.addr + s.nbytes
        if s.addr < 0 or end > dram_size:
            raise SimError(
                f"symbol '{s.name}' ({s.kind}) occupies DRAM [{s.addr}, {end}), "
                f"beyond the DRAM size {dram_size}"
            )


def check_machine(sram: Sequence[int], dram_size: int, limits: Limits) -> None:
    """DRAM and SRAM together fit in ``limits.max_memory``."""
    total = sum(sram) + dram_size
    if total > limits.max_memory:
        raise SimError(
            f"the machine needs {total} bytes (DRAM {dram_size} + SRAM {sum(sram)}), more than "
            f"the memory limit {limits.max_memory} (raise it with --max-memory)"
        )


def check_tiles(tiles: Iterable[Tile], limits: Limits) -> None:
    """No operand tile expands to more than ``limits.max_tile_elements`` elements."""
    for t in tiles:
        n = max(t.rows, 0) * max(t.cols, 0)
        if n > limits.max_tile_elements:
            raise SimError(
                f"operand of {t.rows} x {t.cols} = {n} elements exceeds the limit of "
                f"{limits.max_tile_elements} elements per tile (raise it with --max-memory)"
            )


def check_work(costs: Sequence[InstrCost | None], limits: Limits) -> None:
    """Modeled cycles and MACs, summed over all instructions, within the limits."""
    cycles = macs = 0
    for idx, c in enumerate(costs):
        if c is None:
            continue
        cycles += c.cycles
        macs += sum(c.macs_issued.values())
        if cycles > limits.max_cycles:
            raise SimError(
                f"the program's modeled cycles exceed the limit {limits.max_cycles} here "
                "(raise it with --max-cycles)",
                idx,
            )
        if macs > limits.max_macs:
            raise SimError(
                f"the program's multiply-accumulates exceed the limit {limits.max_macs} here "
                "(raise it with --max-cycles)",
                idx,
            )


def limits_for(max_memory: int | None = None, max_cycles: int | None = None) -> Limits:
    """Limits from the two user options: the tile cap scales with memory, the MAC cap with cycles."""
    d = DEFAULT_LIMITS
    mem = d.max_memory if max_memory is None else max_memory
    cyc = d.max_cycles if max_cycles is None else max_cycles
    return Limits(
        max_memory=mem,
        max_tile_elements=max(1, mem // (8 * BYTES_PER_ELEMENT)),
        max_cycles=cyc,
        max_macs=cyc * (d.max_macs // d.max_cycles),
    )
