"""Machine state: DRAM and SRAM byte arrays, predicate registers, typed tile access."""

from __future__ import annotations

import heapq

import numpy as np

from backend.config import Config
from backend.errors import SimError
from backend.interpreter.numerics import f16_to_f32, pack_int4, store_f16, unpack_int4
from backend.interpreter.operands import DRAM, SPACE_NAMES, Tile, tiles_overlap
from backend.isa import DType

NP_DTYPES = {
    DType.FP16: np.dtype("<f2"),
    DType.FP32: np.dtype("<f4"),
    DType.INT8: np.dtype("i1"),
    DType.INT4: np.dtype("u1"),  # raw bytes; unpacked by read()
    DType.INT32: np.dtype("<i4"),
}
N_PREDS = 16
FCACHE_ENTRIES = 8


class Machine:
    """Memories and predicates. ``dram`` is None in timing-only mode (no numerics)."""

    def __init__(self, config: Config, dram_size: int, functional: bool = True) -> None:
        self.sizes = (*config.sram, dram_size)
        self.functional = functional
        self.mem: list[np.ndarray] = (
            [np.zeros(s, dtype=np.uint8) for s in self.sizes] if functional else []
        )
        # None = unknown (timing-only: set by a CMP whose data was not computed)
        self.preds: list[bool | None] = [True, *([False] * (N_PREDS - 1))]
        self.pending: list[tuple[int, int, int, bool | None]] = []  # (time, seq, reg, value)
        self.end_time = 0  # completion time of the instruction being executed
        # float copies of operand tiles (MATMUL A/B), dropped when a write overlaps their tile
        # value: (tile, array, space, first byte, one past the last byte)
        self.fcache: dict[tuple, tuple[Tile, np.ndarray, int, int, int]] = {}
        self._fspaces = [0] * (len(self.sizes))  # cached entries per memory space
        self._seq = 0

    def reset_state(self) -> None:
        """Predicates, pending writes, time and cached conversions as a new machine has them
        (memory is the caller's: `prepared.take` resets it)."""
        self.preds[:] = [True, *([False] * (N_PREDS - 1))]
        self.pending.clear()
        self.end_time = 0
        self.fcache.clear()
        self._fspaces[:] = [0] * len(self._fspaces)
        self._seq = 0

    def set_pred(self, reg: int, value: bool | None) -> None:
        """Write a predicate; it becomes visible when the current instruction completes."""
        self._seq += 1
        heapq.heappush(self.pending, (self.end_time, self._seq, reg, value))

    def settle_preds(self, now: int) -> None:
        """Apply predicate writes completed by time ``now``."""
        pend = self.pending
        while pend and pend[0][0] <= now:
            _, _, reg, value = heapq.heappop(pend)
            self.preds[reg] = value

    @property
    def dram(self) -> np.ndarray:
        """The DRAM byte array."""
        return self.mem[DRAM]

    def check(self, t: Tile) -> None:
        """Raise SimError if ``t`` reaches outside its memory."""
        if t.empty:
            return
        size = self.sizes[t.space]
        if t.stride < 0 or t.end > size:
            kind = "DRAM" if t.space == DRAM else "SRAM"
            raise SimError(
                f"{kind} out of bounds: {t.describe()} (rows={t.rows}, row stride={t.stride} B, "
                f"{t.width} B per row) exceeds {SPACE_NAMES[t.space]} size {size}"
            )

    def raw(self, t: Tile) -> np.ndarray:
        """(rows, width) uint8 view of the tile's bytes."""
        return np.ndarray((t.rows, t.width), np.uint8, self.mem[t.space], t.off, (t.stride, 1))

    def flat(self, t: Tile) -> np.ndarray:
        """Contiguous bytes of a one-row tile."""
        return self.mem[t.space][t.off : t.off + t.width]

    def view(self, t: Tile) -> np.ndarray:
        """Writable typed (rows, cols) view (not for INT4)."""
        dt = NP_DTYPES[t.dtype]
        return np.ndarray((t.rows, t.cols), dt, self.mem[t.space], t.off, (t.stride, dt.itemsize))

    def read(self, t: Tile) -> np.ndarray:
        """Typed (rows, cols) values: a view, or an unpacked int8 copy for INT4."""
        if t.dtype is DType.INT4:
            return unpack_int4(self.raw(t))
        return self.view(t)

    def read_f32(self, t: Tile) -> np.ndarray:
        """A new float32 array of the tile's values (``read(t).astype(float32)``, faster for fp16)."""
        if t.dtype is DType.FP16:
            return f16_to_f32(self.view(t))
        return self.read(t).astype(np.float32)

    def read_as(self, t: Tile, ft: type) -> np.ndarray:
        """Values of ``t`` converted to float type ``ft``, cached until a write overlaps ``t``.

        The result is shared: callers must not modify it.
        """
        key = (*t[:6], ft)
        hit = self.fcache.get(key)
        if hit is not None:
            return hit[1]
        arr = self.read_f32(t) if ft is np.float32 else self.read(t).astype(ft)
        self._cache_put(key, (t, arr, t.space, t.off, t.end))
        return arr

    def _cache_put(self, key: tuple, entry: tuple[Tile, np.ndarray, int, int, int]) -> None:
        while len(self.fcache) >= FCACHE_ENTRIES:
            self._fspaces[self.fcache.pop(next(iter(self.fcache)))[2]] -= 1
        self.fcache[key] = entry
        self._fspaces[entry[2]] += 1

    def prime(self, key: tuple, entry: tuple[Tile, np.ndarray, int, int, int]) -> None:
        """Put a conversion `read_as` made earlier (same key, same bytes) back in the cache,
        evicting nothing (so the entries the next instruction reads stay); `trim` restores the
        size bound afterwards."""
        if key not in self.fcache:
            self.fcache[key] = entry
            self._fspaces[entry[2]] += 1

    def trim(self) -> None:
        """Evict the oldest conversions down to ``FCACHE_ENTRIES``."""
        while len(self.fcache) > FCACHE_ENTRIES:
            self._fspaces[self.fcache.pop(next(iter(self.fcache)))[2]] -= 1

    def invalidate(self, written: Tile) -> None:
        """Drop cached conversions whose tile shares a byte with ``written``."""
        if written.rows <= 0 or written.width <= 0 or not self._fspaces[written.space]:
            return
        sp, lo, hi = written.space, written.off, written.end
        stale = [
            k
            for k, (t, _, s, a, b) in self.fcache.items()
            if s == sp and a < hi and lo < b and tiles_overlap(t, written)
        ]
        for k in stale:
            del self.fcache[k]
            self._fspaces[sp] -= 1

    def write(self, t: Tile, values: np.ndarray) -> None:
        """Store ``values`` (already in range) into the tile, converting to its dtype."""
        if t.dtype is DType.INT4:
            self.raw(t)[...] = pack_int4(np.asarray(values))
        elif t.dtype is DType.FP16 and getattr(values, "dtype", None) == np.float32:
            store_f16(self.view(t), values)
        else:
            self.view(t)[...] = values

    def load_bytes(self, addr: int, data: bytes | np.ndarray) -> None:
        """Copy bytes into DRAM at ``addr``."""
        buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
        if addr + buf.size > self.sizes[DRAM]:
            raise SimError(f"DRAM image of {buf.size} B at {addr} exceeds DRAM size")
        self.dram[addr : addr + buf.size] = buf
