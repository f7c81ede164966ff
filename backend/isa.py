"""The NPU instruction set, defined once.

``ISA`` is the table every other part of the backend derives from: the encoder and decoder
(`backend.encoding`), the assembler grammar and disassembler (`backend.asm`), the interpreter's
dispatch, the cost model and `docs/isa.md` (`backend.isa_doc`).

Every instruction is 256 bits, little-endian. Bits 0.. hold the common header (``HEADER``:
opcode, pred, pneg, wait, signal); the class fields follow in table order; unused high bits are
reserved and must be zero.
"""

from __future__ import annotations

import enum
import math
import reprlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.errors import IsaError

INSTR_BITS = 256
INSTR_BYTES = INSTR_BITS // 8


class Queue(enum.IntEnum):
    """The five decoupled in-order queues; bit ``q`` of a wait/signal mask names queue ``q``."""

    LOAD = 0
    STORE = 1
    MATRIX = 2
    VECTOR = 3
    SELECT = 4


class DType(enum.IntEnum):
    """Element formats. INT4 is packed two per byte, low nibble first, signed."""

    FP16 = 0
    FP32 = 1
    INT8 = 2
    INT4 = 3
    INT32 = 4

    @property
    def bits(self) -> int:
        """Bits per element."""
        return _DTYPE_BITS[self]

    @property
    def np_dtype(self) -> np.dtype:
        """The numpy dtype of an unpacked element (INT4 unpacks to int8)."""
        return np.dtype(_DTYPE_NP[self])

    def nbytes(self, count: int) -> int:
        """Bytes taken by ``count`` packed elements (rounded up to whole bytes)."""
        return (count * self.bits + 7) // 8

    @property
    def asm_name(self) -> str:
        """Lowercase name used in assembly and docs."""
        return self.name.lower()


_DTYPE_BITS = {DType.FP16: 16, DType.FP32: 32, DType.INT8: 8, DType.INT4: 4, DType.INT32: 32}
_DTYPE_NP = {
    DType.FP16: "float16",
    DType.FP32: "float32",
    DType.INT8: "int8",
    DType.INT4: "int8",
    DType.INT32: "int32",
}


class Buf(enum.IntEnum):
    """SRAM buffer ids (sizes come from the hardware config)."""

    ACT = 0
    WGT = 1
    ACC = 2
    VEC = 3
    IDX = 4

    @property
    def asm_name(self) -> str:
        """Lowercase name used in assembly and docs."""
        return self.name.lower()


FIELD_KINDS = ("uint", "int", "buf", "dtype", "enum", "f32", "queue_mask", "pred")


@dataclass(frozen=True)
class Field:
    """One bit field of an instruction.

    Kinds: ``uint``/``int`` (two's complement) integers, ``buf`` (a `Buf`), ``dtype`` (a `DType`),
    ``enum`` (index into ``choices``), ``f32`` (a float immediate stored as its IEEE-754 bits),
    ``queue_mask`` (bit per `Queue`), ``pred`` (a predicate register index). ``default`` (None:
    required) is used by `make` when the field is omitted and lets the assembler omit it.
    """

    name: str
    bits: int
    kind: str
    choices: tuple[str, ...] = ()
    doc: str = ""
    default: int | float | None = None
    lo_limit: int | None = None
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """Symbolic value names for enum-like kinds (index = encoded value), else ()."""
    lo: int = field(init=False, repr=False, compare=False)
    """Smallest allowed integer value (not meaningful for f32)."""
    hi: int = field(init=False, repr=False, compare=False)
    """Largest allowed integer value (not meaningful for f32)."""

    def __post_init__(self) -> None:
        assert self.kind in FIELD_KINDS, self.kind
        assert self.bits > 0
        if self.kind == "enum":
            assert 0 < len(self.choices) <= 1 << self.bits, self.name
        if self.kind == "f32":
            assert self.bits == 32
        names = {
            "enum": self.choices,
            "buf": tuple(b.asm_name for b in Buf),
            "dtype": tuple(d.asm_name for d in DType),
        }.get(self.kind, ())
        if self.lo_limit is not None:
            lo = self.lo_limit
        else:
            lo = -(1 << (self.bits - 1)) if self.kind == "int" else 0
        if names:
            hi = len(names) - 1
        elif self.kind == "int":
            hi = (1 << (self.bits - 1)) - 1
        elif self.kind == "queue_mask":
            hi = (1 << len(Queue)) - 1
        else:
            hi = (1 << self.bits) - 1
        assert hi < 1 << self.bits
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def range_text(self) -> str:
        """Human description of the allowed values, for error messages and docs."""
        if self.names:
            return "one of " + "|".join(self.names)
        if self.kind == "f32":
            return "a finite or infinite float32"
        return f"{self.lo}..{self.hi}"

    def check(self, value: object, where: str = "") -> int | float:
        """Validate and normalise ``value`` (names, enum members, ints, floats); raise IsaError."""
        prefix = f"{where}: " if where else ""
        if self.kind == "f32":
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise IsaError(
                    f"{prefix}field '{self.name}' must be a float, got {reprlib.repr(value)}"
                )
            f = float(value)
            if math.isnan(f):
                raise IsaError(f"{prefix}field '{self.name}' must not be NaN")
            if to_f32(f) != f:
                raise IsaError(
                    f"{prefix}field '{self.name}' value {f!r} is not exactly representable "
                    "in float32 (round it with isa.to_f32)"
                )
            return f
        if isinstance(value, str) and self.names:
            if value.lower() in self.names:
                return self.names.index(value.lower())
            raise IsaError(
                f"{prefix}field '{self.name}' must be {self.range_text()}, got {reprlib.repr(value)}"
            )
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | np.integer):
            raise IsaError(
                f"{prefix}field '{self.name}' must be an integer, got {reprlib.repr(value)}"
            )
        v = int(value)
        if not self.lo <= v <= self.hi:
            raise IsaError(
                f"{prefix}field '{self.name}' value {v} out of range (allowed {self.range_text()})"
            )
        return v


@dataclass(frozen=True)
class InstrClass:
    """One instruction class: its opcode, queue and class fields (after the common header)."""

    name: str
    mnemonic: str
    opcode: int
    queue: Queue
    fields: tuple[Field, ...]
    doc: str
    shifts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    field_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shifts: list[int] = []
        pos = HEADER_BITS
        for f in self.fields:
            shifts.append(pos)
            pos += f.bits
        assert pos <= INSTR_BITS, f"{self.name} needs {pos} bits > {INSTR_BITS}"
        names = [f.name for f in self.fields]
        assert len(set(names)) == len(names), f"{self.name}: duplicate field"
        assert not set(names) & {h.name for h in HEADER}, f"{self.name}: field clashes with header"
        object.__setattr__(self, "shifts", tuple(shifts))
        object.__setattr__(self, "field_index", {n: i for i, n in enumerate(names)})

    def __hash__(self) -> int:
        return hash((self.name, self.opcode))

    @property
    def used_bits(self) -> int:
        """Header plus class field bits."""
        return HEADER_BITS + sum(f.bits for f in self.fields)

    def field(self, name: str) -> Field:
        """The class field called ``name`` (KeyError if none)."""
        return self.fields[self.field_index[name]]


HEADER: tuple[Field, ...] = (
    Field("opcode", 6, "uint", doc="instruction class"),
    Field(
        "pred", 4, "pred", doc="predicate register guarding the instruction (p0 = true)", default=0
    ),
    Field("pneg", 1, "uint", doc="1: execute when the predicate is false", default=0),
    Field("wait", 5, "queue_mask", doc="queues to pop one token from before starting", default=0),
    Field("signal", 5, "queue_mask", doc="queues to push one token to on completion", default=0),
)
HEADER_BITS = sum(f.bits for f in HEADER)

# ---- field constructors -------------------------------------------------------------------------

OFF_BITS = 22  # SRAM byte offsets: up to 4 MiB buffers
SSTRIDE_BITS = 16  # SRAM row stride in elements
DADDR_BITS = 32  # DRAM byte addresses
DSTRIDE_BITS = 24  # DRAM row stride in bytes
DIM_BITS = 16  # rows, cols, m, n, k


def _u(name: str, bits: int, doc: str, default: int | None = None) -> Field:
    return Field(name, bits, "uint", doc=doc, default=default)


def _flag(name: str, doc: str) -> Field:
    return Field(name, 1, "uint", doc=doc, default=0)


def _enum(name: str, choices: str, doc: str, default: int | None = None) -> Field:
    ch = tuple(choices.split("|"))
    return Field(name, max(1, (len(ch) - 1).bit_length()), "enum", ch, doc, default)


def _dtype(name: str = "dtype", doc: str = "element type") -> Field:
    return Field(name, 3, "dtype", doc=doc)


def _f32(name: str, doc: str, default: float | None = None) -> Field:
    return Field(name, 32, "f32", doc=doc, default=default)


def _dim(name: str, doc: str) -> Field:
    return _u(name, DIM_BITS, doc)


def _sram(prefix: str, what: str, stride: bool = True, optional: bool = False) -> tuple[Field, ...]:
    """``<prefix>_buf``, ``<prefix>_off`` (bytes) and optionally ``<prefix>_stride`` (elements)."""
    d = 0 if optional else None
    out = (
        Field(f"{prefix}_buf", 3, "buf", doc=f"{what}: SRAM buffer", default=d),
        _u(f"{prefix}_off", OFF_BITS, f"{what}: byte offset in the buffer", d),
    )
    if stride:
        out += (_u(f"{prefix}_stride", SSTRIDE_BITS, f"{what}: row stride in elements", d),)
    return out


def _dram(prefix: str, what: str) -> tuple[Field, ...]:
    return (
        _u(f"{prefix}_addr", DADDR_BITS, f"{what}: DRAM byte address"),
        _u(f"{prefix}_stride", DSTRIDE_BITS, f"{what}: DRAM row stride in bytes"),
    )


_ROWS = _dim("rows", "number of rows")
_COLS = _dim("cols", "number of columns (elements)")
_PDST = Field("pdst", 4, "pred", doc="predicate register written (p1..p15)", lo_limit=1)

# ---- the table ----------------------------------------------------------------------------------

ISA: tuple[InstrClass, ...] = (
    InstrClass(
        "LOAD", "load", 1, Queue.LOAD,
        (_dtype(), *_sram("dst", "destination"), *_dram("src", "source"), _ROWS, _COLS),
        "2-D strided DRAM → SRAM copy of rows × cols elements of `dtype`.",
    ),
    InstrClass(
        "LOADBP", "loadbp", 2, Queue.LOAD,
        (
            _enum("plane", "msb|lsb", "which 4-bit plane to load"),
            *_sram("dst", "destination (int8)"), *_dram("src", "source plane (packed int4)"),
            _ROWS, _COLS,
        ),
        "Bit-plane load of an int8 tensor stored as two packed 4-bit planes: `msb` writes "
        "`plane << 4` (signed nibble), `lsb` adds the unsigned low nibble in place.",
    ),
    InstrClass(
        "GATHER", "gather", 3, Queue.LOAD,
        (
            _dtype(), *_sram("dst", "destination"),
            _u("src_addr", DADDR_BITS, "table base: DRAM byte address"),
            _u("src_stride", DSTRIDE_BITS, "bytes per table row"),
            *_sram("idx", "row indices (int32)", stride=False),
            _dim("rows", "number of rows gathered"), _COLS,
        ),
        "Row gather DRAM → SRAM: destination row i is table row idx[i].",
    ),
    InstrClass(
        "STORE", "store", 4, Queue.STORE,
        (_dtype(), *_sram("src", "source"), *_dram("dst", "destination"), _ROWS, _COLS),
        "2-D strided SRAM → DRAM copy of rows × cols elements of `dtype`.",
    ),
    InstrClass(
        "MATMUL", "matmul", 5, Queue.MATRIX,
        (
            _enum("mode", "fp16|int8|int4w|sp24|sp24h", "operand formats (see docs/npu.md)"),
            _flag("acc", "1: C += A·B, 0: C = A·B"),
            _flag("tb", "1: B is stored as [N, K]"),
            *_sram("a", "A [M, K]"), *_sram("b", "B [K, N] (or [N, K])"),
            *_sram("c", "C [M, N] (fp32 or int32)"),
            _dim("m", "rows of A and C"), _dim("n", "columns of C"), _dim("k", "reduction length"),
            *_sram("meta", "sp24/sp24h metadata (2-bit positions)", stride=False, optional=True),
            _flag("mask", "1: apply the per-row precision mask"),
            *_sram("mask", "per-row precision mask (one byte per row of A)", False, True),
            _enum(
                "flow", "os|ws|is",
                "dataflow (timing only): output-, weight- or input-stationary (SCALE-Sim)", 0,
            ),
        ),
        "Tile matrix multiply `C[M,N] (+)= A[M,K] · B[K,N]`, optional 2:4 sparse B and "
        "per-row INT4-MSB precision mask (FACT); `flow` picks the array's dataflow, which "
        "changes the timing only.",
    ),
    InstrClass(
        "VEC", "vec", 6, Queue.VECTOR,
        (
            _enum("op", "add|sub|mul|div|max|min|exp|gelu|gelu_tanh|tanh|relu|copy", "operation"),
            _enum("bcast", "none|row|col|scalar", "how b is broadcast (scalar: b = imm)", 0),
            _dtype(), *_sram("dst", "destination"), *_sram("a", "first operand"),
            *_sram("b", "second operand (binary ops)", optional=True),
            _ROWS, _COLS, _f32("imm", "scalar operand for bcast=scalar", 0.0),
        ),
        "Elementwise `dst = a op b` or `dst = op(a)` over rows × cols.",
    ),
    InstrClass(
        "REQUANT", "requant", 7, Queue.VECTOR,
        (
            _enum("out_dtype", "int8|int4", "output format"),
            _flag("per_col", "1: multipliers per column from mult_buf"),
            *_sram("dst", "destination (int8 / packed int4)"), *_sram("src", "source (int32)"),
            _ROWS, _COLS,
            Field("mult", 32, "int", doc="per-tensor multiplier (ignored if per_col)", default=0),
            _u("shift", 6, "right shift s"),
            Field("zp", 8, "int", doc="output zero point", default=0),
            *_sram("mult", "per-column int32 multipliers", stride=False, optional=True),
        ),
        "int32 → int8/int4: `q = clamp(((x·m + 2^(s−1)) >> s) + zp)` (arithmetic shift).",
    ),
    InstrClass(
        "ROW", "row", 8, Queue.VECTOR,
        (
            _enum("op", "softmax|layernorm|rowmax|rowsum", "row operation"),
            _dtype(), *_sram("dst", "destination"), *_sram("src", "source"), _ROWS, _COLS,
            _f32("scale", "softmax: input scale", 1.0),
            _f32("eps", "layernorm: epsilon", 0.0),
            _flag("causal", "softmax: mask columns j > row0 + i"),
            _u("row0", DIM_BITS, "global index of the first row (causal mask)", 0),
            *_sram("g", "layernorm gamma then beta (fp32 rows)", stride=False, optional=True),
        ),
        "Row-wise softmax, layer norm, max or sum.",
    ),
    InstrClass(
        "MOVE", "move", 9, Queue.VECTOR,
        (
            _dtype("src_dtype", "source element type"),
            _dtype("dst_dtype", "destination element type"),
            _flag("transpose", "1: dst = srcᵀ (dst is cols × rows)"),
            *_sram("dst", "destination"), *_sram("src", "source"), _ROWS, _COLS,
            _f32("scale", "int → float: multiplier on the result; float → int: fp32 x·scale before rounding", 1.0),
            _flag("per_col", "1: int → float multiplies f32(x) by a per-source-column fp32 scale from cs"),
            *_sram("cs", "per-column fp32 scales (per_col)", stride=False, optional=True),
        ),
        "Copy a 2-D tile between buffers, optionally transposed, with dtype conversion.",
    ),
    InstrClass(
        "VGATHER", "vgather", 10, Queue.VECTOR,
        (
            _dtype(), *_sram("dst", "destination"), *_sram("src", "source rows"),
            *_sram("idx", "row indices (int32)", stride=False), _ROWS, _COLS,
        ),
        "In-SRAM row gather: dst row i = src row idx[i] (zero eliminator).",
    ),
    InstrClass(
        "TOPK", "topk", 11, Queue.SELECT,
        (
            *_sram("src", "scores (fp32)"), _ROWS,
            _dim("n", "scores per row"), _dim("k", "indices kept per row"),
            *_sram("dst", "indices (int32, k per row), or the mask (mask=1)", stride=False),
            _flag("mask", "1: dst is a [rows, n] int8 0/1 mask of the kept positions (FACT)"),
        ),
        "k largest of n scores per row; indices in ascending order, ties to the lower index.",
    ),
    InstrClass(
        "IMPACC", "impacc", 12, Queue.SELECT,
        (
            _enum("mode", "colsum|headmag", "what to accumulate"),
            _dtype("src_dtype", "source element type"), *_sram("src", "source tile"),
            _ROWS, _COLS, _u("heads", DIM_BITS, "headmag: number of head slices of cols", 1),
            *_sram("dst", "accumulators (fp32)", stride=False),
        ),
        "Importance accumulation: `s[j] += Σ_i P[i,j]` or `s[h] += Σ |O[:, h]|`.",
    ),
    InstrClass(
        "PREDICT", "predict", 13, Queue.SELECT,
        (
            *_sram("a", "A [M, K] (int8)"), *_sram("b", "B [K, N] or [N, K] (int8)"),
            _flag("tb", "1: B is stored as [N, K]"),
            _dim("m", "rows"), _dim("n", "columns"), _dim("k", "reduction length"),
            *_sram("c", "scores [M, N] (fp32)"),
        ),
        "FACT leading-one approximate product (sign·2^⌊log2|x|⌋ operands); fp32 scores.",
    ),
    InstrClass(
        "CMP", "cmp", 14, Queue.SELECT,
        (
            _enum("reduce", "max|min|sum", "reduction over the tile"),
            _enum("cmp", "lt|le|gt|ge|eq|ne", "comparison with imm"),
            _dtype(), *_sram("src", "tile"), _ROWS, _COLS,
            _f32("imm", "threshold"), _PDST,
        ),
        "`pdst = reduce(tile) cmp imm`.",
    ),
    InstrClass(
        "SETP", "setp", 15, Queue.SELECT,
        (_PDST, _u("value", 1, "value written")),
        "Set a predicate register to an immediate.",
    ),
    InstrClass("NOP", "nop", 16, Queue.SELECT, (), "No operation (carries tokens)."),
    InstrClass(
        "FINISH", "finish", 17, Queue.SELECT, (),
        "End of program, once every queue has drained.",
    ),
    InstrClass(
        "SCATTER", "scatter", 18, Queue.STORE,
        (
            _dtype(), *_sram("src", "source"),
            _u("dst_addr", DADDR_BITS, "table base: DRAM byte address"),
            _u("dst_stride", DSTRIDE_BITS, "bytes per table row"),
            _dim("dst_rows", "table rows: an index must lie in [0, dst_rows)"),
            *_sram("idx", "row indices (int32)", stride=False),
            _dim("rows", "number of rows scattered"), _COLS,
        ),
        "Row scatter SRAM → DRAM (the mirror of `gather`): table row idx[i] is written with "
        "source row i; an index outside [0, dst_rows) stops the run.",
    ),
)  # fmt: skip

BY_NAME: Mapping[str, InstrClass] = {c.name: c for c in ISA}
BY_OPCODE: Mapping[int, InstrClass] = {c.opcode: c for c in ISA}
BY_MNEMONIC: Mapping[str, InstrClass] = {c.mnemonic: c for c in ISA}


def dispatch(namespace: Mapping[str, object], what: str) -> dict[str, Any]:
    """Handlers by class name, found as ``_<mnemonic>`` in a module's namespace (pass ``globals()``).

    Every dispatch table (cost, operand decoding, semantics) is derived from ``ISA`` this way, so no
    module keeps a second list of instruction classes; a class without a handler fails at import.
    """
    missing = [c.mnemonic for c in ISA if f"_{c.mnemonic}" not in namespace]
    if missing:
        raise ImportError(f"{what}: no handler for {', '.join('_' + m for m in missing)}")
    return {c.name: namespace[f"_{c.mnemonic}"] for c in ISA}


assert len(BY_NAME) == len(BY_OPCODE) == len(BY_MNEMONIC) == len(ISA)
assert all(0 < c.opcode < 1 << HEADER[0].bits for c in ISA)
assert all(c.used_bits <= INSTR_BITS for c in ISA)
assert HEADER_BITS == 21


def to_f32(x: float) -> float:
    """Round a Python float to the nearest float32 value (as a Python float)."""
    if not math.isfinite(x):
        return x
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def f32_bits(x: float) -> int:
    """IEEE-754 bits of a float32-representable value."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bits_f32(b: int) -> float:
    """The float32 value of 32 IEEE-754 bits."""
    return struct.unpack("<f", struct.pack("<I", b))[0]


@dataclass(frozen=True)
class Instr:
    """One instruction: its class, every class field (enum-like values as ints), and the header.

    ``comment`` is not encoded and not compared; the emitter uses it to name the source nn op.
    """

    cls: InstrClass
    args: Mapping[str, int | float]
    pred: int = 0
    pneg: bool = False
    wait: int = 0
    signal: int = 0
    comment: str = field(default="", compare=False)

    def __hash__(self) -> int:
        return hash((self.cls.opcode, tuple(self.args.values()), self.pred, self.pneg))

    def __getitem__(self, name: str) -> int | float:
        return self.args[name]

    def __repr__(self) -> str:
        hdr = [f"pred={self.pred}"] if self.pred else []
        hdr += ["pneg=True"] if self.pneg else []
        hdr += [f"wait={self.wait}"] if self.wait else []
        hdr += [f"signal={self.signal}"] if self.signal else []
        body = ", ".join([*(f"{k}={v!r}" for k, v in self.args.items()), *hdr])
        return f"Instr({self.cls.name}: {body})"


def check_header(cls: InstrClass, pred: int, wait: int, signal: int, where: str = "") -> None:
    """Validate the header fields of an instruction of ``cls``; raise IsaError."""
    HEADER[1].check(pred, where)
    HEADER[3].check(wait, where)
    HEADER[4].check(signal, where)
    own = 1 << cls.queue
    prefix = f"{where}: " if where else ""
    for name, mask in (("wait", wait), ("signal", signal)):
        if mask & own:
            raise IsaError(
                f"{prefix}{cls.mnemonic}: '{name}' names its own queue "
                f"'{cls.queue.name.lower()}' (a queue never {name}s on itself)"
            )


def make(
    name: str,
    *,
    pred: int = 0,
    pneg: bool = False,
    wait: int = 0,
    signal: int = 0,
    comment: str = "",
    **args: object,
) -> Instr:
    """Build a validated instruction of class ``name`` (e.g. ``make("SETP", pdst=1, value=1)``).

    Enum-like fields accept names (``mode="int8"``, ``dst_buf="acc"``), enum members or ints;
    fields with a default may be omitted. Raises IsaError naming the field and its allowed range.
    """
    cls = BY_NAME.get(name.upper())
    if cls is None:
        raise IsaError(f"unknown instruction class {name!r}")
    unknown = set(args) - set(cls.field_index)
    if unknown:
        raise IsaError(
            f"{cls.name}: unknown field(s) {', '.join(sorted(unknown))} "
            f"(fields: {', '.join(f.name for f in cls.fields)})"
        )
    values: dict[str, int | float] = {}
    for f in cls.fields:
        if f.name in args:
            values[f.name] = f.check(args[f.name], cls.name)
        elif f.default is not None:
            values[f.name] = f.default
        else:
            raise IsaError(f"{cls.name}: missing required field '{f.name}' ({f.range_text()})")
    wait_i = int(HEADER[3].check(wait, cls.name))
    signal_i = int(HEADER[4].check(signal, cls.name))
    check_header(cls, pred, wait_i, signal_i, cls.name)
    return Instr(cls, values, int(pred), bool(pneg), wait_i, signal_i, comment)


def queue_mask(*queues: Queue) -> int:
    """The wait/signal mask naming ``queues``."""
    m = 0
    for q in queues:
        m |= 1 << q
    return m
