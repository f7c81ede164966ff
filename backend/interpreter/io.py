"""Program inputs and outputs: typed arrays to and from the DRAM regions of symbols."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.convert import convert
from backend.errors import SimError
from backend.interpreter.numerics import pack_int4, unpack_int4
from backend.interpreter.state import NP_DTYPES, Machine
from backend.isa import DType
from backend.program import Program, Symbol


def read_symbol(m: Machine, s: Symbol) -> np.ndarray:
    """The symbol's region as an array of its shape (int4 unpacked to int8)."""
    count = int(np.prod(s.shape)) if s.shape else 1
    raw = m.dram[s.addr : s.addr + s.nbytes]
    if s.dtype is DType.INT4:
        flat = unpack_int4(raw.reshape(1, -1))[0, :count]
    else:
        flat = raw.view(NP_DTYPES[s.dtype])
    return flat.reshape(s.shape).copy()


def write_symbol(m: Machine, s: Symbol, x: Any) -> None:
    """Write ``x`` (converted to the symbol's dtype) over the symbol's region."""
    arr = np.asarray(x)
    if tuple(arr.shape) != tuple(s.shape):
        raise SimError(f"input '{s.name}': shape {arr.shape} != declared {tuple(s.shape)}")
    target = np.dtype(np.int8) if s.dtype is DType.INT4 else NP_DTYPES[s.dtype]
    try:
        arr = convert(arr, np.dtype(target), f"input '{s.name}'")
    except ValueError as e:
        raise SimError(str(e)) from None
    if s.dtype is DType.INT4:
        v = arr.astype(np.int64).reshape(1, -1)
        if v.size and (v.min() < -8 or v.max() > 7):
            raise SimError(f"input '{s.name}': int4 values must lie in [-8, 7]")
        if v.shape[1] % 2:
            v = np.concatenate([v, np.zeros((1, 1), np.int64)], axis=1)
        data = pack_int4(v).reshape(-1)
    else:
        data = np.ascontiguousarray(arr.astype(NP_DTYPES[s.dtype])).view(np.uint8).reshape(-1)
    if s.addr + data.size > m.sizes[5]:
        raise SimError(f"input '{s.name}' at {s.addr} exceeds DRAM size {m.sizes[5]}")
    m.dram[s.addr : s.addr + data.size] = data


def write_inputs(m: Machine, program: Program, inputs: dict[str, Any] | None) -> None:
    """Write all input symbols (``inputs`` None or empty: keep the program image)."""
    syms = {s.name: s for s in program.symbols.values() if s.kind == "input"}
    if not inputs:
        return
    unknown = set(inputs) - set(syms)
    if unknown:
        raise SimError(f"unknown input(s) {sorted(unknown)} (inputs: {sorted(syms)})")
    missing = set(syms) - set(inputs)
    if missing:
        raise SimError(f"missing input(s) {sorted(missing)}")
    for name, x in inputs.items():
        write_symbol(m, syms[name], x)


def read_outputs(m: Machine, program: Program) -> dict[str, np.ndarray]:
    """Arrays of every output symbol."""
    return {s.name: read_symbol(m, s) for s in program.symbols.values() if s.kind == "output"}
