"""DRAM kept across the runs of a session's programs: a generation's KV cache, resident on the NPU.

A program's ``resident`` symbols (backend/lower/resident.py) are regions every program of one
session addresses at the same DRAM place. The interpreter builds one machine per program, so
`ResidentDram` stands for the NPU DRAM that stays between them: before a run it puts the
session's bytes of each resident region back (not a transfer: on the NPU they never left), after
the run it keeps them. A region the session has not seen yet starts as zeros.

    kv = ResidentDram()
    prefill.run({"ids": ids, "slots": slots}, resident=kv)        # writes rows [0, P)
    decode.run({"ids": ..., "pos": ..., "mask": ..., "slot": ...}, resident=kv)  # appends row P

The host may read or rewrite a region between runs (`rows`, `set_rows`: host work, e.g. the
kv-prune compaction of a prompt longer than keep in compiler/generation/session.py), or give a
region no program has used yet its first contents (`put`: kv-prune's carried scores after the
prefill).
"""

from __future__ import annotations

import numpy as np

from backend.errors import SimError
from backend.interpreter.state import NP_DTYPES, Machine
from backend.program import Program, Symbol


class ResidentDram:
    """The bytes of each resident region by name, with the place every program must use."""

    def __init__(self) -> None:
        self._regions: dict[str, tuple[Symbol, np.ndarray]] = {}
        self._pending: dict[str, np.ndarray] = {}  # `put` before any program used the region

    def restore(self, m: Machine, program: Program) -> None:
        """Put the session's bytes of ``program``'s resident regions into its DRAM."""
        for s in _resident(program):
            if s.name not in self._regions and s.name in self._pending:
                x = self._pending.pop(s.name)
                data = np.zeros(s.nbytes, np.uint8)
                self._regions[s.name] = (s, data)
                self.set_rows(s.name, x)
            held = self._regions.get(s.name)
            if held is None:
                continue
            sym, data = held
            if (sym.addr, sym.nbytes, sym.dtype) != (s.addr, s.nbytes, s.dtype):
                raise SimError(
                    f"resident region '{s.name}': this program places it at {s.addr} "
                    f"({s.nbytes} B), the session at {sym.addr} ({sym.nbytes} B)"
                )
            m.dram[s.addr : s.addr + s.nbytes] = data

    def keep(self, m: Machine, program: Program) -> None:
        """Keep the bytes of ``program``'s resident regions after its run."""
        for s in _resident(program):
            self._regions[s.name] = (s, m.dram[s.addr : s.addr + s.nbytes].copy())

    def names(self) -> list[str]:
        return list(self._regions)

    def rows(self, name: str) -> np.ndarray:
        """A copy of region ``name`` as an array of its symbol's shape and dtype."""
        sym, data = self._held(name)
        return data.view(NP_DTYPES[sym.dtype]).reshape(sym.shape).copy()

    def set_rows(self, name: str, x: np.ndarray) -> None:
        """Rewrite region ``name`` with ``x`` (its shape; converted to its dtype): host work."""
        sym, data = self._held(name)
        arr = np.asarray(x)
        if tuple(arr.shape) != tuple(sym.shape):
            raise SimError(f"resident region '{name}': shape {arr.shape} != {tuple(sym.shape)}")
        data[...] = np.ascontiguousarray(arr.astype(NP_DTYPES[sym.dtype])).view(np.uint8).ravel()

    def put(self, name: str, x: np.ndarray) -> None:
        """Region ``name``'s contents (its shape), now or when a program first uses it."""
        if name in self._regions:
            self.set_rows(name, x)
        else:
            self._pending[name] = np.array(x)

    def _held(self, name: str) -> tuple[Symbol, np.ndarray]:
        if name not in self._regions:
            raise SimError(f"no resident region '{name}' in this session (has {self.names()})")
        return self._regions[name]


def _resident(program: Program) -> list[Symbol]:
    return [s for s in program.symbols.values() if s.kind == "resident"]
