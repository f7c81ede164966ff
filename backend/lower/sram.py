"""SRAM allocation: per buffer, an op-lifetime region at the bottom and a ring above it.

Within one nn op, `hold` returns space that stays valid for the whole op (layer-norm gamma/beta,
an operand reused across tiles); `take` returns space from a ring that wraps around, so successive
tiles land in different places and the scheduler can overlap the DMA of tile i+1 with the
compute of tile i (double or deeper buffering falls out of the ring size). A tile is valid until
the ring wraps back over it, so callers take each tile's space once per iteration and size tiles
to at most half the ring (`cap`) when they want double buffering.
"""

from __future__ import annotations

from backend.errors import BackendError
from backend.isa import Buf

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class Arena:
    """One SRAM buffer."""

    def __init__(self, buf: Buf, size: int) -> None:
        self.buf = buf
        self.size = size
        self.hold_top = 0
        self.ptr = 0
        self.took = False

    def begin_op(self) -> None:
        """Release the op-lifetime region (the ring pointer carries on)."""
        self.hold_top = 0
        self.took = False

    @property
    def ring(self) -> int:
        """Bytes available to the ring."""
        return self.size - self.hold_top

    def hold(self, nbytes: int, what: str) -> int:
        """Op-lifetime space (call before any `take` of the op)."""
        assert not self.took, f"{what}: hold after take in buffer {self.buf.asm_name}"
        n = _align(nbytes)
        if self.hold_top + n > self.size:
            raise BackendError(
                f"{what}: needs {nbytes} B of SRAM buffer '{self.buf.asm_name}' held for the op, "
                f"but only {self.size - self.hold_top} B of {self.size} B are free"
            )
        off = self.hold_top
        self.hold_top += n
        self.ptr = max(self.ptr, self.hold_top)
        return off

    def take(self, nbytes: int, what: str) -> int:
        """Ring space for one tile."""
        n = _align(nbytes)
        if n > self.ring:
            raise BackendError(
                f"{what}: a tile of {nbytes} B does not fit SRAM buffer '{self.buf.asm_name}' "
                f"({self.ring} B free of {self.size} B)"
            )
        if self.ptr < self.hold_top or self.ptr + n > self.size:
            self.ptr = self.hold_top
        off = self.ptr
        self.ptr += n
        self.took = True
        return off
