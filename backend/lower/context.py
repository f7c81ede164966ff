"""The lowering context: config, DRAM layout (data section, activations), SRAM arenas, emission."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.ir import Operation, SSAValue

from backend.config import Config
from backend.cost.model import with_best_dataflow
from backend.errors import BackendError
from backend.isa import Buf, DType, Instr, make
from backend.lower.sram import Arena
from backend.lower.values import DTensor
from backend.program import Symbol
from dialects import nn

if TYPE_CHECKING:
    from backend.lower.resident import ResidentLayout

DRAM_ALIGN = 64


def _align(n: int) -> int:
    return (n + DRAM_ALIGN - 1) // DRAM_ALIGN * DRAM_ALIGN


@dataclass
class Lowered:
    """The result of lowering: instructions in program order plus the DRAM image and symbols."""

    instrs: list[Instr]
    layer_of: list[str]
    data: bytes
    dram_size: int
    symbols: dict[str, Symbol]
    input_names: list[str]
    output_names: list[str]
    data_end: int = 0
    # Per constant (weight symbol or other key): the element types its layouts in the image use.
    data_dtypes: dict[str, frozenset[str]] = field(default_factory=dict)


class LowerCtx:
    """State shared by the lowering rules."""

    def __init__(
        self,
        config: Config,
        weights: Mapping[str, np.ndarray],
        resident: ResidentLayout | None = None,
    ) -> None:
        self.config = config
        self.resident = resident  # DRAM regions kept across a session's runs (resident.py)
        self.resident_spans: list[tuple[int, int]] = []  # [lo, hi) of the regions in use
        self.weights = weights
        self.data = bytearray()
        self.data_cache: dict[tuple[str, str], DTensor] = {}
        self.instrs: list[Instr] = []
        self.layer_of: list[str] = []
        self.tag = ""
        self.what = ""
        self.sram = {b: Arena(b, config.sram_size(b)) for b in Buf}
        self.act_top = 0  # activations are laid out after the data section, see finish()
        self.acts: list[tuple[int, int]] = []
        self.symbols: dict[str, Symbol] = {}
        self.fused_act: dict[Operation, str] = {}  # nn.linear → VEC op fused into its epilogue
        self.fused_residual: dict[Operation, SSAValue] = {}  # nn.linear → residual value
        self.fused_away: dict[Operation, int] = {}  # absorbed op → operand carrying its result
        self.merged: dict[Operation, list[nn.LinearOp]] = {}  # first linear of a group → group
        self.merged_views: dict[Operation, DTensor] = {}  # later group member → result view
        self.ln_prologue: dict[Operation, nn.LayerNormOp] = {}  # linear/leader → input's LN
        self.qplans: dict[Operation, Any] = {}  # quant.linear leader → fuse_quant.QPlan
        self.qviews: dict[Operation, DTensor] = {}  # merged quant.linear member → result view
        self.int8_inputs: dict[Operation, float] = {}  # op reading the int8 stream → its scale
        self.dest: dict[SSAValue, DTensor] = {}  # value written straight into a concat's block
        self.concat_out: dict[Operation, DTensor] = {}  # concat → its pre-allocated result
        self.planes: dict[SSAValue, DTensor] = {}  # int4 K-plane input → its region (+ new rows)

    # ---- emission -------------------------------------------------------------------------

    def begin_op(self, tag: str, what: str) -> None:
        """Start lowering one nn op: set the comment and release op-lifetime SRAM."""
        self.tag = tag
        self.what = what
        for a in self.sram.values():
            a.begin_op()

    def emit(self, name: str, **fields: Any) -> Instr:
        """Append one instruction (comment: the layer tag and the nn op). A MATMUL without a
        ``flow`` gets the dataflow of fewest cycles the config supports (cost model)."""
        ins = make(name, comment=f"{self.tag} {self.what}", **fields)
        if ins.cls.name == "MATMUL" and "flow" not in fields:
            ins = with_best_dataflow(ins, self.config)
        self.instrs.append(ins)
        self.layer_of.append(self.tag)
        return ins

    # ---- SRAM -----------------------------------------------------------------------------

    def hold(self, buf: Buf, nbytes: int) -> int:
        return self.sram[buf].hold(nbytes, f"{self.what} ({self.tag})")

    def take(self, buf: Buf, nbytes: int) -> int:
        return self.sram[buf].take(nbytes, f"{self.what} ({self.tag})")

    def rings(self) -> tuple[int, int, int, int]:
        """Current ring sizes of act, wgt, acc and vec."""
        a, w, c, v = (self.sram[b].ring for b in (Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC))
        return a, w, c, v

    def cap(self, buf: Buf, depth: int = 2) -> int:
        """Bytes per tile for ``depth``-deep buffering in ``buf`` (from its current ring)."""
        return self.sram[buf].ring // depth // 64 * 64

    def too_big(self, detail: str) -> BackendError:
        return BackendError(f"{self.what} ({self.tag}): {detail} on config '{self.config.name}'")

    # ---- DRAM -----------------------------------------------------------------------------

    def add_data(self, key: tuple[str, str], arr: np.ndarray, dtype: DType) -> DTensor:
        """Place a constant array in the data section (cached by ``key``)."""
        hit = self.data_cache.get(key)
        if hit is not None:
            return hit
        np_dt = {DType.FP16: "<f2", DType.FP32: "<f4", DType.INT32: "<i4", DType.INT8: "i1"}[dtype]
        raw = np.ascontiguousarray(arr, dtype=np_dt).tobytes()
        addr = _align(len(self.data))
        self.data.extend(bytes(addr - len(self.data)))
        self.data.extend(raw)
        t = DTensor.contiguous(addr, tuple(arr.shape), dtype)
        self.data_cache[key] = t
        return t

    def data_dtypes(self) -> dict[str, frozenset[str]]:
        """The element types each constant is laid out in (``add_data`` keys by their first part; a
        fused layout, ``"a|b|c"``, counts for each of its parts)."""
        out: dict[str, set[str]] = {}
        for (key, _kind), t in self.data_cache.items():
            for name in key.split("|"):
                out.setdefault(name, set()).add(t.dtype.name)
        return {k: frozenset(v) for k, v in out.items()}

    def activation(self, shape: tuple[int, ...], dtype: DType = DType.FP16) -> DTensor:
        """A fresh activation region (tagged address, rebased after the data section by `finish`)."""
        t = DTensor.contiguous(ACT_BASE + self.act_top, tuple(shape), dtype)
        self.act_top = _align(self.act_top + max(t.nbytes, 1))
        return t

    # ---- finishing ------------------------------------------------------------------------

    def finish(self) -> tuple[list[Instr], int, int]:
        """Move the activation area after the data section and patch DRAM addresses.

        Activations are allocated while the data section still grows, so their addresses are
        tagged with `ACT_BASE` and rebased here. Returns (instrs, data_end, dram_size).
        """
        data_end = base = _align(len(self.data))
        if self.resident is not None:  # data | resident regions | activations
            if base > self.resident.base:
                raise BackendError(
                    f"the data section ({len(self.data)} B) reaches past the resident region's "
                    f"base {self.resident.base} (meta['resident']['base'] must be at least {base})"
                )
            base = _align(self.resident.end)
        out: list[Instr] = []
        for ins in self.instrs:
            args = ins.args
            if any(k in args and int(args[k]) >= ACT_BASE for k in _ADDR_FIELDS):
                new = dict(args)
                for k in _ADDR_FIELDS:
                    if k in new and int(new[k]) >= ACT_BASE:
                        new[k] = int(new[k]) - ACT_BASE + base
                ins = Instr(ins.cls, new, ins.pred, ins.pneg, ins.wait, ins.signal, ins.comment)
            out.append(ins)
        for s in self.symbols.values():
            if s.addr >= ACT_BASE:
                s.addr = s.addr - ACT_BASE + base
        return out, data_end, base + self.act_top


ACT_BASE = 1 << 31
_ADDR_FIELDS = ("src_addr", "dst_addr")


def predicate_since(ctx: LowerCtx, start: int, pred: int, neg: bool = False) -> None:
    """Put every instruction emitted since index ``start`` under predicate ``pred``."""
    for i in range(start, len(ctx.instrs)):
        ctx.instrs[i] = dataclasses.replace(ctx.instrs[i], pred=pred, pneg=neg)
