"""The run report: accumulation during a run, deterministic JSON and a printed table."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

import numpy as np

from backend.config import Config
from backend.cost.model import ENERGY_COMPONENTS, PRECISIONS, InstrCost
from backend.isa import Queue
from backend.wording import natural_key

QUEUE_NAMES = tuple(q.name.lower() for q in Queue)


def tag_of(comment: str) -> str:
    """Per-layer tag of an instruction: its comment up to the first whitespace ('' if none)."""
    return comment.split(maxsplit=1)[0] if comment.strip() else ""


_INT_FIELDS = ("cycles", "dram_read", "dram_write", "sram_read", "sram_write", "vector_ops",
               "select_ops")  # fmt: skip
_NI = len(_INT_FIELDS)
_NP = len(PRECISIONS)


# where a DMA's DRAM bytes go (`Report.dram_by_region`): the data section (weights and constant
# tables), an input symbol's region (e.g. a decode step's KV cache), anything else (activations,
# outputs); by the instruction's DRAM start address (backend/interpreter/plan.py: dram_regions)
DRAM_REGIONS = ("weights", "inputs", "activations")
_PREC_INDEX = {p: i for i, p in enumerate(PRECISIONS)}
_ENERGY_INDEX = {k: i for i, k in enumerate(ENERGY_COMPONENTS)}


def _int_row(c: InstrCost) -> list[int]:
    row = [c.cycles, c.dram_read, c.dram_write, c.sram_read, c.sram_write, c.vector_ops,
           c.select_ops] + [0] * (2 * _NP)  # fmt: skip
    for p, v in c.macs_useful.items():
        row[_NI + _PREC_INDEX[p]] += v
    for p, v in c.macs_issued.items():
        row[_NI + _NP + _PREC_INDEX[p]] += v
    return row


def _energy_row(c: InstrCost) -> list[float]:
    row = [0.0] * len(ENERGY_COMPONENTS)
    ix = _ENERGY_INDEX
    for k, v in c.energy.items():
        row[ix[k]] += v
    return row


@dataclass
class CostTable:
    """The static costs of a program's instructions as arrays, for `Report.add_executed`."""

    ints: np.ndarray  # (n, fields) int64: _INT_FIELDS, macs_useful, macs_issued by precision
    energy: np.ndarray  # (n, components) float64
    energy_total: np.ndarray  # (n,) float64: InstrCost.energy_total
    tag_ids: np.ndarray  # (n,) index into tags, -1 for no tag
    tags: list[str]
    regions: np.ndarray  # (n,) index into DRAM_REGIONS of the instruction's DRAM bytes

    @staticmethod
    def build(
        costs: Sequence[InstrCost | None],
        tags: Sequence[str | None],
        regions: Sequence[int] | None = None,
    ) -> CostTable:
        """Rows for each instruction (zeros where the cost is None: the step cannot execute);
        `regions` default: every DRAM byte counted as activations."""
        none = InstrCost()
        cs = [c if c is not None else none for c in costs]
        names: dict[str, int] = {}
        ids = [-1 if t is None else names.setdefault(t, len(names)) for t in tags]
        n = len(cs)
        ints = np.zeros((n, _NI + 2 * _NP), dtype=np.int64)
        energy = np.array([_energy_row(c) for c in cs], dtype=np.float64).reshape(
            n, len(ENERGY_COMPONENTS)
        )
        if n:
            ints[:, :_NI] = [
                (c.cycles, c.dram_read, c.dram_write, c.sram_read, c.sram_write, c.vector_ops,
                 c.select_ops)
                for c in cs
            ]  # fmt: skip
        for i, c in enumerate(cs):
            if c.macs_useful or c.macs_issued:
                ints[i] = _int_row(c)
        return CostTable(
            ints,
            energy,
            np.array([float(c.energy_total) for c in cs], dtype=np.float64),
            np.array(ids, dtype=np.intp),
            list(names),
            np.full(n, 2, np.intp) if regions is None else np.asarray(regions, np.intp),
        )


@dataclass
class QueueStats:
    """Per-queue counters (cycles)."""

    busy: int = 0
    stall: int = 0
    instrs: int = 0
    skipped: int = 0


@dataclass
class TagStats:
    """Per-tag (nn layer) counters."""

    instrs: int = 0
    busy_cycles: int = 0
    macs: int = 0
    dram_bytes: int = 0
    energy_pj: float = 0.0


@dataclass
class Report:
    """Everything a run measured. ``to_json()`` is deterministic (sorted keys)."""

    config: str
    clock_mhz: float
    cycles: int = 0
    instructions: int = 0
    skipped: int = 0
    queues: dict[str, QueueStats] = field(
        default_factory=lambda: {q: QueueStats() for q in QUEUE_NAMES}
    )
    macs_useful: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRECISIONS, 0))
    macs_issued: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRECISIONS, 0))
    dram_read: int = 0
    dram_write: int = 0
    dram_by_region: dict[str, int] = field(default_factory=dict)  # DRAM_REGIONS → read + write
    sram_read: int = 0
    sram_write: int = 0
    vector_ops: int = 0
    select_ops: int = 0
    energy_pj: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    )
    bound: dict[str, float] = field(default_factory=dict)
    efficiency: float = 0.0
    mac_utilization: float = 0.0
    per_tag: dict[str, TagStats] = field(default_factory=dict)
    unconsumed_tokens: dict[str, int] = field(default_factory=dict)
    timing_only: bool = False

    def copy(self) -> Report:
        """An independent copy (as ``copy.deepcopy``, without its generic walk): dict fields are
        copied with their dataclass values (queue and tag stats); anything else deep-copied."""
        kw: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                v = {
                    k: replace(x)
                    if is_dataclass(x) and not isinstance(x, type)
                    else copy.deepcopy(x)
                    for k, x in v.items()
                }
            elif not isinstance(v, (int, float, str, bool)):
                v = copy.deepcopy(v)
            kw[f.name] = v
        return replace(self, **kw)

    @property
    def time_us(self) -> float:
        """Wall time of the modeled run in microseconds."""
        return self.cycles / self.clock_mhz

    @property
    def energy_total_pj(self) -> float:
        """Total energy in pJ."""
        return sum(self.energy_pj.values())

    def add(self, q: int, c: InstrCost, tag: str | None, region: int = 2) -> None:
        """Account one executed (not skipped) instruction's cost (its DRAM bytes in DRAM_REGIONS
        `region`, default activations as in `CostTable.build`)."""
        self.dram_read += c.dram_read
        self.dram_write += c.dram_write
        if c.dram_read + c.dram_write:
            name = DRAM_REGIONS[region]
            self.dram_by_region[name] = (
                self.dram_by_region.get(name, 0) + c.dram_read + c.dram_write
            )
        self.sram_read += c.sram_read
        self.sram_write += c.sram_write
        self.vector_ops += c.vector_ops
        self.select_ops += c.select_ops
        for p, v in c.macs_useful.items():
            self.macs_useful[p] += v
        for p, v in c.macs_issued.items():
            self.macs_issued[p] += v
        e = self.energy_pj
        for k, v in c.energy.items():
            e[k] += v
        if tag is not None:
            t = self.per_tag.get(tag)
            if t is None:
                t = self.per_tag[tag] = TagStats()
            t.instrs += 1
            t.busy_cycles += c.cycles
            t.macs += sum(c.macs_useful.values())
            t.dram_bytes += c.dram_read + c.dram_write
            t.energy_pj += c.energy_total

    def add_executed(
        self, table: CostTable, executed: list[int], override: dict[int, InstrCost]
    ) -> None:
        """``add`` for each executed instruction index in order, at once; ``override`` maps a
        position in ``executed`` to the cost that replaces the table's row (masked MATMUL).

        Integer sums are order-free; float energies are sequential sums (``cumsum``), in
        execution order, so the result is bit-identical to calling ``add`` one by one.
        """
        ix = np.asarray(executed, dtype=np.intp)
        ints, energy, etot = table.ints[ix], table.energy[ix], table.energy_total[ix]
        for pos, c in override.items():
            ints[pos] = _int_row(c)
            energy[pos] = _energy_row(c)
            etot[pos] = c.energy_total
        tot = [int(v) for v in ints.sum(axis=0)]
        self.dram_read += tot[1]
        self.dram_write += tot[2]
        self.sram_read += tot[3]
        self.sram_write += tot[4]
        self.vector_ops += tot[5]
        self.select_ops += tot[6]
        for j, p in enumerate(PRECISIONS):
            self.macs_useful[p] += tot[_NI + j]
            self.macs_issued[p] += tot[_NI + _NP + j]
        e = self.energy_pj
        start = np.array([e[k] for k in ENERGY_COMPONENTS], dtype=np.float64)
        sums = np.cumsum(np.vstack([start[None, :], energy]), axis=0)[-1]
        for k, v in zip(ENERGY_COMPONENTS, sums.tolist(), strict=True):
            e[k] = v
        rw = ints[:, 1] + ints[:, 2]
        by_region = np.bincount(table.regions[ix], weights=rw, minlength=len(DRAM_REGIONS))
        for name, b in zip(DRAM_REGIONS, by_region.tolist(), strict=True):
            if b:
                self.dram_by_region[name] = self.dram_by_region.get(name, 0) + int(b)
        tid = table.tag_ids[ix]
        present, first = np.unique(tid, return_index=True)
        dram = ints[:, 1] + ints[:, 2]
        macs = ints[:, _NI : _NI + _NP].sum(axis=1)
        for t in present[np.argsort(first)].tolist():
            if t < 0:
                continue
            sel = tid == t
            name = table.tags[t]
            st = self.per_tag.get(name)
            if st is None:
                st = self.per_tag[name] = TagStats()
            st.instrs += int(sel.sum())
            st.busy_cycles += int(ints[sel, 0].sum())
            st.macs += int(macs[sel].sum())
            st.dram_bytes += int(dram[sel].sum())
            st.energy_pj = float(np.cumsum(np.concatenate([[st.energy_pj], etot[sel]]))[-1])

    def finish(self, config: Config) -> None:
        """Compute the lower bound, efficiency and utilization once cycles are known."""
        mx = config.matrix
        rates = {"int4": mx.int4_rate, "int8": mx.int8_rate, "fp16": mx.fp16_rate}
        rates["fp32"] = mx.fp16_rate
        matrix = sum(v / (mx.macs_per_cycle * rates[p]) for p, v in self.macs_useful.items())
        dram = (self.dram_read + self.dram_write) / config.dram.bytes_per_cycle
        vector = self.vector_ops / config.vector_lanes
        lb = max(matrix, dram, vector)
        self.bound = {"matrix": matrix, "dram": dram, "vector": vector, "lower_bound": lb}
        cyc = max(self.cycles, 1)
        self.efficiency = lb / cyc
        self.mac_utilization = sum(self.macs_useful.values()) / (mx.macs_per_cycle * cyc)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (floats rounded to 6 significant digits)."""
        d = asdict(self)
        d["time_us"] = self.time_us
        d["energy_pj"]["total"] = self.energy_total_pj
        return _round(d)

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    def table(self) -> str:
        """Human-readable summary."""
        lines = [
            f"config {self.config} @ {self.clock_mhz:g} MHz"
            + ("  (timing only)" if self.timing_only else ""),
            f"cycles {self.cycles:,}  ({self.time_us:,.2f} us, measured: interpreter run)"
            f"  instructions {self.instructions:,}  skipped {self.skipped:,}",
            f"lower bound {self.bound.get('lower_bound', 0):,.0f} cycles (matrix "
            f"{self.bound.get('matrix', 0):,.0f}, dram {self.bound.get('dram', 0):,.0f}, vector "
            f"{self.bound.get('vector', 0):,.0f})  efficiency {self.efficiency:.1%}"
            f"  MAC utilization {self.mac_utilization:.1%}",
            "",
            f"{'queue':<8}{'instrs':>10}{'skipped':>9}{'busy':>14}{'stall':>14}{'busy %':>8}",
        ]
        cyc = max(self.cycles, 1)
        for name, q in self.queues.items():
            lines.append(
                f"{name:<8}{q.instrs:>10,}{q.skipped:>9,}{q.busy:>14,}{q.stall:>14,}"
                f"{q.busy / cyc:>8.1%}"
            )
        lines += ["", f"{'precision':<10}{'MACs useful':>16}{'MACs issued':>16}"]
        for p in PRECISIONS:
            lines.append(f"{p:<10}{self.macs_useful[p]:>16,}{self.macs_issued[p]:>16,}")
        lines += [
            "",
            f"DRAM read {self.dram_read:,} B  write {self.dram_write:,} B   "
            f"SRAM read {self.sram_read:,} B  write {self.sram_write:,} B",
            f"vector ops {self.vector_ops:,}  select ops {self.select_ops:,}",
            "energy (uJ): "
            + "  ".join(f"{k} {v / 1e6:.4g}" for k, v in self.energy_pj.items())
            + f"  total {self.energy_total_pj / 1e6:.4g}",
        ]
        if self.per_tag:
            lines += ["", f"{'tag':<32}{'instrs':>8}{'busy cyc':>12}{'MACs':>14}{'DRAM B':>12}"]
            for tag, t in sorted(self.per_tag.items(), key=lambda kv: natural_key(kv[0])):
                lines.append(
                    f"{(tag or '(none)')[:31]:<32}{t.instrs:>8,}{t.busy_cycles:>12,}"
                    f"{t.macs:>14,}{t.dram_bytes:>12,}"
                )
        if self.unconsumed_tokens:
            lines.append(f"unconsumed tokens: {self.unconsumed_tokens}")
        return "\n".join(lines)


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x
