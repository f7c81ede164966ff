"""Assembler errors: every message names file:line:col; bad text never crashes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_isa_strategies import PROGRAM_SETTINGS, SETTINGS, programs

from backend.asm import assemble, disassemble
from backend.errors import AsmError, BackendError
from backend.program import Program

SETP = "setp pdst=p1, value=1"


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("nop\nfrobnicate x=1\n", "f.s:2:1:", "unexpected 'frobnicate"),
        ("nop\nsetp pdst=p1, vlue=1\n", "f.s:2:15:", "expected"),
        ("setp pdst=p1, value=2\n", "f.s:1:21:", "'value' value 2 out of range (allowed 0..1)"),
        ("setp pdst=p0, value=1\n", "f.s:1:11:", "'pdst' value 0 out of range (allowed 1..15)"),
        ("setp pdst=p1\n", "f.s:1:1:", "setp: missing operand 'value'"),
        ("setp pdst=p1, value=1, pdst=p2\n", "f.s:1:24:", "operand 'pdst' given twice"),
        ("@p16 nop\n", "f.s:1:1:", "predicate register p16 does not exist"),
        ("nop signal(select)\n", "f.s:1:1:", "'signal' names its own queue 'select'"),
        ("nop wait(load,load)\n", "f.s:1:15:", "queue 'load' named twice"),
        ("nop wait(lod)\n", "f.s:1:10:", "expected"),
        ("load dtype=int9\n", "f.s:1:12:", "'fp16'"),
        ("load dst=act[0x400000]\n", "f.s:1:14:", "'dst_off' value 4194304 out of range"),
        ("load dst=foo[0]\n", "f.s:1:10:", "buf[offset] (buf: act|wgt|acc|vec|idx)"),
        ("cmp imm=1e39\n", "f.s:1:9:", "overflows float32"),
        ("cmp imm=-1e309\n", "f.s:1:9:", "overflows float32"),
        ("cmp imm=" + "1" * 400, "f.s:1:9:", "overflows float32"),
        ("cmp imm=nan\n", "f.s:1:9:", "unexpected"),
        ("vec imm=1\n", "f.s:1:1:", "vec: missing operand 'op'"),
        ("nop\nvec op=exp,\n", "f.s:2:12:", "unexpected end of line"),
        (".config spatten 0011\n", "f.s:1:17:", "config hash must be 16 hex digits"),
        (".data 012\n", "f.s:1:7:", "odd number of hex digits"),
        (".dram 0x100000001\n", "f.s:1:7:", "DRAM size 4294967297 out of range"),
        (".symbol a 0 [1] fp16 input\n.symbol a 0 [1] fp16 input\n", "f.s:2:9:", "duplicate"),
        (".symbol a 0 [1] fp16 banana\n", "f.s:1:22:", "'input'"),
        (".symbol a 0x100000000 [1] fp16 input\n", "f.s:1:11:", "address 4294967296"),
        ('.symbol "a\\q" 0 [1] fp16 input\n', "f.s:1:9:", "bad string"),
        (".config a 0011223344556677\n.config b 0011223344556677\n", "f.s:2:9:", "duplicate"),
        ('.incbin "no/such/file.bin"\n', "f.s:1:9:", "cannot read .incbin file"),
        ("nop nop\n", "f.s:1:5:", "unexpected 'nop'"),
        ("setp pdst=p1 value=1\n", "f.s:1:14:", "unexpected 'value'"),
        ("setp pdst=p1, value=\n", "f.s:1:21:", "unexpected end of line"),
        ("setp pdst=p1, value=" + "9" * 5000, "f.s:1:21:", "integer literal too long"),
        ("nop\n.zero 0x" + "f" * 5000, "f.s:2:7:", "integer literal too long"),
        ("@p" + "9" * 5000 + " nop", "f.s:1:1:", "predicate register"),
        ("setp pdst=p" + "9" * 5000 + ", value=1", "f.s:1:11:", "'pdst' must be an integer"),
    ],
    ids=lambda v: v[:24] if isinstance(v, str) else None,
)
def test_error_messages_name_the_place(text: str, where: str, needle: str) -> None:
    with pytest.raises(AsmError) as e:
        assemble(text, "f.s")
    msg = str(e.value)
    assert msg.startswith(where), msg
    assert needle in msg, msg


def test_error_attributes() -> None:
    with pytest.raises(AsmError) as e:
        assemble("nop\n\n  setp pdst=p1, value=3\n", "x.s")
    assert (e.value.filename, e.value.line, e.value.col) == ("x.s", 3, 23)
    assert isinstance(e.value, BackendError)


def test_unexpected_eof_names_last_line() -> None:
    with pytest.raises(AsmError, match=r"^<asm>:\d+:\d+: "):
        assemble("setp pdst=p1, value=(")


@SETTINGS
@given(st.text(max_size=80))
def test_random_text_is_rejected_cleanly(text: str) -> None:
    try:
        assemble(text)
    except AsmError as e:
        assert str(e).startswith("<asm>:")


ALPHABET = ' \t\n,=[]()@!;#."0123456789abcdefpx_-+' + "lodmtuvscrwgikn"


@PROGRAM_SETTINGS
@given(programs(), st.randoms(use_true_random=False))
def test_mutated_programs_fail_cleanly_or_parse(p: Program, rnd: random.Random) -> None:
    text = list(disassemble(p))
    for _ in range(rnd.randint(1, 4)):
        pos = rnd.randrange(len(text) + 1)
        op = rnd.random()
        if op < 0.4 and pos < len(text):
            del text[pos]
        elif op < 0.8:
            text.insert(pos, rnd.choice(ALPHABET))
        elif pos < len(text):
            text[pos] = rnd.choice(ALPHABET)
    try:
        q = assemble("".join(text))
    except AsmError:
        return
    assert disassemble(assemble(disassemble(q))) == disassemble(q)
