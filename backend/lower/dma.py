"""DMA helpers: move a 2-D DRAM block to or from an SRAM tile."""

from __future__ import annotations

from backend.errors import BackendError
from backend.isa import Buf
from backend.lower.context import LowerCtx
from backend.lower.values import DTensor


def _check(t: DTensor) -> DTensor:
    t = t.as2d()
    if t.strides[1] != t.esize:
        raise BackendError(f"DMA of a view with element stride {t.strides[1]} B is not supported")
    return t


def load(ctx: LowerCtx, t: DTensor, buf: Buf, off: int, stride: int | None = None) -> None:
    """DRAM block ``t`` → SRAM ``buf[off]`` (row stride ``stride`` elements, default cols)."""
    t = _check(t)
    rows, cols = t.shape
    ctx.emit(
        "LOAD", dtype=t.dtype, dst_buf=buf, dst_off=off, dst_stride=stride or cols,
        src_addr=t.addr, src_stride=t.strides[0], rows=rows, cols=cols,
    )  # fmt: skip


def store(ctx: LowerCtx, t: DTensor, buf: Buf, off: int, stride: int | None = None) -> None:
    """SRAM ``buf[off]`` → DRAM block ``t``."""
    t = _check(t)
    rows, cols = t.shape
    ctx.emit(
        "STORE", dtype=t.dtype, src_buf=buf, src_off=off, src_stride=stride or cols,
        dst_addr=t.addr, dst_stride=t.strides[0], rows=rows, cols=cols,
    )  # fmt: skip


def row_tiles(rows: int, row_bytes: int, cap: int, what: str, ctx: LowerCtx) -> int:
    """Rows per tile so that a tile of ``row_bytes``-byte rows fits ``cap`` bytes."""
    if row_bytes > cap:
        raise ctx.too_big(f"{what}: one row of {row_bytes} B exceeds the {cap} B tile budget")
    return max(1, min(rows, cap // max(row_bytes, 1)))
