"""Emission: the Program (instructions, DRAM image, symbols, config), assembly and `.npubin`."""

from __future__ import annotations

from backend.asm import disassemble
from backend.config import Config
from backend.isa import DType, Instr
from backend.npubin import write
from backend.program import Program, Symbol


def build_program(
    instrs: list[Instr],
    data: bytes,
    dram_size: int,
    symbols: dict[str, Symbol],
    config: Config,
    data_end: int,
) -> Program:
    """A Program; a ``scratch`` symbol names the activation area after the data section."""
    syms = dict(symbols)
    scratch = dram_size - data_end
    if scratch > 0 and "scratch" not in syms:
        syms["scratch"] = Symbol("scratch", data_end, (scratch,), DType.INT8, "scratch")
    return Program(
        instrs=list(instrs),
        data=bytes(data),
        dram_size=max(dram_size, len(data)),
        symbols=syms,
        config_name=config.name,
        config_hash=config.hash,
    )


def assembly(program: Program, incbin: str | None = None) -> str:
    """Assembly text (`backend.asm.disassemble`); ``incbin`` names a file for the data section."""
    return disassemble(program, incbin=incbin)


def binary(program: Program) -> bytes:
    """The `.npubin` bytes (`backend.npubin.write`)."""
    return write(program)
