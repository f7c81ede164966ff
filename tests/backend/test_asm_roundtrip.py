"""Assembler/disassembler round trips, hand-checked encodings of asm text, the examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from test_isa_strategies import PROGRAM_SETTINGS, programs

from backend.asm import (
    assemble,
    disassemble,
    format_float,
    format_instr,
    grammar,
    main,
    operands,
)
from backend.encoding import encode, instrs_equal
from backend.errors import IsaError
from backend.isa import BY_NAME, ISA, Instr, make, to_f32
from backend.npubin import read, write
from backend.program import Program

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.s"))


@PROGRAM_SETTINGS
@given(programs())
def test_asm_roundtrip_random_programs(p: Program) -> None:
    text = disassemble(p)
    q = assemble(text)
    assert q == p
    assert instrs_equal(q.instrs, p.instrs)  # bit-exact, including -0.0 immediates
    assert [i.comment for i in q.instrs] == [" ".join(i.comment.split()) for i in p.instrs]
    assert disassemble(q) == text


@PROGRAM_SETTINGS
@given(programs())
def test_bin_asm_bin_is_byte_identical(p: Program) -> None:
    b = write(p)
    q = assemble(disassemble(read(b)))
    assert write(q) == b
    assert [i.comment for i in q.instrs] == [" ".join(i.comment.split()) for i in p.instrs]


def test_examples_assemble_and_roundtrip() -> None:
    assert len(EXAMPLES) >= 4
    for f in EXAMPLES:
        p = assemble(f.read_text(), str(f))
        assert p.instrs and p.instrs[-1].cls.name == "FINISH"
        canon = disassemble(p)
        b = write(p)
        assert disassemble(read(b)) == canon  # asm -> bin -> asm
        assert write(assemble(canon)) == b  # bin -> asm -> bin
        assert len(p.data) <= p.dram_size
        for s in p.symbols.values():
            assert s.addr + s.nbytes <= p.dram_size, (f.name, s.name)


def test_hand_written_text_encodes_as_computed_by_hand() -> None:
    p = assemble("@!p3 setp pdst=p5, value=1 wait(load, matrix)\n")
    expect = 15 | 3 << 6 | 1 << 10 | 0b101 << 11 | 5 << 21 | 1 << 25
    assert encode(p.instrs[0]) == expect.to_bytes(32, "little")
    # grouped buffer operand act[0x10] -> a_buf=0, a_off=16; hex and decimal both accepted
    p = assemble(
        "vec op=mul, bcast=scalar, dtype=fp32, dst=acc[16], dst_stride=0x8, a=act[0x10],"
        " a_stride=8, rows=2, cols=8, imm=0x1.8p-3\n"
    )
    i = p.instrs[0]
    assert (i["dst_buf"], i["dst_off"], i["a_buf"], i["a_off"]) == (2, 16, 0, 16)
    assert i["op"] == 2 and i["bcast"] == 3 and i["imm"] == 0.1875
    assert i["b_buf"] == 0 and i["b_stride"] == 0  # defaults


def test_whitespace_is_flexible_and_values_are_plain_ints() -> None:
    a = assemble(
        "vec op=exp, dtype=fp32, dst = vec[ 0x10 ] ,dst_stride=1,a=act[3],a_stride=1,"
        "rows=1,cols=1\n\t setp  pdst =p1,value= 1\r\n"
    )
    b = assemble(
        "vec op=exp, dtype=fp32, dst=vec[0x10], dst_stride=1, a=act[0x3], a_stride=1,"
        " rows=1, cols=1\nsetp pdst=p1, value=1\n"
    )
    assert a == b
    for i in a.instrs:
        assert all(type(v) in (int, float) for v in i.args.values()), i
        assert type(i.pred) is int and type(i.wait) is int and type(i.pneg) is bool


def test_directives() -> None:
    text = (
        ".config edge 00112233445566ff\n"
        ".dram 4096\n"
        '.symbol "a b" 0x10 [2,3] int4 input\n'
        ".symbol w 0x20 [] fp32 weight\n"
        ".data 0102\n"
        ".zero 3\n"
        ".data FF\n"
    )
    p = assemble(text)
    assert p.config_name == "edge" and p.config_hash == bytes.fromhex("00112233445566ff")
    assert p.dram_size == 4096 and p.data == b"\x01\x02\x00\x00\x00\xff"
    assert list(p.symbols) == ["a b", "w"]
    assert p.symbols["a b"].shape == (2, 3) and p.symbols["a b"].nbytes == 3
    assert p.symbols["w"].shape == ()
    assert not p.instrs


def test_defaults_when_no_header_directives() -> None:
    p = assemble("nop\nfinish")
    assert p.config_name == "" and p.config_hash == bytes(8) and p.dram_size == 0
    assert [i.cls.name for i in p.instrs] == ["NOP", "FINISH"]


def test_incbin_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\x07" * 40)
    src = tmp_path / "prog.s"
    src.write_text('.data 01\n.incbin "w.bin"\nfinish\n')
    p = assemble(src.read_text(), str(src))
    assert p.data == b"\x01" + b"\x07" * 40
    text = disassemble(p, incbin="w2.bin")
    assert '.incbin "w2.bin"' in text and ".data" not in text
    (tmp_path / "w2.bin").write_bytes(p.data)
    assert assemble(text, str(tmp_path / "x.s")) == p


def test_comments_and_blank_lines() -> None:
    text = "# header\n\n  ; indented comment\nnop ; from nn.matmul %3\n\tfinish # end\n"
    p = assemble(text)
    assert [i.comment for i in p.instrs] == ["from nn.matmul %3", "end"]
    assert format_instr(p.instrs[0]) == "nop  ; from nn.matmul %3"


def test_canonical_form_omits_defaults() -> None:
    line = "setp pdst=p1, value=0"
    assert format_instr(assemble(line).instrs[0]) == line
    mm = (
        "matmul mode=sp24, acc=1, a=act[0x0], a_stride=64, b=wgt[0x40], b_stride=64, "
        "c=acc[0x0], c_stride=64, m=64, n=64, k=128, meta=idx[0x100], mask=1, mask_buf=idx, "
        "mask_off=0x200 wait(load) signal(vector,select)"
    )
    assert format_instr(assemble(mm).instrs[0]) == mm


@pytest.mark.parametrize(
    "x", [0.1, 1.0, -2.5, 1e-5, 3.4028234663852886e38, 1.401298464324817e-45, float("inf")]
)
def test_float_format_is_short_and_exact(x: float) -> None:
    f = to_f32(x)
    s = format_float(f)
    assert to_f32(float(s)) == f
    assert len(s) <= 16


def test_grammar_is_generated_from_the_table() -> None:
    g = grammar()
    for cls in ISA:
        assert f'"{cls.mnemonic}"' in g
        for o in operands(cls):
            assert f"/{o.key}[ \\t]*=/" in g


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = EXAMPLES[0]
    out = tmp_path / "p.npubin"
    assert main([str(src), "-o", str(out)]) == 0
    assert read(out.read_bytes()) == assemble(src.read_text())
    assert main(["-d", str(out)]) == 0
    assert capsys.readouterr().out == disassemble(assemble(src.read_text()))
    bad = tmp_path / "bad.s"
    bad.write_text("nop\nsetp pdst=p0, value=1\n")
    assert main([str(bad)]) == 1
    assert f"error: {bad}:2:11: field 'pdst' value 0" in capsys.readouterr().err
    assert main(["-d", str(bad)]) == 1
    assert "bad magic" in capsys.readouterr().err


def test_disassemble_refuses_invalid_instructions() -> None:
    bad = Instr(BY_NAME["SETP"], {"pdst": 0, "value": 1})
    with pytest.raises(IsaError, match=r"instruction 1 \(SETP\): field 'pdst' value 0"):
        disassemble(Program(instrs=[make("NOP"), bad]))
