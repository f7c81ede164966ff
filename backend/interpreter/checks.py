"""Error reports of the run-time checks: races between queues and deadlock."""

from __future__ import annotations

from collections import deque

from backend.errors import SimError
from backend.interpreter.operands import Tile, tiles_overlap
from backend.interpreter.report import QUEUE_NAMES
from backend.isa import Instr, Queue

NQ = len(Queue)
BITS = [tuple(q for q in range(NQ) if mask >> q & 1) for mask in range(1 << NQ)]
Live = tuple[int, int, int, int, Instr, list[Tile]]  # start, end, queue, index, instr, tiles
# Live plus the tiles' byte boxes (space, lo, hi, write)
Live2 = tuple[int, int, int, int, Instr, list[Tile], list[tuple[int, int, int, bool]]]


def may_race(q: int, boxes: list[tuple[int, int, int, bool]], live: list[Live2]) -> bool:
    """Whether some box meets a box of another queue's live entry that it could race with: a
    necessary condition for `check_race` to raise (which then decides exactly)."""
    for e in live:
        if e[2] == q:
            continue
        for sa, la, ha, wa in boxes:
            for sb, lb, hb, wb in e[6]:
                if sa == sb and la < hb and lb < ha and (wa or wb):
                    return True
    return False


def check_race(
    idx: int, ins: Instr, q: int, t: int, tiles: list[Tile], live: list[Live] | list[Live2]
) -> None:
    """Raise if ``tiles`` (instruction ``idx`` starting at t) conflict with one in flight elsewhere."""
    for start_o, end_o, q_o, idx_o, ins_o, tiles_o, *_ in live:
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


def deadlock(
    instrs: list[Instr],
    queues: list[list[int]],
    pos: list[int],
    qlen: list[int],
    chan: list[list[deque[int]]],
) -> None:
    """Raise the deadlock error naming each blocked queue head and what it waits for."""
    heads = []
    first = None
    for q in range(NQ):
        if pos[q] >= qlen[q]:
            continue
        idx = queues[q][pos[q]]
        ins = instrs[idx]
        first = idx if first is None else min(first, idx)
        missing = [QUEUE_NAMES[s] for s in BITS[ins.wait] if not chan[s][q]]
        why = (
            f"waits for a token from {', '.join(missing)}"
            if missing
            else "waits for the other queues to drain"
        )
        heads.append(f"{QUEUE_NAMES[q]} queue head: instruction {idx} ({ins.cls.mnemonic}) {why}")
    raise SimError("deadlock: every non-empty queue is blocked; " + "; ".join(heads), first)
