"""Helpers for the interpreter tests: build small serial programs with DRAM inputs/outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.config import load_config
from backend.interpreter import Result, run
from backend.isa import BY_NAME, DType, Instr, make
from backend.program import Program, Symbol

SPATTEN = load_config("spatten")

NP = {
    DType.FP16: np.float16,
    DType.FP32: np.float32,
    DType.INT8: np.int8,
    DType.INT4: np.int8,
    DType.INT32: np.int32,
}


def pack4(v: np.ndarray) -> bytes:
    """Independent packed-int4 encoder (row-major, low nibble first), pure Python."""
    flat = [int(x) for x in np.asarray(v).reshape(-1)]
    if len(flat) % 2:
        flat.append(0)
    return bytes((flat[i] & 0xF) | ((flat[i + 1] & 0xF) << 4) for i in range(0, len(flat), 2))


class Builder:
    """Collects DRAM symbols and instructions; ``serial`` chains them with tokens."""

    def __init__(self) -> None:
        self.symbols: dict[str, Symbol] = {}
        self.inputs: dict[str, np.ndarray] = {}
        self.specs: list[tuple[str, dict[str, Any]]] = []
        self.top = 0

    def _alloc(self, name: str, shape: tuple[int, ...], dt: DType, kind: str) -> Symbol:
        s = Symbol(name, self.top, shape, dt, kind)
        self.symbols[name] = s
        self.top += (s.nbytes + 63) // 64 * 64 + 64
        return s

    def input(self, name: str, arr: np.ndarray, dt: DType) -> Symbol:
        """Declare an input symbol with its value."""
        self.inputs[name] = np.asarray(arr)
        return self._alloc(name, tuple(np.shape(arr)), dt, "input")

    def output(self, name: str, shape: tuple[int, ...], dt: DType) -> Symbol:
        """Declare an output symbol."""
        return self._alloc(name, shape, dt, "output")

    def add(self, name: str, **kw: Any) -> None:
        """Append an instruction (fields as for isa.make; header filled by ``serial``)."""
        self.specs.append((name, kw))

    def program(self, serial: bool = True, finish: bool = True) -> Program:
        """The program; ``serial`` adds tokens so each instruction follows the previous one."""
        specs = [(n, dict(kw)) for n, kw in self.specs]
        if finish:
            specs.append(("FINISH", {}))
        if serial:
            for (pn, pkw), (n, kw) in zip(specs, specs[1:], strict=False):
                pq, q = BY_NAME[pn].queue, BY_NAME[n].queue
                if pq != q:
                    pkw["signal"] = pkw.get("signal", 0) | (1 << q)
                    kw["wait"] = kw.get("wait", 0) | (1 << pq)
        instrs: list[Instr] = [make(n, **kw) for n, kw in specs]
        return Program(instrs=instrs, dram_size=self.top + 4096, symbols=dict(self.symbols))

    def run(self, config: Any = SPATTEN, **kw: Any) -> Result:
        """Run the serial program on its inputs."""
        return run(self.program(), self.inputs, config, **kw)


def load_store(
    b: Builder, x: np.ndarray, dt: DType, buf: str = "act", off: int = 0, name: str = "x"
) -> tuple[int, int]:
    """LOAD input ``x`` (2-D) into SRAM ``buf[off]`` densely; returns (rows, cols)."""
    s = b.input(name, x, dt)
    rows, cols = x.shape
    b.add(
        "LOAD", dtype=dt, dst_buf=buf, dst_off=off, dst_stride=cols,
        src_addr=s.addr, src_stride=dt.nbytes(cols), rows=rows, cols=cols,
    )  # fmt: skip
    return rows, cols


def store_out(
    b: Builder, shape: tuple[int, int], dt: DType, buf: str, off: int, name: str = "y",
    stride: int | None = None,
) -> None:  # fmt: skip
    """STORE SRAM ``buf[off]`` (rows × cols, given stride) to a new output symbol."""
    s = b.output(name, shape, dt)
    rows, cols = shape
    b.add(
        "STORE", dtype=dt, src_buf=buf, src_off=off, src_stride=stride or cols,
        dst_addr=s.addr, dst_stride=dt.nbytes(cols), rows=rows, cols=cols,
    )  # fmt: skip
