"""Per-instruction execution plan: everything about an instruction that does not need data.

Decoding fields into operand tiles, static bounds checks and the cost-model lookup are done once
per (program, config) and cached on the program object, so repeated runs (evaluation over a
data set, benchmarks) pay only for dispatch and numerics. A static error (bad field, out of
bounds) is kept and raised only if the instruction is actually executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend.config import Config
from backend.cost import InstrCost, cost
from backend.errors import SimError
from backend.interpreter.operands import Ops, Tile, decode
from backend.interpreter.report import CostTable, tag_of
from backend.interpreter.semantics import HANDLERS
from backend.interpreter.state import Machine
from backend.isa import Instr, Queue
from backend.program import HOST_WRITTEN, Program

NQ = len(Queue)
BITS = [tuple(q for q in range(NQ) if mask >> q & 1) for mask in range(1 << NQ)]
DYNAMIC = frozenset({"GATHER", "VGATHER", "SCATTER"})  # operand ranges depend on data
_CACHE_ATTR = "_wisp_interp_plan"


@dataclass(slots=True)
class Step:
    """One instruction, pre-digested for the event loop."""

    ins: Instr
    q: int
    waits: tuple[int, ...]
    signals: tuple[int, ...]
    name: str
    handler: Callable[[Machine, Instr, Ops], int]
    ops: Ops | None  # None: decode at issue (data-dependent ranges)
    error: SimError | None  # static error, raised if the instruction executes
    cost: InstrCost | None
    tag: str | None
    noop: bool  # writes only empty tiles: semantics have no effect
    fin: bool  # FINISH
    tiles: list[Tile]  # ops' tiles (static ops; empty when ops is None)
    written: list[Tile]  # the tiles it writes
    boxes: list[Box]  # byte bounds of ``tiles`` for the race pre-check


Box = tuple[int, int, int, bool]  # space, first byte, one past the last (= first if empty), write


def boxes_of(tiles: list[Tile]) -> list[Box]:
    """Byte bounds of each tile: two tiles can only share a byte if their boxes intersect."""
    return [
        (sp, off, off if rows <= 0 or width <= 0 else off + (rows - 1) * stride + width, w)
        for sp, off, rows, _, _, stride, width, w in tiles
    ]


def is_noop(ops: Ops) -> bool:
    """True when the instruction writes something, but only empty tiles."""
    writes = [t for t in ops.values() if t.write]
    return bool(writes) and all(t.empty for t in writes)


_ENUM_KINDS = ("buf", "dtype", "enum", "pred")


def check_fields(ins: Instr) -> None:
    """Enum-like fields and the header must be in range (instructions built without `make`)."""
    a = ins.args
    for f in ins.cls.fields:
        if f.kind in _ENUM_KINDS:
            v = a.get(f.name)
            if not isinstance(v, int) or not f.lo <= v <= f.hi:
                raise SimError(f"invalid field '{f.name}' = {v!r} ({f.range_text()})")
    if not 0 <= ins.pred < 16 or not 0 <= ins.wait < 32 or not 0 <= ins.signal < 32:
        raise SimError(f"invalid header (pred={ins.pred}, wait={ins.wait}, signal={ins.signal})")


def check_dataflow(ins: Instr, cfg: Config) -> None:
    """A MATMUL's ``flow`` must be one the config's array supports (``matrix.dataflows``)."""
    if ins.cls.name == "MATMUL":
        flow = ins.cls.field("flow").choices[int(ins.args["flow"])]
        if flow not in cfg.matrix.dataflows:
            raise SimError(
                f"dataflow '{flow}' is not supported by config '{cfg.name}' "
                f"(matrix.dataflows: {', '.join(cfg.matrix.dataflows)})"
            )


def _step(ins: Instr, m: Machine, cfg: Config) -> Step:
    name = ins.cls.name
    ops: Ops | None = None
    error: SimError | None = None
    c: InstrCost | None = None
    check_fields(ins)
    try:
        check_dataflow(ins, cfg)
        c = cost(ins, cfg)
        if name not in DYNAMIC:
            ops = decode(ins, None, conservative=False)
            for t in ops.values():
                m.check(t)
    except SimError as e:
        error, ops = e, None
    tiles = list(ops.values()) if ops is not None else []
    return Step(
        ins,
        int(ins.cls.queue),
        BITS[ins.wait],
        BITS[ins.signal],
        name,
        HANDLERS[name],
        ops,
        error,
        c,
        tag_of(ins.comment) if ins.comment else None,
        ops is not None and is_noop(ops),
        name == "FINISH",
        tiles,
        [t for t in tiles if t.write],
        boxes_of(tiles),
    )


def plan(program: Program, m: Machine, cfg: Config) -> list[Step]:
    """The steps of ``program`` for ``cfg`` (cached on the program while its instrs are unchanged)."""
    return plan_with_costs(program, m, cfg)[0]


def plan_with_costs(program: Program, m: Machine, cfg: Config) -> tuple[list[Step], CostTable]:
    """`plan` and the steps' static costs as a `CostTable` (cached together)."""
    key = (cfg.canonical, m.sizes)
    ids = [id(i) for i in program.instrs]
    cached = getattr(program, _CACHE_ATTR, None)
    if cached is not None and cached[0] == key and cached[1] == ids:
        return cached[2], cached[3]
    steps: list[Step] = []
    for idx, i in enumerate(program.instrs):
        try:
            steps.append(_step(i, m, cfg))
        except SimError as e:
            raise SimError(f"{i.cls.mnemonic}: {e}", idx) from None
    table = CostTable.build([s.cost for s in steps], [s.tag for s in steps], dram_regions(program))
    try:
        setattr(program, _CACHE_ATTR, (key, ids, steps, table))
    except AttributeError:  # pragma: no cover - a slotted Program subclass: no caching
        pass
    return steps, table


def dram_regions(program: Program) -> list[int]:
    """Per instruction, the index into report.DRAM_REGIONS of its DRAM bytes, by its DRAM start
    address (`src_addr` or `dst_addr`): 0 in the data section, 1 in an input symbol's region or
    a resident one (a KV cache kept across runs), 2 otherwise (and for instructions without a DRAM address)."""
    data_end = len(program.data)
    spans = sorted(
        (s.addr, s.addr + s.nbytes) for s in program.symbols.values() if s.kind in HOST_WRITTEN
    )
    out: list[int] = []
    for i in program.instrs:
        a = i.args.get("src_addr", i.args.get("dst_addr"))
        if not isinstance(a, int):
            out.append(2)
        elif a < data_end:
            out.append(0)
        else:
            out.append(1 if any(lo <= a < hi for lo, hi in spans) else 2)
    return out
