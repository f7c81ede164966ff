"""Operand geometry: which bytes each instruction reads and writes.

`decode(instr, machine)` turns an instruction's fields into named `Tile`s (SRAM buffer or DRAM
byte ranges, with dtype and write flag). The interpreter uses them three ways: bounds checks,
race checks between queues, and as the operands the semantic handlers read and write. Field
combinations the machine cannot execute raise `SimError` here, in timing-only mode too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from backend.errors import SimError
from backend.isa import Buf, DType, Instr, dispatch

if TYPE_CHECKING:
    from backend.interpreter.state import Machine

DRAM = 5  # Tile.space of DRAM ranges (SRAM spaces are Buf ids 0..4)
UNBOUNDED_ROWS = 1 << 31  # rows of a data-dependent source range of unknown extent
OVERLAP_ROW_LIMIT = 1 << 16  # exact row-by-row overlap test up to this many rows
SPACE_NAMES = (*(b.asm_name for b in Buf), "dram")
FLOAT_DTYPES = (DType.FP16, DType.FP32)


class Tile(NamedTuple):
    """rows × cols ``dtype`` elements at byte ``off`` of ``space``, rows ``stride`` bytes apart."""

    space: int
    off: int
    rows: int
    cols: int
    dtype: DType
    stride: int
    width: int  # bytes per row
    write: bool

    @property
    def empty(self) -> bool:
        """No bytes touched."""
        return self.rows <= 0 or self.width <= 0

    @property
    def end(self) -> int:
        """One past the last byte touched."""
        return self.off + (self.rows - 1) * self.stride + self.width

    def describe(self) -> str:
        """Short text for error messages."""
        return f"{SPACE_NAMES[self.space]}[{self.off}:{self.end}]"


Ops = dict[str, Tile]


def _fail(msg: str) -> SimError:
    return SimError(msg)


def sram_tile(
    a: Mapping[str, int | float],
    prefix: str,
    rows: int,
    cols: int,
    dt: DType,
    write: bool = False,
) -> Tile:
    """The tile named by ``<prefix>_buf/_off/_stride`` (stride in elements)."""
    stride_el = int(a.get(prefix + "_stride", cols))
    if dt is DType.INT4 and (cols % 2 or stride_el % 2):
        raise _fail(f"{prefix}: packed int4 needs even cols and stride (cols={cols}, "
                    f"stride={stride_el})")  # fmt: skip
    if write and rows > 1 and stride_el < cols:
        raise _fail(f"{prefix}: written tile has stride {stride_el} < cols {cols}")
    return Tile(
        int(a[prefix + "_buf"]),
        int(a[prefix + "_off"]),
        rows,
        cols,
        dt,
        stride_el * dt.bits // 8,
        dt.nbytes(cols),
        write,
    )


def flat_tile(space: int, off: int, nbytes: int, write: bool = False) -> Tile:
    """A contiguous byte range (one row of uint8)."""
    return Tile(space, off, 1, nbytes, DType.INT8, nbytes, nbytes, write)


def dram_tile(addr: int, stride: int, rows: int, cols: int, dt: DType, write: bool) -> Tile:
    """rows × cols elements at DRAM ``addr`` with a byte stride."""
    if dt is DType.INT4 and cols % 2:
        raise _fail(f"packed int4 DRAM rows need even cols (cols={cols})")
    return Tile(DRAM, addr, rows, cols, dt, stride, dt.nbytes(cols), write)


def gathered_rows(table: Tile, idx: Tile, n: int, m: Machine | None, cons: bool) -> Tile:
    """The rows of ``table`` (row 0 given) that ``n`` int32 indices in ``idx`` select.

    With data (``m``): the span from the smallest to the largest index. Without: every row from
    the table start on (``cons``, for dependence analysis) or none (timing-only checks).
    """
    if n <= 0:
        return table._replace(rows=0)
    if m is not None:
        m.check(idx)
        ix = m.flat(idx).view("<i4")
        lo, hi = int(ix.min()), int(ix.max())
        if lo < 0:
            raise _fail(f"gather index {lo} is negative")
        return table._replace(off=table.off + lo * table.stride, rows=hi - lo + 1)
    return table._replace(rows=UNBOUNDED_ROWS if cons else 0)


def _dt(v: int | float) -> DType:
    return DType(int(v))


def _choice(instr: Instr, name: str) -> str:
    return instr.cls.field(name).choices[int(instr.args[name])]


# ---- per class ----------------------------------------------------------------------------------


def _load(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["dtype"])
    return {
        "src": dram_tile(int(a["src_addr"]), int(a["src_stride"]), r, c, dt, False),
        "dst": sram_tile(a, "dst", r, c, dt, True),
    }


def _loadbp(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c = int(a["rows"]), int(a["cols"])
    return {
        "src": dram_tile(int(a["src_addr"]), int(a["src_stride"]), r, c, DType.INT4, False),
        "dst": sram_tile(a, "dst", r, c, DType.INT8, True),
    }


def _indexed(i: Instr, table: str, write: bool) -> tuple[int, int, DType, Tile, Tile]:
    """rows, cols, dtype, the int32 index tile and row 0 of the DRAM table ``<table>_addr`` of a
    GATHER (read) or SCATTER (``write``)."""
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["dtype"])
    if dt is DType.INT4 and c % 2:
        raise _fail(f"packed int4 rows need even cols (cols={c})")
    idx = flat_tile(int(a["idx_buf"]), int(a["idx_off"]), 4 * r)
    row0 = dram_tile(int(a[f"{table}_addr"]), int(a[f"{table}_stride"]), 1, c, dt, write)
    return r, c, dt, idx, row0


def _gather(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt, idx, table = _indexed(i, "src", False)
    return {
        "idx": idx,
        "src": gathered_rows(table, idx, r, m, cons),
        "dst": sram_tile(a, "dst", r, c, dt, True),
    }


def _scatter(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt, idx, table = _indexed(i, "dst", True)
    if m is not None and r > 0:
        m.check(idx)
        ix = m.flat(idx).view("<i4")
        lo, hi, n = int(ix.min()), int(ix.max()), int(a["dst_rows"])
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise _fail(f"scatter index {bad} is outside the table's rows [0, {n})")
    if m is None and cons and r > 0:  # without data: every row of the bounded table
        dst = table._replace(rows=int(a["dst_rows"]))
    else:
        dst = gathered_rows(table, idx, r, m, cons)
    return {"src": sram_tile(a, "src", r, c, dt), "idx": idx, "dst": dst}


def _store(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["dtype"])
    return {
        "src": sram_tile(a, "src", r, c, dt),
        "dst": dram_tile(int(a["dst_addr"]), int(a["dst_stride"]), r, c, dt, True),
    }


def _matmul(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    mm, n, k = int(a["m"]), int(a["n"]), int(a["k"])
    mode = _choice(i, "mode")
    tb = bool(a["tb"])
    half = mode in ("fp16", "sp24h")
    a_dt = DType.FP16 if half else DType.INT8
    c_dt = DType.FP32 if half else DType.INT32
    ops: Ops = {"a": sram_tile(a, "a", mm, k, a_dt)}
    if mode in ("sp24", "sp24h"):
        if k % 4:
            raise _fail(f"matmul {mode} needs k divisible by 4 (k={k})")
        kb = k // 2
        ops["b"] = sram_tile(a, "b", n, kb, a_dt) if tb else sram_tile(a, "b", kb, n, a_dt)
        ops["meta"] = flat_tile(
            int(a["meta_buf"]), int(a["meta_off"]), DType.INT4.nbytes(k // 4 * n)
        )
    else:
        b_dt = {"fp16": DType.FP16, "int8": DType.INT8, "int4w": DType.INT4}[mode]
        ops["b"] = sram_tile(a, "b", n, k, b_dt) if tb else sram_tile(a, "b", k, n, b_dt)
    if a["mask"]:
        if mode != "int8":
            raise _fail(f"matmul precision mask needs mode int8 (mode={mode})")
        ops["mask"] = flat_tile(int(a["mask_buf"]), int(a["mask_off"]), mm)
    ops["c"] = sram_tile(a, "c", mm, n, c_dt, True)
    return ops  # fmt: skip


_UNARY = frozenset({"exp", "gelu", "gelu_tanh", "tanh", "relu", "copy"})
_INT_OK = frozenset({"add", "sub", "mul", "max", "min", "relu", "copy"})


def _vec(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["dtype"])
    op = _choice(i, "op")
    if dt is DType.INT4:
        raise _fail("vec does not operate on packed int4 (unpack with move first)")
    if dt not in FLOAT_DTYPES and op not in _INT_OK:
        raise _fail(f"vec {op} needs a float dtype (dtype={dt.asm_name})")
    ops: Ops = {"a": sram_tile(a, "a", r, c, dt)}
    bc = _choice(i, "bcast")
    if op not in _UNARY:
        if bc == "none":
            ops["b"] = sram_tile(a, "b", r, c, dt)
        elif bc == "row":
            ops["b"] = sram_tile(a, "b", 1, c, dt)
        elif bc == "col":
            ops["b"] = sram_tile(a, "b", r, 1, dt)
    ops["dst"] = sram_tile(a, "dst", r, c, dt, True)
    return ops


def _requant(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c = int(a["rows"]), int(a["cols"])
    out = DType.INT8 if _choice(i, "out_dtype") == "int8" else DType.INT4
    ops: Ops = {"src": sram_tile(a, "src", r, c, DType.INT32)}
    if a["per_col"]:
        ops["mult"] = flat_tile(int(a["mult_buf"]), int(a["mult_off"]), 4 * c)
    ops["dst"] = sram_tile(a, "dst", r, c, out, True)
    return ops


def _row(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["dtype"])
    op = _choice(i, "op")
    if dt is DType.INT4 or (op in ("softmax", "layernorm") and dt not in FLOAT_DTYPES):
        raise _fail(f"row {op} does not support dtype {dt.asm_name}")
    if r > 0 and c == 0:
        raise _fail(f"row {op} over rows of zero columns")
    ops: Ops = {"src": sram_tile(a, "src", r, c, dt)}
    if op == "layernorm":
        ops["g"] = flat_tile(int(a["g_buf"]), int(a["g_off"]), 8 * c)
    wide = op in ("softmax", "layernorm")
    ops["dst"] = sram_tile(a, "dst", r, c if wide else 1, dt, True)
    return ops


def _move(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c = int(a["rows"]), int(a["cols"])
    dst = (c, r) if a["transpose"] else (r, c)
    ops: Ops = {"src": sram_tile(a, "src", r, c, _dt(a["src_dtype"]))}
    if a["per_col"]:
        if _dt(a["src_dtype"]) in FLOAT_DTYPES or _dt(a["dst_dtype"]) not in FLOAT_DTYPES:
            raise _fail("move per_col scales convert int → float only")
        ops["cs"] = flat_tile(int(a["cs_buf"]), int(a["cs_off"]), 4 * c)
    ops["dst"] = sram_tile(a, "dst", dst[0], dst[1], _dt(a["dst_dtype"]), True)
    return ops


def _vgather(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["dtype"])
    idx = flat_tile(int(a["idx_buf"]), int(a["idx_off"]), 4 * r)
    return {
        "idx": idx,
        "src": gathered_rows(sram_tile(a, "src", 1, c, dt), idx, r, m, cons),
        "dst": sram_tile(a, "dst", r, c, dt, True),
    }


def _topk(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, n, k = int(a["rows"]), int(a["n"]), int(a["k"])
    if k > n:
        raise _fail(f"topk k={k} exceeds n={n}")
    return {
        "src": sram_tile(a, "src", r, n, DType.FP32),
        "dst": flat_tile(
            int(a["dst_buf"]), int(a["dst_off"]), r * n if a["mask"] else 4 * r * k, True
        ),
    }


def _impacc(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c, dt = int(a["rows"]), int(a["cols"]), _dt(a["src_dtype"])
    heads = int(a["heads"])
    colsum = _choice(i, "mode") == "colsum"
    if not colsum and (heads <= 0 or c % heads):
        raise _fail(f"impacc headmag needs cols ({c}) divisible by heads ({heads})")
    outs = c if colsum else heads
    return {
        "src": sram_tile(a, "src", r, c, dt),
        "dst": flat_tile(int(a["dst_buf"]), int(a["dst_off"]), 4 * outs, True),
    }


def _predict(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    mm, n, k = int(a["m"]), int(a["n"]), int(a["k"])
    b = sram_tile(a, "b", n, k, DType.INT8) if a["tb"] else sram_tile(a, "b", k, n, DType.INT8)
    return {
        "a": sram_tile(a, "a", mm, k, DType.INT8),
        "b": b,
        "c": sram_tile(a, "c", mm, n, DType.FP32, True),
    }


def _cmp(i: Instr, m: Machine | None, cons: bool) -> Ops:
    a = i.args
    r, c = int(a["rows"]), int(a["cols"])
    if r <= 0 or c <= 0:
        raise _fail("cmp needs a non-empty tile")
    return {"src": sram_tile(a, "src", r, c, _dt(a["dtype"]))}


def _none(i: Instr, m: Machine | None, cons: bool) -> Ops:
    return {}


_setp = _nop = _finish = _none  # control instructions touch no memory
DECODERS = dispatch(globals(), "operand decoding")


def decode(instr: Instr, machine: Machine | None = None, *, conservative: bool = True) -> Ops:
    """Operand tiles of ``instr``.

    Gathers (GATHER's DRAM table rows, VGATHER's source rows) depend on index data: with
    ``machine`` they are the exact span of the indices; without, every row from the table start
    (``conservative``, the default: safe for dependence analysis) or none (``conservative=False``,
    as the interpreter's timing-only mode uses).
    """
    return DECODERS[instr.cls.name](instr, machine, conservative)


def tiles_overlap(t1: Tile, t2: Tile) -> bool:
    """Whether two strided byte ranges in the same space share a byte (exact)."""
    if t1.space != t2.space or t1.empty or t2.empty:
        return False
    if t1.off >= t2.end or t2.off >= t1.end:
        return False
    s = t1.stride
    if s == t2.stride and s > 0 and min(t1.rows, t2.rows) <= OVERLAP_ROW_LIMIT:
        # same stride: row r of t1 meets row r + j of t2 iff -w2 < d + j·s < w1; solve for j
        d = t2.off - t1.off
        j_lo = max((-t2.width - d) // s + 1, 1 - t1.rows)
        j_hi = min(-((d - t1.width) // s) - 1, t2.rows - 1)
        return j_lo <= j_hi
    if t1.rows > t2.rows:
        t1, t2 = t2, t1
    if t1.rows > OVERLAP_ROW_LIMIT:  # both huge: the bounding ranges overlap, say yes
        return True
    o2, s2, r2, w2 = t2.off, t2.stride, t2.rows, t2.width
    for r in range(t1.rows):
        lo = t1.off + r * t1.stride
        hi = lo + t1.width
        if s2 <= 0:
            if o2 < hi and o2 + w2 > lo:
                return True
            continue
        j_lo = max(0, (lo - w2 - o2) // s2 + 1)
        j_hi = min(r2 - 1, -((o2 - hi) // s2) - 1)
        if j_lo <= j_hi:
            return True
    return False
