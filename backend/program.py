"""A compiled program: instructions, the DRAM image and the symbol table."""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.isa import DType, Instr

SYMBOL_KINDS = ("input", "output", "weight", "scratch", "resident")
# DRAM the host changes between runs: inputs it writes, and regions kept across the runs of a
# session (`resident`: a generation's KV cache, backend/interpreter/resident.py)
HOST_WRITTEN = frozenset({"input", "resident"})
CONFIG_HASH_BYTES = 8
MAX_IMAGE_BYTES = 1 << 30  # an assembled DRAM image (.data/.zero/.incbin); zoo models use < 300 MB


@dataclass
class Symbol:
    """A named DRAM region: ``shape`` elements of ``dtype`` starting at byte ``addr``."""

    name: str
    addr: int
    shape: tuple[int, ...]
    dtype: DType
    kind: str

    @property
    def nbytes(self) -> int:
        """Size of the region in bytes (int4 packed two per byte)."""
        count = 1
        for d in self.shape:
            count *= d
        return self.dtype.nbytes(count)


@dataclass
class Program:
    """Instructions plus the DRAM image (``data`` is loaded at address 0) and metadata.

    ``config_name``/``config_hash`` identify the hardware config the program was compiled for.
    """

    instrs: list[Instr] = field(default_factory=list)
    data: bytes = b""
    dram_size: int = 0
    symbols: dict[str, Symbol] = field(default_factory=dict)
    config_name: str = ""
    config_hash: bytes = bytes(CONFIG_HASH_BYTES)

    def __repr__(self) -> str:  # short: the instruction list and the image can be megabytes
        return (
            f"Program({len(self.instrs)} instructions, {len(self.data)} B data, dram_size="
            f"{self.dram_size}, symbols={list(self.symbols)}, config={self.config_name!r})"
        )


def clean_comment(text: str) -> str:
    """The canonical form of an instruction comment: one line, single spaces, no ends."""
    return " ".join(text.split())


def comment_runs(instrs: list[Instr]) -> list[tuple[int, int, str]]:
    """Maximal runs ``(first index, count, text)`` of equal non-empty (cleaned) comments."""
    runs: list[tuple[int, int, str]] = []
    for n, i in enumerate(instrs):
        c = clean_comment(i.comment)
        if not c:
            continue
        if runs and runs[-1][2] == c and runs[-1][0] + runs[-1][1] == n:
            start, count, _ = runs[-1]
            runs[-1] = (start, count + 1, c)
        else:
            runs.append((n, 1, c))
    return runs
