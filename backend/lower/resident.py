"""DRAM regions resident across the runs of a session (a generation's KV cache) and `nn.scatter`.

A `ResidentLayout` names function arguments whose values live in a fixed DRAM region that every
program of one session addresses at the same place: ``base`` (≥ the end of every program's data
section), then one region of ``rows × cols`` fp16 (or fp32: kv-prune's carried scores) per
name, in order, 64-byte aligned. An argument of shape [r, cols] (r ≤ rows; [r] when cols = 1) is
the view of the region's first r rows; the host does
not write it (the interpreter's `ResidentDram` keeps the bytes between runs), and a function
result that is such a view is returned in place. The layout comes from the model's
``meta["resident"]`` (`ResidentLayout.of`), set by the generation forms
(`compiler/generation/forms.py`); docs/generation.md.

`nn.scatter` on a table that is read by nothing else writes the rows in place: LOAD the int32
indices into idx, LOAD the rows, SCATTER (bounded by the table's rows: an index outside stops
the run with an error naming the instruction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xdsl.ir import Operation, SSAValue

from backend.errors import BackendError
from backend.isa import Buf, DType
from backend.lower.context import ACT_BASE, LowerCtx
from backend.lower.dma import load, row_tiles
from backend.lower.env import Env
from backend.lower.registry import rule
from backend.lower.rules_data import copy
from backend.lower.values import DTensor
from backend.program import Symbol
from dialects import nn

ALIGN = 64


@dataclass(frozen=True)
class ResidentLayout:
    """Fixed DRAM regions (rows × cols, fp16 or fp32) starting at ``base``, in the order given."""

    base: int
    regions: tuple[tuple[str, int, int, DType], ...]  # name, rows, cols, element type

    @staticmethod
    def of(meta: Mapping[str, Any]) -> ResidentLayout | None:
        """The layout in a model's ``meta["resident"]`` ({"base": B, "regions": [[name, rows,
        cols] or [name, rows, cols, "f32" | "i8" | "i32"], ...]}; "i8": bytes, e.g.
        progressive-quant's packed int4 K planes; "i32": kv-prune's `positions`), or None."""
        r = meta.get("resident")
        if not r:
            return None
        types = {"f32": DType.FP32, "i8": DType.INT8, "i32": DType.INT32}
        regions = tuple(
            (str(e[0]), int(e[1]), int(e[2]), types[e[3]] if e[3:] else DType.FP16)
            for e in (list(x) for x in r["regions"])
        )
        return ResidentLayout(int(r["base"]), regions)

    def spans(self) -> dict[str, tuple[int, int, int, DType]]:
        """name → (address, rows, cols, element type)."""
        out: dict[str, tuple[int, int, int, DType]] = {}
        addr = self.base
        for name, rows, cols, dt in self.regions:
            out[name] = (addr, rows, cols, dt)
            addr += (dt.nbytes(rows * cols) + ALIGN - 1) // ALIGN * ALIGN
        return out

    @property
    def end(self) -> int:
        spans = self.spans()
        if not spans:
            return self.base
        addr, rows, cols, dt = spans[self.regions[-1][0]]
        return (addr + dt.nbytes(rows * cols) + ALIGN - 1) // ALIGN * ALIGN


def resident_arg(ctx: LowerCtx, name: str, shape: tuple[int, ...], dt: DType) -> DTensor | None:
    """The view of resident region ``name`` for an argument of ``shape`` (None: not resident);
    the region's symbol (kind ``resident``, the whole region) is recorded."""
    layout = ctx.resident
    if layout is None:
        return None
    span = layout.spans().get(name)
    if span is None:
        return None
    addr, rows, cols, rdt = span
    view = (*shape, 1) if len(shape) == 1 and cols == 1 else shape
    fits = (dt is DType.FP16 and rdt is not DType.INT8) or (dt is DType.INT32 and rdt is dt)
    if not fits or len(view) != 2 or view[1] != cols or not 1 <= view[0] <= rows:
        raise BackendError(
            f"resident argument '{name}': shape {list(shape)} ({dt.name.lower()}) does not fit its "
            f"region of {rows} x {cols} {rdt.name.lower()} rows"
        )
    ctx.resident_spans.append((addr, addr + rdt.nbytes(rows * cols)))
    ctx.symbols[name] = Symbol(name, addr, (rows, cols), rdt, "resident")  # the whole region
    return DTensor.contiguous(addr, shape, rdt)


def resident_planes(
    ctx: LowerCtx, name: str, heads: int, slots: int, nbytes: int
) -> DTensor | None:
    """The view [heads, slots, nbytes] (int8 bytes: packed int4 K planes, head-major) of byte
    region ``name``: head h's rows start at h · rows / heads of the region (None: not resident)."""
    layout = ctx.resident
    span = None if layout is None else layout.spans().get(name)
    if span is None:
        return None
    addr, rows, cols, rdt = span
    per_head = rows // heads
    if rdt is not DType.INT8 or cols != nbytes or rows % heads or not 1 <= slots <= per_head:
        raise BackendError(
            f"resident K planes '{name}': [{heads}, {slots}, {nbytes} B] do not fit its region of "
            f"{rows} x {cols} {rdt.name.lower()} ({heads} heads of {per_head} rows)"
        )
    ctx.resident_spans.append((addr, addr + rows * cols))
    ctx.symbols[name] = Symbol(name, addr, (rows, cols), rdt, "resident")
    return DTensor(addr, (heads, slots, nbytes), (per_head * nbytes, nbytes, 1), DType.INT8)


def in_resident(ctx: LowerCtx, t: DTensor) -> bool:
    """Whether ``t`` starts inside a resident region (it is returned in place, not copied)."""
    return any(lo <= t.addr < hi for lo, hi in ctx.resident_spans)


@rule(nn.ScatterOp)
def lower_scatter(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """In place when the table is read by nothing else (a resident cache, an activation);
    otherwise the table is copied first. Rows tiled through vec, indices through idx."""
    assert isinstance(op, nn.ScatterOp)
    table = env.tensor(op.table).as2d()
    if not _in_place(ctx, op.table, table):
        dst = ctx.activation(table.shape, table.dtype)
        copy(ctx, table, dst, op.name)
        table = dst
    rows = env.tensor(op.rows).as2d()
    ids = env.tensor(op.indices)
    if ids.dtype is not DType.INT32 or not ids.is_contiguous:
        raise BackendError(f"{op.name}: indices must be contiguous int32")
    if rows.strides[1] != rows.esize:
        raise BackendError(f"{op.name}: rows with an element stride are not supported")
    n, cols = rows.shape
    es = rows.esize
    ct = min(cols, max(2, ctx.cap(Buf.VEC) // es))
    rt = min(row_tiles(n, es * ct, ctx.cap(Buf.VEC), op.name, ctx), ctx.cap(Buf.IDX) // 4)
    idx2 = DTensor.contiguous(ids.addr, (1, n), DType.INT32)
    for r0 in range(0, n, rt):
        rl = min(rt, n - r0)
        i_off = ctx.take(Buf.IDX, 4 * rt)
        load(ctx, idx2.block(0, 1, r0, rl), Buf.IDX, i_off)
        for c0 in range(0, cols, ct):
            cl = min(ct, cols - c0)
            v_off = ctx.take(Buf.VEC, es * rt * ct)
            load(ctx, rows.block(r0, rl, c0, cl), Buf.VEC, v_off)
            ctx.emit(
                "SCATTER", dtype=table.dtype, src_buf=Buf.VEC, src_off=v_off, src_stride=cl,
                dst_addr=table.at(0, c0), dst_stride=table.strides[0], dst_rows=table.shape[0],
                idx_buf=Buf.IDX, idx_off=i_off, rows=rl, cols=cl,
            )  # fmt: skip
    return table


def _in_place(ctx: LowerCtx, value: SSAValue, t: DTensor) -> bool:
    """The scatter may write the table's own bytes: nothing else reads the value, and it is not a
    constant of the data section."""
    if len(list(value.uses)) != 1 or t.strides[1] != t.esize:
        return False
    return t.addr >= ACT_BASE or in_resident(ctx, t)  # activations and inputs: tagged addresses
