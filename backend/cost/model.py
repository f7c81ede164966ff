"""Per-instruction accounting: `cost(instr, config)` → `InstrCost`.

Cycle formulas come from `backend.cost.formulas`; this module counts bytes, MACs and ops per
instruction class and prices them with the config's energy table. Dispatch is a dict built from
the ISA table, checked complete at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from backend.config import Config
from backend.cost import formulas as F
from backend.isa import DType, Instr, dispatch

PRECISIONS = ("int4", "int8", "fp16", "fp32")
ENERGY_COMPONENTS = ("mac", "sram", "dram", "vector", "select")


@dataclass
class InstrCost:
    """Cost of one instruction. Bytes are bytes; energy in pJ by component.

    ``dram_transfer`` is the part of ``cycles`` during which the shared DRAM channel is busy.
    ``macs_useful``: multiplications the math needs (2:4 zeros excluded); ``macs_issued``: PE
    slots occupied during the reduction streams (includes padding of partial folds).
    """

    cycles: int = 1
    dram_read: int = 0
    dram_write: int = 0
    sram_read: int = 0
    sram_write: int = 0
    macs_useful: dict[str, int] = field(default_factory=dict)
    macs_issued: dict[str, int] = field(default_factory=dict)
    vector_ops: int = 0
    select_ops: int = 0
    dram_transfer: int = 0
    energy: dict[str, float] = field(default_factory=dict)

    @property
    def energy_total(self) -> float:
        """Total energy in pJ."""
        return sum(self.energy.values())


def skipped_cost() -> InstrCost:
    """A predicated-off instruction: one issue cycle, nothing else."""
    return InstrCost(cycles=1)


def _price(c: InstrCost, config: Config) -> InstrCost:
    e = config.energy
    mac = sum(n * e.mac(p) for p, n in c.macs_useful.items())
    c.energy = {
        "mac": mac,
        "sram": (c.sram_read + c.sram_write) * e.sram_byte,
        "dram": (c.dram_read + c.dram_write) * e.dram_byte,
        "vector": c.vector_ops * e.vector_op,
        "select": c.select_ops * e.select_op,
    }
    return c


def _ch(instr: Instr, name: str) -> str:
    return instr.cls.field(name).choices[int(instr.args[name])]


def _dt(v: int | float) -> DType:
    return DType(int(v))


# ---- per class ----------------------------------------------------------------------------------


def _load(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    row_bytes = _dt(a["dtype"]).nbytes(cols)
    dram = F.dma_bytes(rows, row_bytes, int(a["src_stride"]), cfg)
    return InstrCost(
        cycles=F.dma_cycles(dram, cfg),
        dram_read=dram,
        sram_write=rows * row_bytes,
        dram_transfer=F.dma_transfer_cycles(dram, cfg),
    )


def _loadbp(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    dram = F.dma_bytes(rows, DType.INT4.nbytes(cols), int(a["src_stride"]), cfg)
    lsb = _ch(i, "plane") == "lsb"
    return InstrCost(
        cycles=F.dma_cycles(dram, cfg),
        dram_read=dram,
        sram_read=rows * cols if lsb else 0,
        sram_write=rows * cols,
        dram_transfer=F.dma_transfer_cycles(dram, cfg),
    )


def _indexed_rows(i: Instr, cfg: Config, read: bool) -> InstrCost:
    """GATHER (``read``: DRAM → SRAM) or SCATTER (SRAM → DRAM): one DMA row per int32 index."""
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    row_bytes = _dt(a["dtype"]).nbytes(cols)
    dram = F.dma_bytes(rows, row_bytes, -1, cfg)  # rows are scattered: never coalesced
    return InstrCost(
        cycles=F.dma_cycles(dram, cfg),
        dram_read=dram if read else 0,
        dram_write=0 if read else dram,
        sram_read=4 * rows + (0 if read else rows * row_bytes),
        sram_write=rows * row_bytes if read else 0,
        dram_transfer=F.dma_transfer_cycles(dram, cfg),
    )


def _gather(i: Instr, cfg: Config, _m: int) -> InstrCost:
    return _indexed_rows(i, cfg, read=True)


def _scatter(i: Instr, cfg: Config, _m: int) -> InstrCost:
    return _indexed_rows(i, cfg, read=False)


def _store(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    row_bytes = _dt(a["dtype"]).nbytes(cols)
    dram = F.dma_bytes(rows, row_bytes, int(a["dst_stride"]), cfg)
    return InstrCost(
        cycles=F.dma_cycles(dram, cfg),
        dram_write=dram,
        sram_read=rows * row_bytes,
        dram_transfer=F.dma_transfer_cycles(dram, cfg),
    )


_MODE_PRECISION = {"fp16": "fp16", "int8": "int8", "int4w": "int4", "sp24": "int8", "sp24h": "fp16"}


def _matmul(i: Instr, cfg: Config, masked_rows: int) -> InstrCost:
    a = i.args
    m, n, k = int(a["m"]), int(a["n"]), int(a["k"])
    mode = _ch(i, "mode")
    flow = _ch(i, "flow")
    masked_rows = min(masked_rows, m) if a["mask"] else 0
    mx = cfg.matrix
    useful: dict[str, int] = {}
    issued: dict[str, int] = {}
    k_useful = (k + 1) // 2 if mode in F.SPARSE_MODES else k
    k_folds = 0  # reduction folds (ws, is): each writes partial sums of C
    for rows, masked in ((m - masked_rows, False), (masked_rows, True)):
        if rows <= 0:
            continue
        prec = "int4" if masked else _MODE_PRECISION[mode]
        sr, sc, t = F.dataflow_dims(rows, n, F.matmul_kterm(k, mode, cfg, masked), flow)
        slots = F.matmul_folds(sr, sc, cfg) * mx.rows * mx.cols * t
        slots = round(slots * F.matmul_rate(mode, cfg, masked))
        useful[prec] = useful.get(prec, 0) + rows * n * k_useful
        issued[prec] = issued.get(prec, 0) + slots
        k_folds = max(k_folds, -(-sr // mx.rows))
    a_bytes = m * k * (2 if mode in ("fp16", "sp24h") else 1)
    if mode == "fp16":
        b_bytes = 2 * k * n
    elif mode == "int4w":
        b_bytes = DType.INT4.nbytes(k * n)
    elif mode in F.SPARSE_MODES:  # values (int8 or fp16) + nibble meta
        b_bytes = k_useful * n * (2 if mode == "sp24h" else 1) + DType.INT4.nbytes(
            ((k + 3) // 4) * n
        )
    else:
        b_bytes = k * n
    c_bytes = 4 * m * n
    col_tiles = -(-n // mx.cols)
    if flow == "os":  # A re-streamed per column tile, B per row tile; C written once
        sram_read = col_tiles * a_bytes + -(-m // mx.rows) * b_bytes
        c_reads, c_writes = int(a["acc"]), 1
    else:  # the stationary operand read once, the streamed one per column fold; C per K fold
        streamed = col_tiles * a_bytes if flow == "ws" else -(-m // mx.cols) * b_bytes
        sram_read = streamed + (b_bytes if flow == "ws" else a_bytes)
        c_reads, c_writes = k_folds - 1 + int(a["acc"]), k_folds
    sram_read += c_reads * c_bytes + (m if a["mask"] else 0)
    return InstrCost(
        cycles=F.matmul_cycles(m, n, k, mode, cfg, masked_rows, flow),
        sram_read=sram_read,
        sram_write=c_writes * c_bytes,
        macs_useful=useful,
        macs_issued=issued,
    )


def _vector(elements: int, passes: int, cfg: Config, rd: int, wr: int) -> InstrCost:
    return InstrCost(
        cycles=F.vector_cycles(elements, passes, cfg),
        sram_read=rd,
        sram_write=wr,
        vector_ops=elements * passes,
    )


_UNARY = frozenset({"exp", "gelu", "gelu_tanh", "tanh", "relu", "copy"})


def _vec(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    op = _ch(i, "op")
    dt = _dt(a["dtype"])
    tile = rows * dt.nbytes(cols)
    b = 0
    if op not in _UNARY:
        b = {"none": tile, "row": dt.nbytes(cols), "col": rows * dt.nbytes(1), "scalar": 0}[
            _ch(i, "bcast")
        ]
    return _vector(rows * cols, F.vector_passes(op), cfg, tile + b, tile)


def _requant(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    out = DType.INT8 if _ch(i, "out_dtype") == "int8" else DType.INT4
    rd = 4 * rows * cols + (4 * cols if a["per_col"] else 0)
    return _vector(rows * cols, F.vector_passes("requant"), cfg, rd, rows * out.nbytes(cols))


def _row(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    op = _ch(i, "op")
    dt = _dt(a["dtype"])
    rd = rows * dt.nbytes(cols) + (8 * cols if op == "layernorm" else 0)
    wr = rows * dt.nbytes(cols) if op in ("softmax", "layernorm") else rows * dt.nbytes(1)
    return _vector(rows * cols, F.vector_passes(op), cfg, rd, wr)


def _move(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    rd = rows * _dt(a["src_dtype"]).nbytes(cols)
    wr = rows * _dt(a["dst_dtype"]).nbytes(cols)
    return _vector(rows * cols, F.vector_passes("move"), cfg, rd, wr)


def _vgather(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    tile = rows * _dt(a["dtype"]).nbytes(cols)
    return _vector(rows * cols, F.vector_passes("vgather"), cfg, tile + 4 * rows, tile)


def _select(cycles: int, ops: int, rd: int, wr: int) -> InstrCost:
    return InstrCost(cycles=cycles, sram_read=rd, sram_write=wr, select_ops=ops)


def _topk(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, n, k = int(a["rows"]), int(a["n"]), int(a["k"])
    ops = F.topk_compares(rows, n, k, cfg)
    wr = rows * n if a["mask"] else 4 * rows * k
    return _select(F.topk_cycles(rows, n, k, cfg), ops, 4 * rows * n, wr)


def _impacc(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    outs = cols if _ch(i, "mode") == "colsum" else int(a["heads"])
    ops = rows * cols
    rd = rows * _dt(a["src_dtype"]).nbytes(cols) + 4 * outs
    return _select(F.select_cycles(ops, cfg.select.lanes), ops, rd, 4 * outs)


def _predict(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    m, n, k = int(a["m"]), int(a["n"]), int(a["k"])
    ops = m * n * k
    return _select(F.select_cycles(ops, cfg.select.predict_lanes), ops, m * k + n * k, 4 * m * n)


def _cmp(i: Instr, cfg: Config, _m: int) -> InstrCost:
    a = i.args
    rows, cols = int(a["rows"]), int(a["cols"])
    ops = rows * cols
    rd = rows * _dt(a["dtype"]).nbytes(cols)
    return _select(F.select_cycles(ops, cfg.select.lanes) + 1, ops + 1, rd, 0)


def _control(i: Instr, cfg: Config, _m: int) -> InstrCost:
    return InstrCost(cycles=1)


_setp = _nop = _finish = _control  # control instructions cost one issue cycle
COST_HANDLERS = dispatch(globals(), "cost model")


def with_best_dataflow(ins: Instr, config: Config) -> Instr:
    """``ins`` (a MATMUL) with its ``flow`` set to `formulas.best_dataflow` (no masked rows)."""
    a = ins.args
    flow = F.best_dataflow(int(a["m"]), int(a["n"]), int(a["k"]), _ch(ins, "mode"), config)
    return replace(ins, args={**a, "flow": ins.cls.field("flow").check(flow)})


def cost(instr: Instr, config: Config, masked_rows: int = 0) -> InstrCost:
    """Cost of executing ``instr`` on ``config`` (not skipped).

    ``masked_rows``: MATMUL rows the precision mask sends to the int4 rate (data-dependent; the
    interpreter counts them, estimates may pass 0 for the worst case).
    """
    return _price(COST_HANDLERS[instr.cls.name](instr, config, masked_rows), config)
