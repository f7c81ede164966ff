"""Event-driven execution of a program over the five in-order queues.

Each step issues, among the queue heads whose wait tokens are available, the one that can start
earliest (ties: lower queue id). Start times are therefore non-decreasing, so executing each
instruction's semantics at its start time respects every token ordering. An instruction's
duration comes from the cost model; the load and store queues share one DRAM channel, busy for
the transfer part of each DMA. Predicate writes become visible when their writer completes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Config, load_config
from backend.cost import cost
from backend.errors import SimError
from backend.interpreter.numerics import pack_int4, unpack_int4
from backend.interpreter.operands import Tile, decode, tiles_overlap
from backend.interpreter.plan import is_noop, plan
from backend.interpreter.report import QUEUE_NAMES, Report, tag_of
from backend.interpreter.state import NP_DTYPES, Machine
from backend.isa import DType, Instr, Queue
from backend.program import Program, Symbol

NQ = len(Queue)
DMA_QUEUES = (Queue.LOAD, Queue.STORE)
_BITS = [tuple(q for q in range(NQ) if mask >> q & 1) for mask in range(1 << NQ)]
_DATA_FREE = frozenset({"SETP", "NOP", "FINISH"})  # semantics that need no memory


@dataclass
class Result:
    """Outputs (by output symbol name), the report, and Chrome trace events (if asked)."""

    outputs: dict[str, np.ndarray]
    report: Report
    trace_events: list[dict[str, Any]] = field(default_factory=list)


def _symbol_array(m: Machine, s: Symbol) -> np.ndarray:
    count = int(np.prod(s.shape)) if s.shape else 1
    raw = m.dram[s.addr : s.addr + s.nbytes]
    if s.dtype is DType.INT4:
        flat = unpack_int4(raw.reshape(1, -1))[0, :count]
    else:
        flat = raw.view(NP_DTYPES[s.dtype])
    return flat.reshape(s.shape).copy()


def _write_input(m: Machine, s: Symbol, x: Any) -> None:
    arr = np.asarray(x)
    if tuple(arr.shape) != tuple(s.shape):
        raise SimError(f"input '{s.name}': shape {arr.shape} != declared {tuple(s.shape)}")
    if s.dtype is DType.INT4:
        v = arr.astype(np.int64).reshape(1, -1)
        if v.size and (v.min() < -8 or v.max() > 7):
            raise SimError(f"input '{s.name}': int4 values must lie in [-8, 7]")
        if v.shape[1] % 2:
            v = np.concatenate([v, np.zeros((1, 1), np.int64)], axis=1)
        data = pack_int4(v).reshape(-1)
    else:
        data = np.ascontiguousarray(arr.astype(NP_DTYPES[s.dtype])).view(np.uint8).reshape(-1)
    if s.addr + data.size > m.sizes[5]:
        raise SimError(f"input '{s.name}' at {s.addr} exceeds DRAM size {m.sizes[5]}")
    m.dram[s.addr : s.addr + data.size] = data


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


def _race(idx: int, ins: Instr, q: int, t: int, tiles: list[Tile], live: list) -> None:
    for start_o, end_o, q_o, idx_o, ins_o, tiles_o in live:
        if q_o == q:
            continue
        for ta in tiles:
            for tb in tiles_o:
                if (ta.write or tb.write) and tiles_overlap(ta, tb):
                    raise SimError(
                        f"race: {ins.cls.mnemonic} ({QUEUE_NAMES[q]} queue, starts at cycle {t}) "
                        f"{'writes' if ta.write else 'reads'} {ta.describe()} while instruction "
                        f"{idx_o} {ins_o.cls.mnemonic} ({QUEUE_NAMES[q_o]} queue, cycles "
                        f"{start_o}-{end_o}) {'writes' if tb.write else 'reads'} "
                        f"{tb.describe()}; no token orders them",
                        idx,
                    )


def run(
    program: Program,
    inputs: dict[str, np.ndarray] | None = None,
    config: Config | str | Path | None = None,
    *,
    timing_only: bool = False,
    trace: bool = False,
) -> Result:
    """Execute ``program`` on ``config`` (default: the program's own config, else spatten)."""
    with np.errstate(all="ignore"):  # IEEE results (inf, nan) are the machine's semantics
        return _run(program, inputs, config, timing_only, trace)


def _run(
    program: Program,
    inputs: dict[str, np.ndarray] | None,
    config: Config | str | Path | None,
    timing_only: bool,
    trace: bool,
) -> Result:
    cfg = load_config(config if config is not None else (program.config_name or "spatten"))
    functional = not timing_only
    dram_size = max(program.dram_size, len(program.data))
    m = Machine(cfg, dram_size, functional)
    if functional:
        m.load_bytes(0, program.data)
        ins_syms = {s.name: s for s in program.symbols.values() if s.kind == "input"}
        if inputs:
            unknown = set(inputs) - set(ins_syms)
            if unknown:
                raise SimError(f"unknown input(s) {sorted(unknown)} (inputs: {sorted(ins_syms)})")
            missing = set(ins_syms) - set(inputs)
            if missing:
                raise SimError(f"missing input(s) {sorted(missing)}")
            for name, x in inputs.items():
                _write_input(m, ins_syms[name], x)

    steps = plan(program, m, cfg)
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
    qfree = [0] * NQ
    chan = [[deque[int]() for _ in range(NQ)] for _ in range(NQ)]  # chan[src][dst]
    dram_free = 0
    live: list[tuple[int, int, int, int, Instr, list[Tile]]] = []
    end_all = 0
    preds = m.preds

    while True:
        best_q, best_t = -1, 0
        for q in range(NQ):
            p = pos[q]
            if p >= qlen[q]:
                continue
            stp = steps[queues[q][p]]
            t = qfree[q]
            ok = True
            for src in stp.waits:
                ch = chan[src][q]
                if not ch:
                    ok = False
                    break
                if ch[0] > t:
                    t = ch[0]
            if not ok:
                continue
            if stp.name == "FINISH":
                if any(pos[o] < qlen[o] for o in range(NQ) if o != q):
                    continue
                t = max(t, *qfree)
            elif q <= 1 and t < dram_free:
                ins = stp.ins
                if _taken(_pred_at(m, ins.pred, t) if ins.pred else True, ins.pneg):
                    t = dram_free
            if best_q < 0 or t < best_t:
                best_q, best_t = q, t
        if best_q < 0:
            if any(pos[q] < qlen[q] for q in range(NQ)):
                _deadlock(program.instrs, queues, pos, qlen, chan)
            break

        q, t = best_q, best_t
        idx = queues[q][pos[q]]
        pos[q] += 1
        stp = steps[idx]
        ins = stp.ins
        for src in stp.waits:
            chan[src][q].popleft()
        if m.pending:
            m.settle_preds(t)
        st = qstats[q]
        st.stall += t - qfree[q]
        st.instrs += 1
        pv = preds[ins.pred]
        skipped = pv is not None and pv == ins.pneg
        if skipped:
            dur = 1
            st.skipped += 1
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
                if live:
                    live = [e for e in live if e[1] > t]
                    if live:
                        _race(idx, ins, q, t, tiles, live)
                c = stp.cost
                assert c is not None
                m.end_time = t + c.cycles
                if stp.noop or (stp.ops is None and is_noop(ops)):
                    pass
                elif functional or stp.name in _DATA_FREE:
                    masked = stp.handler(m, ins, ops)
                    if masked:
                        c = cost(ins, cfg, masked)
                elif stp.name == "CMP":
                    m.set_pred(int(ins.args["pdst"]), None)
            except SimError as e:
                if e.index is None:
                    raise SimError(f"{ins.cls.mnemonic}: {e}", idx) from None
                raise
            if m.fcache:
                for tile in tiles:
                    if tile.write:
                        m.invalidate(tile)
            dur = c.cycles
            if q <= 1:
                dram_free = t + c.dram_transfer
            if tiles:
                live.append((t, t + dur, q, idx, ins, tiles))
            rep.add(q, c, stp.tag)
        st.busy += dur
        end = t + dur
        qfree[q] = end
        if end > end_all:
            end_all = end
        for dst in stp.signals:
            chan[q][dst].append(end)
        if trace:
            events.append(_event(ins, idx, q, t, dur, cfg.clock_mhz, skipped))

    rep.instructions = len(steps)
    rep.skipped = sum(s.skipped for s in qstats)
    rep.cycles = end_all
    for s in range(NQ):
        for d in range(NQ):
            if chan[s][d]:
                rep.unconsumed_tokens[f"{QUEUE_NAMES[s]}->{QUEUE_NAMES[d]}"] = len(chan[s][d])
    rep.finish(cfg)
    outputs: dict[str, np.ndarray] = {}
    if functional:
        for s in program.symbols.values():
            if s.kind == "output":
                outputs[s.name] = _symbol_array(m, s)
    if trace:
        events = _metadata(cfg) + events
    return Result(outputs, rep, events)


def _deadlock(instrs: list[Instr], queues: list[list[int]], pos, qlen, chan) -> None:
    heads = []
    first = None
    for q in range(NQ):
        if pos[q] >= qlen[q]:
            continue
        idx = queues[q][pos[q]]
        ins = instrs[idx]
        first = idx if first is None else min(first, idx)
        missing = [QUEUE_NAMES[s] for s in _BITS[ins.wait] if not chan[s][q]]
        why = (
            f"waits for a token from {', '.join(missing)}"
            if missing
            else "waits for the other queues to drain"
        )
        heads.append(f"{QUEUE_NAMES[q]} queue head: instruction {idx} ({ins.cls.mnemonic}) {why}")
    raise SimError("deadlock: every non-empty queue is blocked; " + "; ".join(heads), first)


def _event(ins: Instr, idx: int, q: int, t: int, dur: int, mhz: float, skipped: bool) -> dict:
    return {
        "name": ins.cls.mnemonic,
        "cat": tag_of(ins.comment) or QUEUE_NAMES[q],
        "ph": "X",
        "ts": t / mhz,
        "dur": dur / mhz,
        "pid": 1,
        "tid": q,
        "args": {
            "index": idx,
            "comment": ins.comment,
            "cycle": t,
            "cycles": dur,
            "skipped": skipped,
        },
    }


def _metadata(cfg: Config) -> list[dict[str, Any]]:
    ev: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": f"npu ({cfg.name})"}}
    ]
    for q, name in enumerate(QUEUE_NAMES):
        ev.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": q, "args": {"name": name}})
        ev.append(
            {"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": q, "args": {"sort_index": q}}
        )
    return ev
