"""Hypothesis strategies for random valid instructions and programs (shared by the ISA,
assembler and .npubin tests), plus sanity checks of the strategies themselves."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.isa import ISA, DType, Field, Instr, InstrClass
from backend.program import SYMBOL_KINDS, Program, Symbol

# Modest budgets; no deadline or speed health checks (the suite runs on shared, loaded machines).
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=_SLOW)
PROGRAM_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=_SLOW)

f32s = st.floats(width=32, allow_nan=False)


def field_values(f: Field) -> st.SearchStrategy[int | float]:
    """Every valid value of ``f``."""
    if f.kind == "f32":
        return f32s
    return st.integers(f.lo, f.hi)


@st.composite
def instrs(draw: st.DrawFn, cls: InstrClass | None = None) -> Instr:
    """A random valid instruction (of ``cls`` or any class)."""
    c = draw(st.sampled_from(ISA)) if cls is None else cls
    args = {f.name: draw(field_values(f)) for f in c.fields}
    allowed = 0b11111 & ~(1 << c.queue)
    wait = draw(st.integers(0, 31)) & allowed
    signal = draw(st.integers(0, 31)) & allowed
    return Instr(c, args, draw(st.integers(0, 15)), draw(st.booleans()), wait, signal)


names = st.text(max_size=12)


def commented(instr: st.SearchStrategy[Instr]) -> st.SearchStrategy[Instr]:
    """Instructions carrying random (often repeated, sometimes messy) comments."""
    notes = st.sampled_from(["", "", "nn.matmul %3", "x  y", "\tz\n"]) | st.text(max_size=8)
    return st.builds(lambda i, c: replace(i, comment=c), instr, notes)


simple_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,8}", fullmatch=True)
u32 = st.integers(0, 2**32 - 1)
symbols = st.builds(
    Symbol,
    name=st.one_of(simple_names, names),
    addr=u32,
    shape=st.lists(u32, max_size=4).map(tuple),
    dtype=st.sampled_from(list(DType)),
    kind=st.sampled_from(SYMBOL_KINDS),
)
data = st.lists(st.one_of(st.binary(max_size=40), st.just(bytes(64))), max_size=4).map(b"".join)


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """A random valid program (instructions, DRAM image, symbols, config)."""
    syms = draw(st.lists(symbols, max_size=4, unique_by=lambda s: s.name))
    return Program(
        instrs=draw(st.lists(commented(instrs()), max_size=12)),
        data=draw(data),
        dram_size=draw(st.integers(0, 2**32)),
        symbols={s.name: s for s in syms},
        config_name=draw(st.one_of(simple_names, names)),
        config_hash=draw(st.binary(min_size=8, max_size=8)),
    )


@SETTINGS
@given(instrs())
def test_strategy_instrs_are_valid(i: Instr) -> None:
    assert set(i.args) == {f.name for f in i.cls.fields}
    assert not (i.wait | i.signal) & (1 << i.cls.queue)
