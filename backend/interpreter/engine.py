"""Event-driven execution of a program over the five in-order queues.

Each step issues, among the queue heads whose wait tokens are available, the one that can start
earliest (ties: the lower instruction index, which in a scheduled program is the scheduler's own
pick order, so the static estimate and the run agree cycle for cycle). Start times are therefore
non-decreasing, so executing each instruction's semantics at its start time respects every token
ordering. An instruction's duration comes from the cost model; the load and store queues share
one DRAM channel, busy for the transfer part of each DMA. Predicate writes become visible when
their writer completes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Config, bundled_config, load_config
from backend.cost import InstrCost, cost, skipped_cost
from backend.errors import SimError
from backend.interpreter import fast, prepared
from backend.interpreter.checks import Live2, check_race, deadlock, may_race
from backend.interpreter.io import read_outputs, write_inputs
from backend.interpreter.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_machine,
    check_symbols,
    check_tiles,
    check_work,
)
from backend.interpreter.operands import decode
from backend.interpreter.plan import Step, boxes_of, is_noop, plan_with_costs
from backend.interpreter.report import QUEUE_NAMES, CostTable, Report
from backend.interpreter.resident import ResidentDram
from backend.interpreter.state import Machine
from backend.interpreter.trace import event, metadata
from backend.isa import Queue
from backend.program import Program

NQ = len(Queue)
_DATA_FREE = frozenset({"SETP", "NOP", "FINISH"})  # semantics that need no memory
_SKIP_CYCLES = skipped_cost().cycles
_CHECKED_ATTR = "_wisp_interp_checked"


@dataclass
class Result:
    """Outputs (by output symbol name), the report, and Chrome trace events (if asked)."""

    outputs: dict[str, np.ndarray]
    report: Report
    trace_events: list[dict[str, Any]] = field(default_factory=list)


def _pred_at(m: Machine, reg: int, t: int) -> bool | None:
    """Predicate value as seen at time t (pending writes completed by t included)."""
    best: tuple[int, int] | None = None
    value = m.preds[reg]
    for tm, seq, r, v in m.pending:
        if r == reg and tm <= t and (best is None or (tm, seq) > best):
            best, value = (tm, seq), v
    return value


def _taken(value: bool | None, pneg: bool) -> bool:
    return True if value is None else value != pneg


def run(
    program: Program,
    inputs: dict[str, np.ndarray] | None = None,
    config: Config | str | Path | None = None,
    *,
    timing_only: bool = False,
    trace: bool = False,
    limits: Limits | None = None,
    resident: ResidentDram | None = None,
) -> Result:
    """Execute ``program`` on ``config`` (default: the program's own config, else spatten),
    within ``limits`` (default `DEFAULT_LIMITS`, checked before anything runs). ``resident``
    holds the program's resident regions across runs (a session's KV cache; without it they
    start as zeros)."""
    with np.errstate(all="ignore"):  # IEEE results (inf, nan) are the machine's semantics
        return _run(program, inputs, config, timing_only, trace, limits or DEFAULT_LIMITS, resident)


def _run(
    program: Program,
    inputs: dict[str, np.ndarray] | None,
    config: Config | str | Path | None,
    timing_only: bool,
    trace: bool,
    limits: Limits,
    resident: ResidentDram | None = None,
) -> Result:
    # a config named by the program is untrusted: bundled names only, never a path
    cfg = (
        load_config(config)
        if config is not None
        else bundled_config(program.config_name or "spatten")
    )
    functional = not timing_only
    dram_size = max(program.dram_size, len(program.data))
    check_symbols(program, dram_size)
    if functional:
        check_machine(cfg.sram, dram_size, limits)
    fast_ok = functional and not trace and fast.enabled()
    m = prepared.take(program, cfg.canonical, (*cfg.sram, dram_size)) if fast_ok else None
    if m is None:
        m = Machine(cfg, dram_size, functional)
        if functional:
            m.load_bytes(0, program.data)
    try:
        return _run_on(m, program, inputs, config, cfg, timing_only, trace, limits, resident)
    finally:
        if prepared.pooled(program, m):
            prepared.release(program, m, None, cfg.canonical)


def _run_on(
    m: Machine,
    program: Program,
    inputs: dict[str, np.ndarray] | None,
    config: Config | str | Path | None,
    cfg: Config,
    timing_only: bool,
    trace: bool,
    limits: Limits,
    resident: ResidentDram | None,
) -> Result:
    functional = not timing_only
    if functional:
        write_inputs(m, program, inputs)
        if resident is not None:
            resident.restore(m, program)
    steps, table = plan_with_costs(program, m, cfg)
    if getattr(program, _CHECKED_ATTR, None) != (id(steps), limits):
        check_plan(steps, limits)
        try:  # static checks passed for this (cached) plan and these limits
            setattr(program, _CHECKED_ATTR, (id(steps), limits))
        except AttributeError:  # pragma: no cover - a slotted Program subclass
            pass
    if functional and not trace:
        sched = fast.schedule(program, steps, table, cfg, m, limits)
        if sched is not None:
            try:
                res = fast.execute(program, steps, sched, m, limits)
            except fast.DataDependent:  # e.g. an instruction class added after `eligible`
                fast.forget(program, steps)
                prepared.forget(program)
                return _run(program, inputs, config, timing_only, trace, limits, resident)
            if resident is not None:
                resident.keep(m, program)
            if not prepared.pooled(program, m):  # keep this machine for the next run
                prepared.release(program, m, steps, cfg.canonical)
            return res
    rep, events, _ = event_loop(program, steps, table, cfg, m, timing_only, trace, limits)
    if functional and resident is not None:
        resident.keep(m, program)
    outputs = read_outputs(m, program) if functional else {}
    return Result(outputs, rep, events)


def check_plan(steps: list[Step], limits: Limits) -> None:
    """Static tiles within the tile limit, modeled work within the work limits."""
    for idx, stp in enumerate(steps):
        if stp.tiles:
            try:
                check_tiles(stp.tiles, limits)
            except SimError as e:
                raise SimError(f"{stp.ins.cls.mnemonic}: {e}", idx) from None
    check_work([stp.cost for stp in steps], limits)


def event_loop(
    program: Program,
    steps: list[Step],
    table: CostTable,
    cfg: Config,
    m: Machine,
    timing_only: bool,
    trace: bool,
    limits: Limits,
    record: dict[int, tuple[int, list[tuple[int, int, int, int]]]] | None = None,
) -> tuple[Report, list[dict[str, Any]], list[int]]:
    """Issue every instruction in time order, executing its semantics unless ``timing_only``.

    Returns the report, the trace events (if ``trace``) and the executed instructions' indices
    in issue order. ``record`` (timing runs for `fast.schedule`) receives, for each executed
    position whose own operands or an in-flight instruction's operands depend on data (GATHER,
    VGATHER), its start time and the in-flight entries (start, end, queue, index) then.
    """
    functional = not timing_only

    queues: list[list[int]] = [[] for _ in range(NQ)]
    finished = False
    for idx, stp in enumerate(steps):
        if finished and stp.q == Queue.SELECT:
            raise SimError("select-queue instruction after FINISH", idx)
        finished = finished or stp.name == "FINISH"
        queues[stp.q].append(idx)

    rep = Report(cfg.name, cfg.clock_mhz, timing_only=timing_only)
    qstats = [rep.queues[n] for n in QUEUE_NAMES]
    events: list[dict[str, Any]] = []
    pos = [0] * NQ
    qlen = [len(x) for x in queues]
    qsteps = [[steps[i] for i in x] for x in queues]
    heads: list[Step | None] = [x[0] if x else None for x in qsteps]
    qfree = [0] * NQ
    chan = [[deque[int]() for _ in range(NQ)] for _ in range(NQ)]  # chan[src][dst]
    inbox = [[chan[src][dst] for src in range(NQ)] for dst in range(NQ)]  # inbox[dst][src]
    dram_free = 0
    live: list[Live2] = []
    executed: list[int] = []  # indices of the executed (not skipped) instructions, in order
    override: dict[int, InstrCost] = {}  # position in executed → cost replacing the static one
    end_all = 0
    preds = m.preds
    n_stall, n_instrs, n_skipped, n_busy = [0] * NQ, [0] * NQ, [0] * NQ, [0] * NQ
    n_left = len(steps)
    qrange = range(NQ)

    while True:
        best_q, best_t, best_i = -1, 0, 0
        best: Step | None = None
        for q in qrange:
            stp = heads[q]
            if stp is None:
                continue
            t = qfree[q]
            if stp.waits:
                box = inbox[q]
                ok = True
                for src in stp.waits:
                    ch = box[src]
                    if not ch:
                        ok = False
                        break
                    if ch[0] > t:
                        t = ch[0]
                if not ok:
                    continue
            if stp.fin:
                if n_left > qlen[q] - pos[q]:  # another queue still has instructions
                    continue
                t = max(t, *qfree)
            elif q <= 1 and t < dram_free:
                ins = stp.ins
                if _taken(_pred_at(m, ins.pred, t) if ins.pred else True, ins.pneg):
                    t = dram_free
            if best_q < 0 or t < best_t or (t == best_t and queues[q][pos[q]] < best_i):
                best_q, best_t, best = q, t, stp
                best_i = queues[q][pos[q]]
        if best is None:
            if n_left:
                deadlock(program.instrs, queues, pos, qlen, chan)
            break

        q, t, stp = best_q, best_t, best
        p = pos[q]
        idx = queues[q][p]
        p += 1
        pos[q] = p
        heads[q] = qsteps[q][p] if p < qlen[q] else None
        n_left -= 1
        ins = stp.ins
        if stp.waits:
            box = inbox[q]
            for src in stp.waits:
                box[src].popleft()
        if m.pending:
            m.settle_preds(t)
        if not stp.fin:  # waiting for the drain is not a stall of the select queue
            n_stall[q] += t - qfree[q]
        n_instrs[q] += 1
        pv = preds[ins.pred]
        skipped = pv is not None and pv == ins.pneg
        masked = 0
        if skipped:
            dur = _SKIP_CYCLES
            n_skipped[q] += 1
        else:
            try:
                if stp.error is not None:
                    raise stp.error
                ops = stp.ops
                if ops is None:
                    ops = decode(ins, m if functional else None, conservative=False)
                    for tile in ops.values():
                        m.check(tile)
                    tiles = list(ops.values())
                    check_tiles(tiles, limits)
                    written = [tile for tile in tiles if tile.write]
                    boxes = boxes_of(tiles)
                    noop = is_noop(ops)
                else:
                    tiles, written, boxes, noop = stp.tiles, stp.written, stp.boxes, stp.noop
                if live:
                    live = [e for e in live if e[1] > t]
                    if live and may_race(q, boxes, live):
                        check_race(idx, ins, q, t, tiles, live)
                if record is not None and (
                    stp.ops is None or any(steps[e[3]].ops is None for e in live)
                ):
                    record[len(executed)] = (t, [(e[0], e[1], e[2], e[3]) for e in live])
                c = stp.cost
                assert c is not None
                m.end_time = t + c.cycles
                if noop:
                    pass
                elif functional or stp.name in _DATA_FREE:
                    masked = stp.handler(m, ins, ops)
                    if masked:
                        c = override[len(executed)] = cost(ins, cfg, masked)
                elif stp.name == "CMP":
                    m.set_pred(int(ins.args["pdst"]), None)
            except SimError as e:
                if e.index is None:
                    raise SimError(f"{ins.cls.mnemonic}: {e}", idx) from None
                raise
            if m.fcache:
                for tile in written:
                    m.invalidate(tile)
            dur = c.cycles
            if q <= 1:
                dram_free = t + c.dram_transfer
            if tiles:
                live.append((t, t + dur, q, idx, ins, tiles, boxes))
            executed.append(idx)
        n_busy[q] += dur
        end = t + dur
        qfree[q] = end
        if end > end_all:
            end_all = end
        for dst in stp.signals:
            chan[q][dst].append(end)
        if trace:
            events.append(event(ins, idx, q, t, dur, cfg.clock_mhz, skipped, masked))

    for q, st in enumerate(qstats):
        st.stall += n_stall[q]
        st.instrs += n_instrs[q]
        st.skipped += n_skipped[q]
        st.busy += n_busy[q]
    rep.add_executed(table, executed, override)
    rep.instructions = len(steps)
    rep.skipped = sum(s.skipped for s in qstats)
    rep.cycles = end_all
    for s in range(NQ):
        for d in range(NQ):
            if chan[s][d]:
                rep.unconsumed_tokens[f"{QUEUE_NAMES[s]}->{QUEUE_NAMES[d]}"] = len(chan[s][d])
    rep.finish(cfg)
    if trace:
        events = metadata(cfg) + events
    return rep, events, executed
