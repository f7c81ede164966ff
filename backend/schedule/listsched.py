"""List scheduling over the queues with the shared cost model.

Each step picks, over all queues, the ready instruction that can start earliest (ties: program
order); an instruction is ready when every dependency has been scheduled. DMAs share the DRAM
channel as in the interpreter. The result is a global order consistent with every dependency
(each queue's order is its restriction) and an estimate of every start and finish time.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from backend.config import Config
from backend.cost import cost
from backend.isa import Instr, Queue

NQ = len(Queue)


@dataclass
class Estimate:
    """The scheduler's static estimate (cycles and totals from `backend.cost`)."""

    cycles: int = 0
    busy: list[int] = field(default_factory=lambda: [0] * NQ)
    dram_read: int = 0
    dram_write: int = 0
    macs: dict[str, int] = field(default_factory=dict)
    vector_ops: int = 0

    def to_dict(self, config: Config) -> dict[str, object]:
        mx = config.matrix
        rates = {
            "int4": mx.int4_rate,
            "int8": mx.int8_rate,
            "fp16": mx.fp16_rate,
            "fp32": mx.fp16_rate,
        }
        matrix = sum(v / (mx.macs_per_cycle * rates[p]) for p, v in self.macs.items())
        dram = (self.dram_read + self.dram_write) / config.dram.bytes_per_cycle
        vector = self.vector_ops / config.vector_lanes
        lb = max(matrix, dram, vector)
        names = [q.name.lower() for q in Queue]
        return {
            "cycles": self.cycles,
            "busy": dict(zip(names, self.busy, strict=True)),
            "dram_read": self.dram_read,
            "dram_write": self.dram_write,
            "macs": dict(self.macs),
            "bound": {"matrix": matrix, "dram": dram, "vector": vector, "lower_bound": lb},
            "bound_by": max(
                ("matrix", matrix), ("dram", dram), ("vector", vector), key=lambda x: x[1]
            )[0],
            "efficiency": lb / max(self.cycles, 1),
        }


def list_schedule(
    instrs: list[Instr], preds: list[list[int]], config: Config, priority: str = "program"
) -> tuple[list[int], Estimate]:
    """(global order as instruction indices, estimate). Among instructions of a queue that can
    start at the same time, ``priority`` picks: "program" order or the longest remaining
    "path" (critical path, cycles to the end through dependencies)."""
    n = len(instrs)
    succs: list[list[int]] = [[] for _ in range(n)]
    npred = [0] * n
    for v, ps in enumerate(preds):
        npred[v] = len(ps)
        for u in ps:
            succs[u].append(v)
    queue = [int(i.cls.queue) for i in instrs]
    costs = [cost(i, config) for i in instrs]
    ready = [0] * n
    prio: list[int] = list(range(n))
    if priority == "path":
        level = [0] * n
        for v in range(n - 1, -1, -1):
            level[v] = costs[v].cycles + max((level[s] for s in succs[v]), default=0)
        prio = [-x for x in level]
    pending: list[list[tuple[int, int]]] = [[] for _ in range(NQ)]
    avail: list[list[tuple[int, int]]] = [[] for _ in range(NQ)]
    for v in range(n):
        if npred[v] == 0:
            heapq.heappush(pending[queue[v]], (0, v))
    qfree = [0] * NQ
    dram_free = 0
    order: list[int] = []
    est = Estimate()
    while len(order) < n:
        best: tuple[int, int, int] | None = None
        for q in range(NQ):
            pq, aq = pending[q], avail[q]
            while pq and pq[0][0] <= qfree[q]:
                w = heapq.heappop(pq)[1]
                heapq.heappush(aq, (prio[w], w))
            if aq:
                cand = (qfree[q], aq[0][1], q)
            elif pq:
                cand = (pq[0][0], pq[0][1], q)
            else:
                continue
            if q <= 1 and cand[0] < dram_free:
                cand = (dram_free, cand[1], q)
            if best is None or cand[:2] < best[:2]:
                best = cand
        assert best is not None, "dependency cycle"
        t, v, q = best
        if avail[q] and avail[q][0][1] == v:
            heapq.heappop(avail[q])
        else:
            heapq.heappop(pending[q])
        c = costs[v]
        end = t + c.cycles
        qfree[q] = end
        if q <= 1:
            dram_free = t + c.dram_transfer
        order.append(v)
        est.busy[q] += c.cycles
        est.cycles = max(est.cycles, end)
        est.dram_read += c.dram_read
        est.dram_write += c.dram_write
        est.vector_ops += c.vector_ops
        for p, m in c.macs_useful.items():
            est.macs[p] = est.macs.get(p, 0) + m
        for s in succs[v]:
            if end > ready[s]:
                ready[s] = end
            npred[s] -= 1
            if npred[s] == 0:
                heapq.heappush(pending[queue[s]], (ready[s], s))
    return order, est
