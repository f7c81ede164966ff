"""DRAM tensors as the lowering sees them: a base address, a shape and byte strides."""

from __future__ import annotations

import math
from dataclasses import dataclass

from backend.errors import BackendError
from backend.isa import DType


@dataclass(frozen=True)
class DTensor:
    """``shape`` elements of ``dtype`` at DRAM ``addr``; ``strides`` in bytes per dim.

    Views (row/column blocks, slices, reshapes of contiguous data) share storage with the tensor
    they come from; only the address and strides change.
    """

    addr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: DType

    @staticmethod
    def contiguous(addr: int, shape: tuple[int, ...], dtype: DType) -> DTensor:
        """A row-major tensor."""
        strides: list[int] = []
        s = dtype.bits // 8
        for d in reversed(shape):
            strides.append(s)
            s *= d
        return DTensor(addr, tuple(shape), tuple(reversed(strides)), dtype)

    @property
    def esize(self) -> int:
        """Bytes per element."""
        return self.dtype.bits // 8

    @property
    def nbytes(self) -> int:
        """Bytes of a contiguous tensor of this shape."""
        return math.prod(self.shape) * self.esize

    @property
    def is_contiguous(self) -> bool:
        """Row-major without gaps."""
        return self == DTensor.contiguous(self.addr, self.shape, self.dtype)

    def as2d(self) -> DTensor:
        """The same data as [rows, cols] (1-D → one row; leading dims merged if contiguous)."""
        if len(self.shape) == 2:
            return self
        if len(self.shape) == 1:
            return DTensor(
                self.addr,
                (1, self.shape[0]),
                (self.shape[0] * self.esize, self.strides[0]),
                self.dtype,
            )
        if len(self.shape) == 0:
            return DTensor(self.addr, (1, 1), (self.esize, self.esize), self.dtype)
        lead = self.shape[:-1]
        for i in range(len(lead) - 1):
            if self.strides[i] != self.strides[i + 1] * self.shape[i + 1]:
                raise BackendError(
                    f"tensor view {self.shape} with strides {self.strides} is not 2-D"
                )
        return DTensor(
            self.addr,
            (math.prod(lead), self.shape[-1]),
            (self.strides[-2], self.strides[-1]),
            self.dtype,
        )

    @property
    def rows(self) -> int:
        return self.as2d().shape[0]

    @property
    def cols(self) -> int:
        return self.as2d().shape[1]

    @property
    def row_stride(self) -> int:
        """Bytes between rows of the 2-D view."""
        return self.as2d().strides[0]

    def at(self, r: int, c: int) -> int:
        """DRAM address of 2-D element (r, c)."""
        t = self.as2d()
        return t.addr + r * t.strides[0] + c * t.strides[1]

    def block(self, r0: int, nr: int, c0: int, nc: int) -> DTensor:
        """The 2-D sub-block rows r0..r0+nr, cols c0..c0+nc (a view)."""
        t = self.as2d()
        return DTensor(t.at(r0, c0), (nr, nc), t.strides, t.dtype)

    def reshape(self, shape: tuple[int, ...]) -> DTensor | None:
        """A view with another shape, or None if the data is not contiguous."""
        if not self.is_contiguous:
            return None
        return DTensor.contiguous(self.addr, shape, self.dtype)

    def slice(self, offsets: tuple[int, ...], sizes: tuple[int, ...]) -> DTensor:
        """A static slice (a view)."""
        addr = self.addr + sum(o * s for o, s in zip(offsets, self.strides, strict=True))
        return DTensor(addr, tuple(sizes), self.strides, self.dtype)

    def transpose(self, perm: tuple[int, ...]) -> DTensor:
        """A permuted view (strides permuted; may not be 2-D-loadable)."""
        return DTensor(
            self.addr,
            tuple(self.shape[p] for p in perm),
            tuple(self.strides[p] for p in perm),
            self.dtype,
        )
