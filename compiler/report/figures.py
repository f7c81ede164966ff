"""The figures of `wisp report`, as data: per-layer cost by precision (static estimate from the
cost model over the program, or measured from an interpreter trace), queue utilisation over time
and the roofline position of each layer. No plotting and no HTML here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.config import Config
from backend.cost import InstrCost, cost
from backend.interpreter.report import QUEUE_NAMES, tag_of
from backend.isa import DType, Instr

PRECISIONS = ("int4", "int8", "fp16", "fp32", "int32", "other")
UNTAGGED = "(untagged)"  # instructions without a layer tag (FINISH, token bookkeeping)
STATIC = "static estimate (cost model)"
MEASURED = "measured (interpreter run)"


def precision_of(ins: Instr, c: InstrCost) -> str:
    """The format an instruction works in: that of its MACs (MATMUL; ``c`` its cost without
    masked rows), else its element type (out_dtype, dtype, dst_dtype); 'other' for control."""
    if c.macs_useful:
        return max(sorted(c.macs_useful), key=lambda p: c.macs_useful[p])
    args = ins.args
    if "out_dtype" in args:
        return ins.cls.field("out_dtype").choices[int(args["out_dtype"])]
    if ins.cls.name == "LOADBP":
        return "int4"
    for f in ("dtype", "dst_dtype", "src_dtype"):
        if f in args:
            return DType(int(args[f])).asm_name
    return "other"


@dataclass
class Cell:
    """Summed cost of some instructions: busy cycles, DRAM bytes, energy (pJ), useful MACs."""

    instrs: int = 0
    cycles: int = 0
    dram_bytes: int = 0
    energy_pj: float = 0.0
    macs: int = 0

    def add(self, c: InstrCost) -> None:
        """Count an instruction (its MACs are counted by precision: `Breakdown.add`)."""
        self.instrs += 1
        self.cycles += c.cycles
        self.dram_bytes += c.dram_read + c.dram_write
        self.energy_pj += c.energy_total

    def merge(self, other: Cell) -> None:
        self.instrs += other.instrs
        self.cycles += other.cycles
        self.dram_bytes += other.dram_bytes
        self.energy_pj += other.energy_pj
        self.macs += other.macs


@dataclass
class Breakdown:
    """Per layer tag, per precision: the cost of its instructions (executed ones, when measured):
    instructions, cycles, DRAM bytes and energy under the instruction's format; MACs under the
    precision they ran at (a masked MATMUL's int4 rows under int4).

    ``queue_cycles[tag][q]``: busy cycles of the layer on each queue; ``span[tag]``: cycles during
    which at least one of its instructions ran (measured only); ``skipped``/``skipped_cycles``:
    predicated-off instructions (one issue cycle each, no layer)."""

    source: str
    layers: dict[str, dict[str, Cell]] = field(default_factory=dict)
    queue_cycles: dict[str, list[int]] = field(default_factory=dict)
    span: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    skipped_cycles: int = 0

    def add(self, tag: str, q: int, ins: Instr, c: InstrCost, fmt: str) -> None:
        per = self.layers.setdefault(tag, {})
        per.setdefault(fmt, Cell()).add(c)
        for p in sorted(c.macs_useful):
            per.setdefault(p, Cell()).macs += c.macs_useful[p]
        self.queue_cycles.setdefault(tag, [0] * len(QUEUE_NAMES))[q] += c.cycles

    def layer_total(self, tag: str) -> Cell:
        out = Cell()
        for cell in self.layers.get(tag, {}).values():
            out.merge(cell)
        return out

    def total(self) -> Cell:
        out = Cell()
        for tag in self.layers:
            out.merge(self.layer_total(tag))
        return out

    def precisions(self) -> list[str]:
        used = {p for per in self.layers.values() for p in per}
        return [p for p in PRECISIONS if p in used]

    def order(self, reference: Sequence[str] = ()) -> list[str]:
        """Layer tags: those of ``reference`` first (program order), then the rest; untagged last."""
        tags = [t for t in reference if t in self.layers and t != UNTAGGED]
        tags += [t for t in self.layers if t not in tags and t != UNTAGGED]
        return tags + ([UNTAGGED] if UNTAGGED in self.layers else [])


def _tag(ins: Instr, layer_of: Sequence[str] | None, idx: int) -> str:
    tag = layer_of[idx] if layer_of is not None else tag_of(ins.comment)
    return tag or UNTAGGED


def static_breakdown(
    instrs: Sequence[Instr], layer_of: Sequence[str] | None, cfg: Config
) -> Breakdown:
    """Every instruction once, priced by the cost model (what report.json's per_layer sums)."""
    out = Breakdown(STATIC)
    for idx, ins in enumerate(instrs):
        c = cost(ins, cfg)
        out.add(_tag(ins, layer_of, idx), int(ins.cls.queue), ins, c, precision_of(ins, c))
    return out


def trace_instr_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The instruction events ("X") of an interpreter trace, in issue order."""
    return [e for e in events if e.get("ph") == "X"]


def measured_breakdown(
    instrs: Sequence[Instr], events: Sequence[dict[str, Any]], cfg: Config
) -> Breakdown:
    """The executed instructions of a traced run, priced as the interpreter priced them (the
    cost model with the run's masked MATMUL rows), tagged as the interpreter tags them."""
    out = Breakdown(MEASURED)
    spans: dict[str, list[tuple[int, int]]] = {}
    for e in trace_instr_events(events):
        a = e["args"]
        if a["skipped"]:
            out.skipped += 1
            out.skipped_cycles += int(a["cycles"])
            continue
        ins = instrs[int(a["index"])]
        masked = int(a.get("masked_rows", 0))
        c = cost(ins, cfg, masked)
        if c.cycles != int(a["cycles"]):
            raise AssertionError(
                f"instruction {a['index']}: trace {a['cycles']} cycles, cost {c.cycles}"
            )
        tag = tag_of(ins.comment) or UNTAGGED
        out.add(tag, int(e["tid"]), ins, c, precision_of(ins, cost(ins, cfg) if masked else c))
        spans.setdefault(tag, []).append((int(a["cycle"]), int(a["cycle"]) + c.cycles))
    out.span = {tag: union_length(iv) for tag, iv in spans.items()}
    return out


def union_length(intervals: Iterable[tuple[int, int]]) -> int:
    """Length of the union of half-open integer intervals."""
    total, end = 0, None
    for a, b in sorted(intervals):
        if end is None or a >= end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


@dataclass(frozen=True)
class Timeline:
    """Busy cycles of each queue in each of ``len(edges) - 1`` bins of the run."""

    edges: list[int]  # bin k covers cycles [edges[k], edges[k+1])
    busy: dict[str, list[int]]

    def utilisation(self, queue: str) -> list[float]:
        return [
            b / (hi - lo)
            for b, lo, hi in zip(self.busy[queue], self.edges, self.edges[1:], strict=False)
        ]


def timeline(events: Sequence[dict[str, Any]], cycles: int, bins: int = 160) -> Timeline:
    """Queue occupancy over time from trace events (executed and predicated-off instructions both
    occupy their queue, as the interpreter's per-queue busy counts them)."""
    n = max(1, min(bins, cycles))
    edges = [k * cycles // n for k in range(n + 1)]
    width = [hi - lo for lo, hi in zip(edges, edges[1:], strict=False)]
    busy = {q: [0] * n for q in QUEUE_NAMES}
    for e in trace_instr_events(events):
        a = e["args"]
        start, end = int(a["cycle"]), int(a["cycle"]) + int(a["cycles"])
        row = busy[QUEUE_NAMES[int(e["tid"])]]
        k = min(n - 1, start * n // cycles) if cycles else 0
        while k > 0 and edges[k] > start:
            k -= 1
        while k < n and edges[k] < end:
            lo, hi = max(start, edges[k]), min(end, edges[k + 1])
            if hi > lo:
                row[k] += hi - lo
            k += 1
    assert all(b <= w for row in busy.values() for b, w in zip(row, width, strict=True))
    return Timeline(edges, busy)


@dataclass(frozen=True)
class RooflinePoint:
    """One layer on the roofline: MACs per DRAM byte against MACs per cycle."""

    layer: str
    macs: int
    dram_bytes: int
    cycles: int
    precision: str  # the layer's dominant MAC precision (its roof)

    @property
    def intensity(self) -> float | None:
        return self.macs / self.dram_bytes if self.dram_bytes else None

    @property
    def attained(self) -> float:
        return self.macs / self.cycles if self.cycles else 0.0


def peak_macs_per_cycle(cfg: Config, precision: str) -> float:
    """The matrix unit's MACs per cycle at a precision (arrays × rows × cols × rate)."""
    mx = cfg.matrix
    rate = {"int4": mx.int4_rate, "int8": mx.int8_rate}.get(precision, mx.fp16_rate)
    return mx.macs_per_cycle * rate


def roof(cfg: Config, precision: str, intensity: float) -> float:
    """Attainable MACs per cycle at an intensity: min(peak, intensity × DRAM bytes per cycle)."""
    return min(peak_macs_per_cycle(cfg, precision), intensity * cfg.dram.bytes_per_cycle)


def roofline(b: Breakdown, order: Sequence[str], measured: bool) -> list[RooflinePoint]:
    """Layers with MACs, placed by their MACs, DRAM bytes and cycles: measured, the cycles during
    which any of their instructions ran; static, their busiest queue's cycles (a lower bound)."""
    out = []
    for tag in order:
        if tag == UNTAGGED:
            continue
        cells = b.layers[tag]
        macs = {p: c.macs for p, c in cells.items() if c.macs}
        if not macs:
            continue
        t = b.layer_total(tag)
        cycles = b.span[tag] if measured else max(b.queue_cycles[tag])
        prec = max(sorted(macs), key=lambda p: macs[p])
        out.append(RooflinePoint(tag, t.macs, t.dram_bytes, cycles, prec))
    return out
