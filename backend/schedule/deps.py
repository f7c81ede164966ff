"""Dependencies between instructions from the memory ranges they read and write.

Operand geometry comes from `backend.interpreter.operands.decode` (the same description the
interpreter's bounds and race checks use), taken as each tile's bounding byte range. Per memory
space an interval map records, for every byte range, its last writer and its latest reader per
queue: a read depends on the last writer (RAW), a write on the last writer (WAW) and on the
readers since (WAR). Keeping one reader per queue is enough: a later reader in the same in-order
queue finishes after the earlier ones. DRAM below ``readonly_end`` (the data section) is never
written, so it is not tracked. Predicate registers are tracked the same way: a predicated
instruction reads its register, CMP and SETP write theirs.
"""

from __future__ import annotations

from bisect import bisect_right

from backend.interpreter.operands import DRAM, decode
from backend.isa import Instr


class _Space:
    """Interval map: sorted segment starts → (last writer, readers since)."""

    def __init__(self) -> None:
        self.starts: list[int] = [0]
        self.writer: list[int] = [-1]
        self.readers: list[list[int]] = [[]]

    def _split(self, x: int) -> int:
        """Index of the segment starting at x (created by splitting if needed)."""
        i = bisect_right(self.starts, x) - 1
        if self.starts[i] == x:
            return i
        self.starts.insert(i + 1, x)
        self.writer.insert(i + 1, self.writer[i])
        self.readers.insert(i + 1, list(self.readers[i]))
        return i + 1

    def access(self, lo: int, hi: int, write: bool, me: int, deps: set[int]) -> None:
        i = self._split(lo)
        j = self._split(hi)
        for s in range(i, j):
            w = self.writer[s]
            if w >= 0:
                deps.add(w)
            if write:
                deps.update(self.readers[s])
        if write:
            del self.starts[i + 1 : j]
            del self.writer[i + 1 : j]
            del self.readers[i + 1 : j]
            self.writer[i] = me
            self.readers[i] = []
        else:
            for s in range(i, j):
                self.readers[s].append(me)


PRED_SPACE = -1  # predicate registers p1..p15 as one byte each of a pseudo memory space


def _predicates(ins: Instr, n: int, spaces: dict[int, _Space], deps: set[int]) -> None:
    """A predicated instruction reads its predicate; CMP and SETP write theirs."""
    sp = spaces.get(PRED_SPACE)
    if sp is None:
        sp = spaces[PRED_SPACE] = _Space()
    if ins.pred:
        sp.access(ins.pred, ins.pred + 1, False, n, deps)
    if ins.cls.name in ("CMP", "SETP"):
        p = int(ins.args["pdst"])
        sp.access(p, p + 1, True, n, deps)


def dependencies(instrs: list[Instr], readonly_end: int = 0) -> list[list[int]]:
    """For each instruction, the earlier instructions it must wait for (sorted)."""
    spaces: dict[int, _Space] = {}
    out: list[list[int]] = []
    for n, ins in enumerate(instrs):
        deps: set[int] = set()
        tiles = sorted(decode(ins, None).values(), key=lambda t: t.write)  # reads first
        for t in tiles:
            if t.empty:
                continue
            lo, hi = t.off, t.end
            if t.space == DRAM:
                if t.write and lo < readonly_end:
                    raise ValueError(f"instruction {n} writes the read-only data section")
                if hi <= readonly_end:
                    continue
            sp = spaces.get(t.space)
            if sp is None:
                sp = spaces[t.space] = _Space()
            sp.access(lo, hi, t.write, n, deps)
        _predicates(ins, n, spaces, deps)
        deps.discard(n)
        out.append(sorted(deps))
    return out
