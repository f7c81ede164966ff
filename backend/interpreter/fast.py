"""Functional runs without the event loop, for programs whose timing cannot depend on data.

When no instruction's cost or issue depends on values (no CMP: predicates are set only by SETP;
no MATMUL precision mask: its cost counts masked rows), the issue order, the cycle counts and
the whole report are the same for every input. The first functional run then computes them once
with a timing-only pass of the event loop (`engine.event_loop`) and caches them on the program
with the executed instructions in issue order; every functional run executes the semantics
(`semantics.HANDLERS`, the one definition of each instruction) straight down that list.

Conversions of constant operands are kept across runs: a MATMUL operand whose bytes were
LOADed from DRAM that no input and no STORE ever writes holds the same values in every run, so
the float copy its handler makes through `Machine.read_as` is kept with the schedule and put back
into the machine's conversion cache before the handler runs again (the handler still reads it
through `read_as`; results are the same bits, the conversion is simply not repeated).

The run-time checks stay exact: the timing pass performs every check that does not depend on
data (bounds, races between static operand tiles, deadlock; if it raises, the run falls back to
the event loop so the error is the one it reports). Operands that depend on data (GATHER and
VGATHER source rows) are decoded at run time, bounds- and limit-checked, and race-checked
against the instructions the timing pass recorded in flight with them, in the same order.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from backend.errors import SimError
from backend.interpreter.checks import check_race, may_race
from backend.interpreter.io import read_outputs
from backend.interpreter.limits import Limits, check_tiles
from backend.interpreter.operands import DRAM, Tile, decode, tiles_overlap
from backend.interpreter.plan import Box, Step, boxes_of, is_noop
from backend.interpreter.prepared import Prepared, compile_schedule, pooled
from backend.interpreter.report import CostTable, Report
from backend.interpreter.state import Machine
from backend.program import HOST_WRITTEN, Program

if TYPE_CHECKING:
    from backend.config import Config
    from backend.interpreter.engine import Result

_CACHE_ATTR = "_wisp_interp_schedule"
CONTROL = _CONTROL = frozenset(
    {"SETP", "NOP", "FINISH"}
)  # no effect on memory (predicates: in the order)
Snapshot = tuple[int, list[tuple[int, int, int, int]]]  # start, in-flight (start, end, q, index)


PERSIST_LIMIT = 1 << 30  # bytes of constant-operand conversions kept per schedule
FEntry = tuple[Tile, np.ndarray, int, int, int]  # a `Machine.fcache` value


@dataclass
class Schedule:
    """A program's data-independent execution for one (config, memory sizes)."""

    order: list[int]  # executed (not skipped) instruction indices, in issue order
    report: Report  # the report every functional run produces
    record: dict[int, Snapshot]  # position in ``order`` → in-flight entries to race-check
    const: dict[int, list[Tile]]  # position → MATMUL operand tiles constant across runs
    data: bytes | None = None  # the DRAM image ``persist`` was computed from
    persist: dict[int, list[tuple[tuple, FEntry]]] = field(default_factory=dict)
    persist_bytes: int = 0
    prepared: Prepared | None = None  # the order compiled for the program's kept machine

    def __getstate__(self) -> dict:
        """Copies and pickles leave the closures (bound to one machine's memory) behind."""
        state = dict(self.__dict__)
        state["prepared"] = None
        return state


def _box(t: Tile) -> tuple[int, int, int]:
    return t.space, t.off, t.off if t.empty else t.end


def _meets(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def _within(t: Tile, outer: Tile) -> bool:
    """Every byte of ``t`` is a byte of ``outer``."""
    if t.space != outer.space or t.empty:
        return False
    if t[:3] == outer[:3] and t.stride == outer.stride and t.width <= outer.width:
        return True
    contiguous = outer.rows == 1 or outer.stride == outer.width
    return contiguous and outer.off <= t.off and t.end <= outer.end


def _merged(spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted disjoint [start, end) intervals covering ``spans``."""
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(x for x in spans if x[0] < x[1]):
        if ends and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def _hits(starts: list[int], ends: list[int], lo: int, hi: int) -> bool:
    """Whether [lo, hi) meets one of the merged intervals."""
    i = bisect.bisect_right(starts, lo) - 1
    if i >= 0 and ends[i] > lo:
        return True
    return i + 1 < len(starts) and starts[i + 1] < hi


def constant_operands(
    program: Program, steps: list[Step], order: list[int]
) -> dict[int, list[Tile]]:
    """MATMUL operand tiles (by position in ``order``) whose bytes are the same in every run:
    inside the destination of an earlier LOAD from DRAM bytes no input symbol covers and no
    STORE writes, with no write to them in between."""
    spans = [
        (s.addr, s.addr + s.nbytes) for s in program.symbols.values() if s.kind in HOST_WRITTEN
    ]
    written: list[list[Tile]] = []
    for st in steps:
        ops = st.ops
        if ops is None and st.error is None:  # data-dependent: every row it may touch
            try:
                ops = decode(st.ins, None, conservative=True)
            except SimError:  # raised again (identically) if it executes; writes nothing
                ops = None
        # a step with a static error never executes here (the timing pass would have raised)
        w = [t for t in ops.values() if t.write and not t.empty] if ops is not None else []
        written.append(w)
        spans += [(t.off, t.end) for t in w if t.space == DRAM]
    starts, ends = _merged(spans)
    held: list[Tile] = []  # SRAM tiles holding constant bytes now
    const: dict[int, list[Tile]] = {}
    for pos, idx in enumerate(order):
        st = steps[idx]
        if st.name == "MATMUL" and st.ops is not None and held:
            tiles = [st.ops[n] for n in ("a", "b") if n in st.ops]
            keep = [t for t in tiles if any(_within(t, h) for h in held)]
            if keep:
                const[pos] = keep
        for w in written[idx]:
            bw = _box(w)
            held = [h for h in held if not (_meets(_box(h), bw) and tiles_overlap(h, w))]
        if st.name == "LOAD" and st.ops is not None:
            src, dst = st.ops["src"], st.ops["dst"]
            if not dst.empty and not src.empty and not _hits(starts, ends, src.off, src.end):
                held.append(dst)
    return const


def eligible(steps: list[Step]) -> bool:
    """Whether the schedule of these steps is the same for every input (see the module doc)."""
    for s in steps:
        if s.name == "CMP" or (s.name == "MATMUL" and s.ins.args.get("mask")):
            return False
    return True


_enabled = [True]


class DataDependent(Exception):
    """A handler reported a data-dependent cost or wrote a predicate: the cached schedule does
    not apply to this program (raised by `execute`; the engine then uses the event loop)."""


def forget(program: Program, steps: list[Step]) -> None:
    """Mark ``program`` (with this plan) as not eligible for the fast path."""
    try:
        setattr(program, _CACHE_ATTR, (steps, None))
    except AttributeError:  # pragma: no cover - a slotted Program subclass
        pass


def enabled() -> bool:
    """Whether functional runs may use the fast path (not inside `disabled`)."""
    return _enabled[-1]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Functional runs inside use the event loop (for tests and benchmarks that compare)."""
    _enabled.append(False)
    try:
        yield
    finally:
        _enabled.pop()


def schedule(
    program: Program, steps: list[Step], table: CostTable, cfg: Config, m: Machine, limits: Limits
) -> Schedule | None:
    """The cached schedule of ``program`` for this plan (``steps``), computed by a timing-only
    pass of the event loop; None when the program is not `eligible` or that pass raises (the
    caller then runs the event loop, which reports the error). Both outcomes are cached."""
    from backend.interpreter.engine import event_loop

    if not _enabled[-1]:
        return None
    cached = getattr(program, _CACHE_ATTR, None)
    if cached is not None and cached[0] is steps:
        return cached[1]
    sched = None
    if eligible(steps):
        record: dict[int, Snapshot] = {}
        timing = Machine(cfg, m.sizes[-1], functional=False)
        try:
            rep, _, order = event_loop(
                program, steps, table, cfg, timing, True, False, limits, record
            )
            rep.timing_only = False
            sched = Schedule(order, rep, record, constant_operands(program, steps, order))
        except SimError:
            sched = None
    try:  # keyed on the plan object: the plan cache returns the same list while it is valid
        setattr(program, _CACHE_ATTR, (steps, sched))
    except AttributeError:  # pragma: no cover - a slotted Program subclass: no caching
        pass
    return sched


def execute(
    program: Program, steps: list[Step], sched: Schedule, m: Machine, limits: Limits
) -> Result:
    """Run the semantics of ``sched.order`` on ``m`` (loaded with data and inputs): by the
    closures prepared for ``m`` when it is the program's kept machine (`prepared`), else by
    calling the handlers down the order."""
    if sched.data is not program.data:
        sched.persist.clear()
        sched.persist_bytes = 0
        sched.prepared = None
        sched.data = program.data if type(program.data) is bytes else None
    if sched.data is not None and pooled(program, m):
        prep = sched.prepared
        if prep is None or prep.m is not m:
            prep = sched.prepared = _prepare(program, steps, sched, m, limits)
        return _run_prepared(program, prep, steps, sched, m)
    return _execute(program, steps, sched, m, limits)


def _run_prepared(
    program: Program, prep: Prepared, steps: list[Step], sched: Schedule, m: Machine
) -> Result:
    from backend.interpreter.engine import Result

    fcache = m.fcache
    inval = m.invalidate
    written = prep.written
    prep.dyn.clear()
    i = 0
    try:
        for i, fn in enumerate(prep.fns):
            fn()
            if fcache:
                for tile in written[i]:
                    inval(tile)
    except SimError as e:
        if e.index is None:
            idx = sched.order[prep.pos[i]]
            raise SimError(f"{steps[idx].ins.cls.mnemonic}: {e}", idx) from None
        raise
    finally:
        for j in prep.drop:  # conversions that are not kept across runs
            prep.slots[j] = None
    return Result(read_outputs(m, program), sched.report.copy(), [])


def _prepare(
    program: Program, steps: list[Step], sched: Schedule, m: Machine, limits: Limits
) -> Prepared:
    """Closures for the schedule on ``m`` (see `prepared`)."""
    record = sched.record
    dyn: dict[int, tuple[list[Tile], list[Box]]] = {}  # index → data-dependent tiles, boxes

    def generic(pos: int):
        stp = steps[sched.order[pos]]
        handler, ins, ops = stp.handler, stp.ins, stp.ops
        assert ops is not None  # data-dependent steps are `dynamic`

        def fn() -> None:
            if handler(m, ins, ops) or m.pending:
                raise DataDependent(ins.cls.mnemonic)

        return fn

    def dynamic(pos: int):
        idx = sched.order[pos]
        stp = steps[idx]
        ins = stp.ins

        def fn() -> None:
            ops, _tiles, noop = _checked(pos, idx, steps, m, limits, record, dyn)
            if noop or stp.name in _CONTROL:
                return
            if stp.handler(m, ins, ops) or m.pending:
                raise DataDependent(ins.cls.mnemonic)

        return fn

    prep = compile_schedule(sched, steps, m, dynamic, generic, PERSIST_LIMIT)
    prep.dyn = dyn
    return prep


def _execute(
    program: Program, steps: list[Step], sched: Schedule, m: Machine, limits: Limits
) -> Result:
    """Run the semantics of ``sched.order`` on ``m`` by calling the handlers in turn."""
    from backend.interpreter.engine import Result

    record = sched.record
    dyn: dict[int, tuple[list[Tile], list[Box]]] = {}  # index → data-dependent tiles, boxes
    fcache = m.fcache
    const = sched.const
    persist = sched.persist if sched.data is not None else {}
    for pos, idx in enumerate(sched.order):
        stp = steps[idx]
        ins = stp.ins
        try:
            ops = stp.ops
            if ops is None or pos in record:
                ops, tiles, noop = _checked(pos, idx, steps, m, limits, record, dyn)
                if noop or stp.name in _CONTROL:
                    continue
                written = [tile for tile in tiles if tile.write]
            else:
                if stp.noop or stp.name in _CONTROL:
                    continue
                written = stp.written
            if pos in const:
                kept = persist.get(pos)
                if kept is not None:
                    for k, entry in kept:
                        m.prime(k, entry)
                    masked = stp.handler(m, ins, ops)
                    m.trim()
                else:
                    masked = stp.handler(m, ins, ops)
                    _keep(sched, pos, const[pos], fcache)
            else:
                masked = stp.handler(m, ins, ops)
            if masked or m.pending:  # a cost or a predicate that depends on data after all
                raise DataDependent(ins.cls.mnemonic)
        except SimError as e:
            if e.index is None:
                raise SimError(f"{ins.cls.mnemonic}: {e}", idx) from None
            raise
        if fcache:
            for tile in written:
                m.invalidate(tile)
    return Result(read_outputs(m, program), sched.report.copy(), [])


def _checked(
    pos: int,
    idx: int,
    steps: list[Step],
    m: Machine,
    limits: Limits,
    record: dict,
    dyn: dict[int, tuple[list[Tile], list[Box]]],
) -> tuple[dict, list[Tile], bool]:
    """Step ``idx`` at issue position ``pos``: decoded now if its operands depend on data (its
    tiles and boxes then kept in ``dyn``), and checked against the instructions the timing run
    recorded as in flight with it. Returns (operands, tiles, no-op)."""
    stp = steps[idx]
    ops = stp.ops
    if ops is None:
        ops = decode(stp.ins, m, conservative=False)
        for tile in ops.values():
            m.check(tile)
        tiles = list(ops.values())
        check_tiles(tiles, limits)
        boxes = boxes_of(tiles)
        dyn[idx] = (tiles, boxes)
        noop = is_noop(ops)
    else:
        tiles, boxes, noop = stp.tiles, stp.boxes, stp.noop
    t, entries = record.get(pos, (0, []))
    live = []
    for s0, e0, q0, i0 in entries:
        tl, bx = dyn.get(i0) or (steps[i0].tiles, steps[i0].boxes)
        live.append((s0, e0, q0, i0, steps[i0].ins, tl, bx))
    if live and may_race(stp.q, boxes, live):
        check_race(idx, stp.ins, stp.q, t, tiles, live)
    return ops, tiles, noop


def _keep(sched: Schedule, pos: int, tiles: list[Tile], fcache: dict[tuple, FEntry]) -> None:
    """Keep the conversions of ``tiles`` the handler left in the cache (within the limit)."""
    if sched.data is None:
        return
    kept = [(k, e) for k, e in fcache.items() if e[0] in tiles]
    size = sum(e[1].nbytes for _, e in kept if e[1].flags.writeable)  # not kept before
    if sched.persist_bytes + size > PERSIST_LIMIT:
        return
    for _, e in kept:
        e[1].flags.writeable = False
    sched.persist[pos] = kept
    sched.persist_bytes += size
