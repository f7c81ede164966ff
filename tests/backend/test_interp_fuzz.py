"""Random programs never crash the interpreter: they run or raise SimError (with an index)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_isa_strategies import instrs

from backend.errors import SimError
from backend.interpreter import run
from backend.isa import ISA, Field, Instr, InstrClass
from backend.program import Program

SMALL = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_value(f: Field) -> st.SearchStrategy[int | float]:
    """Field values biased to small, mostly in-bounds operands."""
    if f.kind == "f32":
        return st.one_of(
            st.floats(-4, 4, width=32), st.sampled_from([0.0, 1.0, float("inf"), -float("inf")])
        )
    if f.name.endswith("_off"):
        return st.integers(0, 64).map(lambda x: 64 * x)
    if f.name.endswith("_addr"):
        return st.integers(0, 32).map(lambda x: 64 * x)
    if f.name.endswith("_stride") or f.name in ("rows", "cols", "m", "n", "k", "heads", "row0"):
        return st.integers(0, 12)
    if f.name in ("mult", "zp", "shift"):
        return st.integers(max(f.lo, -(2**31)), min(f.hi, 2**31 - 1))
    return st.integers(f.lo, f.hi)


@st.composite
def small_instrs(draw: st.DrawFn) -> Instr:
    c: InstrClass = draw(st.sampled_from(ISA))
    args = {f.name: draw(small_value(f)) for f in c.fields}
    allowed = 0b11111 & ~(1 << c.queue)
    wait = draw(st.sampled_from([0, 0, 0, 31])) & allowed
    signal = draw(st.sampled_from([0, 0, 0, 31])) & allowed
    return Instr(c, args, draw(st.sampled_from([0, 0, 1, 2])), draw(st.booleans()), wait, signal)


def _check(prog: Program) -> None:
    """Run functional and timing-only; check error indices and report invariants."""
    rng = np.random.default_rng(0)
    prog.data = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    cycles: dict[bool, int] = {}
    for timing_only in (False, True):
        try:
            r = run(prog, None, "edge", timing_only=timing_only)
        except SimError as e:
            assert e.index is not None and 0 <= e.index < len(prog.instrs), str(e)
        else:
            rep = r.report
            assert rep.efficiency <= 1 + 1e-9  # cycles never beat the lower bound
            assert rep.bound["lower_bound"] <= rep.cycles + 1e-9
            rep.to_json()
            cycles[timing_only] = rep.cycles
    data_dependent = any(
        i.cls.name == "CMP" or (i.cls.name == "MATMUL" and i.args["mask"]) for i in prog.instrs
    )
    if len(cycles) == 2 and not data_dependent:
        assert cycles[False] == cycles[True]


@SMALL
@given(st.lists(small_instrs(), min_size=1, max_size=6))
def test_random_small_programs_run_or_raise_simerror(body: list[Instr]) -> None:
    _check(Program(instrs=body, dram_size=8192))


@settings(max_examples=60, deadline=None)
@given(st.lists(instrs(), min_size=1, max_size=4))
def test_random_full_range_instructions(body: list[Instr]) -> None:
    _check(Program(instrs=body, dram_size=8192))
