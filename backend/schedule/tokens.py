"""Dependency tokens: the minimal wait/signal masks that enforce every cross-queue dependency.

Walking the global order, every instruction carries a vector clock: for each queue, the last
position known to have completed before it starts (through its own queue's order and the tokens
it and its predecessors waited for). A dependency on queue ``a`` position ``p`` needs a token only
if the clock does not already cover it; the token comes from the latest needed instruction in
``a``, and the clock absorbs that instruction's clock. Tokens of one channel are therefore pushed
and popped in the same order (each wait pairs with exactly one signal), every token is consumed,
and since every wait names an earlier instruction of the global order, no cycle can deadlock.
"""

from __future__ import annotations

from dataclasses import replace

from backend.isa import Instr, Queue

NQ = len(Queue)


def insert_tokens(instrs: list[Instr], order: list[int], preds: list[list[int]]) -> list[Instr]:
    """The instructions in ``order`` with wait/signal masks set."""
    queue = [int(i.cls.queue) for i in instrs]
    pos = [0] * len(instrs)
    count = [0] * NQ
    for v in order:
        pos[v] = count[queue[v]]
        count[queue[v]] += 1
    at: list[dict[int, int]] = [{} for _ in range(NQ)]  # queue → position → instruction
    rank = [0] * len(instrs)
    for r, v in enumerate(order):
        at[queue[v]][pos[v]] = v
        rank[v] = r
    clock: list[tuple[int, ...] | None] = [None] * len(instrs)
    cur: list[tuple[int, ...]] = [(-1,) * NQ for _ in range(NQ)]
    wait = [0] * len(instrs)
    signal = [0] * len(instrs)
    for v in order:
        b = queue[v]
        vc = list(cur[b])
        need: dict[int, int] = {}
        for u in preds[v]:
            a = queue[u]
            if a != b and pos[u] > need.get(a, -1):
                need[a] = pos[u]
        # latest-scheduled producers first: their clocks most often cover the others
        for a in sorted(need, key=lambda a: -rank[at[a][need[a]]]):
            if need[a] <= vc[a]:
                continue
            u = at[a][need[a]]
            signal[u] |= 1 << b
            wait[v] |= 1 << a
            cu = clock[u]
            assert cu is not None
            vc = [max(x, y) for x, y in zip(vc, cu, strict=True)]
        vc[b] = pos[v]
        clock[v] = cur[b] = tuple(vc)
    return [replace(instrs[v], wait=wait[v], signal=signal[v]) for v in order]
