"""`.incbin "FILE"[, OFFSET, COUNT]`: the one file an assembly program may read, and only beside
itself (COUNT bytes of it from OFFSET on when given: e.g. the DATA section of a ``.npubin``).

The program text is untrusted. FILE must be a plain relative path without ``..`` that stays inside
the assembly file's directory after symlinks are resolved, and must name a regular file (no
devices, FIFOs or directories) of at most the DRAM space left. Text assembled without a file name
(``<asm>``, ``<stdin>``) has no directory, so it cannot use ``.incbin``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath


class IncbinError(Exception):
    """Why an ``.incbin`` operand is refused (the assembler adds file:line:col)."""


def incbin_path(asm_filename: str, name: str) -> Path:
    """The file ``name`` refers to, checked to lie inside the assembly file's directory."""
    if asm_filename.startswith("<"):
        raise IncbinError("only allowed in an assembly file read from disk")
    rel = PurePosixPath(name)
    if not name or "\0" in name or "\\" in name:
        raise IncbinError("not a plain relative file name")
    if rel.is_absolute() or ".." in rel.parts:
        raise IncbinError("must be relative to the assembly file's directory, without '..'")
    base = Path(asm_filename).resolve().parent
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise IncbinError("resolves outside the assembly file's directory")
    return target


def read_incbin(
    asm_filename: str, name: str, limit: int, span: tuple[int, int] | None = None
) -> bytes:
    """The bytes of ``name`` (see `incbin_path`), at most ``limit`` of them; with ``span``
    (offset, count), exactly the ``count`` bytes from ``offset`` on."""
    path = incbin_path(asm_filename, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise IncbinError(e.strerror or str(e)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise IncbinError("not a regular file")
        if span is not None:
            off, count = span
            if off < 0 or count < 0 or off + count > st.st_size:
                raise IncbinError(
                    f"bytes [{off}, {off + count}) are not inside the file ({st.st_size} bytes)"
                )
            if count > limit:
                raise IncbinError(f"{count} bytes; the DRAM image has room for {limit}")
            f.seek(off)
            data = f.read(count)
            if len(data) != count:
                raise IncbinError(f"file ended after {len(data)} of {count} bytes")
            return data
        if st.st_size > limit:
            raise IncbinError(f"{st.st_size} bytes; the DRAM image has room for {limit}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise IncbinError(f"larger than the {limit} bytes left in the DRAM image")
    return data
