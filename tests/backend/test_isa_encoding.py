"""Encoding/decoding: hand-computed bit layouts, round trips, rejection of bad words."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_isa_strategies import SETTINGS, instrs

from backend.encoding import decode, decode_all, encode, encode_all, instrs_equal
from backend.errors import BackendError, DecodeError, IsaError
from backend.isa import BY_NAME, Instr, make


def word(i: Instr) -> int:
    return int.from_bytes(encode(i), "little")


def test_setp_layout_by_hand() -> None:
    # opcode 15 | pred 3 @6 | pneg @10 | wait load+matrix @11 | pdst 5 @21 | value 1 @25
    i = make("SETP", pdst=5, value=1, pred=3, pneg=True, wait=0b00101)
    expect = 15 | 3 << 6 | 1 << 10 | 0b101 << 11 | 5 << 21 | 1 << 25
    assert encode(i) == expect.to_bytes(32, "little")
    assert len(encode(i)) == 32


def test_load_all_fields_at_max_by_hand() -> None:
    i = make(
        "LOAD",
        dtype="int32",
        dst_buf="idx",
        dst_off=2**22 - 1,
        dst_stride=2**16 - 1,
        src_addr=2**32 - 1,
        src_stride=2**24 - 1,
        rows=2**16 - 1,
        cols=2**16 - 1,
        signal=0b11110,
    )
    # widths 3,3,22,16,32,24,16,16 from bit 21, in the order the brief lists the fields
    expect = (
        1
        | 0b11110 << 16
        | 4 << 21
        | 4 << 24
        | (2**22 - 1) << 27
        | (2**16 - 1) << 49
        | (2**32 - 1) << 65
        | (2**24 - 1) << 97
        | (2**16 - 1) << 121
        | (2**16 - 1) << 137
    )
    assert word(i) == expect
    assert decode(encode(i), 0) == i


def test_negative_ints_and_float_bits() -> None:
    v = make(
        "VEC",
        op="add",
        bcast="scalar",
        dtype="fp32",
        dst_buf="vec",
        dst_off=0,
        dst_stride=1,
        a_buf="vec",
        a_off=0,
        a_stride=1,
        rows=1,
        cols=1,
        imm=-2.5,
    )
    imm_shift = 21 + 4 + 2 + 3 + 3 * (3 + 22 + 16) + 16 + 16
    assert (word(v) >> imm_shift) & 0xFFFFFFFF == 0xC0200000  # -2.5 in IEEE-754 single
    assert (word(v) >> 21) & 0xF == 0 and (word(v) >> 25) & 3 == 3
    neg0 = Instr(v.cls, {**v.args, "imm": -0.0})
    assert (word(neg0) >> imm_shift) & 0xFFFFFFFF == 0x80000000
    assert struct.pack("<f", decode(encode(neg0), 0).args["imm"]) == struct.pack("<f", -0.0)


@SETTINGS
@given(instrs())
def test_roundtrip_random_instructions(i: Instr) -> None:
    b = encode(i)
    d = decode(b, 7)
    assert d == i
    assert all(type(v) in (int, float) for v in d.args.values())
    assert encode(d) == b
    assert not int.from_bytes(b, "little") >> i.cls.used_bits


@SETTINGS
@given(st.binary(min_size=32, max_size=32))
def test_random_words_decode_canonically_or_fail_cleanly(b: bytes) -> None:
    try:
        i = decode(b, 0)
    except DecodeError as e:
        assert "instruction 0 (byte offset " in str(e)
        return
    assert encode(i) == b  # anything accepted is re-encoded bit for bit


@SETTINGS
@given(st.binary(max_size=200), st.integers(0, 20))
def test_random_streams_never_crash(b: bytes, opcode: int) -> None:
    # bias towards valid opcodes so decoding gets past the first check
    b = bytes([b[0] & 0xC0 | opcode]) + b[1:] if b else b
    try:
        out = decode_all(b)
    except BackendError:
        return
    assert encode_all(out) == b


def _setp_word() -> int:
    return word(make("SETP", pdst=1, value=0))


def _err(code: bytes, base: int = 0) -> str:
    with pytest.raises(DecodeError) as e:
        decode_all(code, base)
    return str(e.value)


def test_decode_errors_name_index_and_offset() -> None:
    good = encode(make("NOP"))
    assert _err(good * 3 + bytes(32)) == "instruction 3 (byte offset 96): unknown opcode 0"
    assert "instruction 3 (byte offset 1096)" in _err(good * 3 + bytes(32), 1000)
    assert _err(good * 2 + good[:5]) == "byte offset 64: code length 69 is not a multiple of 32"

    vec = BY_NAME["VEC"]
    bad_op = word(Instr(vec, {f.name: 0 for f in vec.fields} | {"imm": 0.0})) | 0xF << 21
    # op 15: only 12 ops exist
    msg = _err(good + bad_op.to_bytes(32, "little"))
    assert msg.startswith("instruction 1 (byte offset 34): vec: field 'op' value 15 out of range")

    reserved = _setp_word() | 1 << 200
    msg = _err(reserved.to_bytes(32, "little"))
    assert msg == "instruction 0 (byte offset 25): setp: reserved bit 200 is set"

    own = _setp_word() | 1 << (11 + 4)  # SETP (select queue) waiting on select
    assert "setp: 'wait' names its own queue 'select'" in _err(own.to_bytes(32, "little"))

    pdst0 = _setp_word() & ~(0xF << 21)
    assert "field 'pdst' value 0 out of range (1..15)" in _err(pdst0.to_bytes(32, "little"))

    cmp = BY_NAME["CMP"]
    args = {f.name: 0 for f in cmp.fields} | {"pdst": 1, "imm": 0.0}
    nan = word(Instr(cmp, args)) | 0x7FC00000 << cmp.shifts[cmp.field_index["imm"]]
    assert "cmp: field 'imm' is NaN" in _err(nan.to_bytes(32, "little"))

    with pytest.raises(DecodeError, match="byte offset 64: instruction word has 31 bytes"):
        decode(bytes(31), 2)


def test_encode_rejects_bad_instr_built_directly() -> None:
    setp = BY_NAME["SETP"]
    with pytest.raises(IsaError, match="instruction 4 .SETP.: field 'value' value 2 out of range"):
        encode(Instr(setp, {"pdst": 1, "value": 2}), 4)
    with pytest.raises(IsaError, match="missing field 'value'"):
        encode(Instr(setp, {"pdst": 1}))
    with pytest.raises(IsaError, match="unknown field.s. zz"):
        encode(Instr(setp, {"pdst": 1, "value": 0, "zz": 1}))
    with pytest.raises(IsaError, match="names its own queue"):
        encode(Instr(setp, {"pdst": 1, "value": 0}, signal=16))
    with pytest.raises(IsaError, match="not exactly representable"):
        encode(Instr(BY_NAME["CMP"], {f.name: 1 for f in BY_NAME["CMP"].fields} | {"imm": 0.1}))


def test_instrs_equal_is_bit_exact() -> None:
    cmp = BY_NAME["CMP"]
    a = Instr(cmp, {f.name: 1 for f in cmp.fields} | {"imm": 0.0})
    b = Instr(cmp, {f.name: 1 for f in cmp.fields} | {"imm": -0.0})
    assert a == b and not instrs_equal([a], [b]) and instrs_equal([a], [a])


def test_bulk_speed() -> None:
    i = make(
        "MATMUL",
        mode="int8",
        a_buf="act",
        a_off=0,
        a_stride=64,
        b_buf="wgt",
        b_off=0,
        b_stride=64,
        c_buf="acc",
        c_off=0,
        c_stride=64,
        m=64,
        n=64,
        k=64,
    )
    prog = [i, make("NOP", signal=1)] * 20_000
    t = time.perf_counter()
    code = encode_all(prog)
    out = decode_all(code)
    assert (
        time.perf_counter() - t < 60
    )  # a guard against quadratic blow-up (about 0.4 s unloaded), not a speed test
    assert len(code) == 1_280_000 and out == prog
