"""The .npubin container: documented layout, determinism, and clean rejection of bad files."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_isa_strategies import PROGRAM_SETTINGS, SETTINGS, programs

from backend.encoding import encode
from backend.errors import BackendError, DecodeError
from backend.isa import DType, make
from backend.npubin import pack, read, write
from backend.program import Program, Symbol


def _prog() -> Program:
    return Program(
        instrs=[
            make("SETP", pdst=2, value=1, signal=1, comment="from nn.linear %3"),
            make("FINISH"),
        ],
        data=b"\x01\x02\x03",
        dram_size=4096,
        symbols={"x": Symbol("x", 16, (2, 3), DType.FP16, "input")},
        config_name="spatten",
        config_hash=bytes(range(8)),
    )


def test_layout_matches_the_documented_format() -> None:
    p = _prog()
    b = write(p)
    magic, version, flags, chash, nsec, crc = struct.unpack_from("<4sHH8sII", b, 0)
    assert (magic, version, flags, chash, nsec) == (b"NPUB", 1, 0, bytes(range(8)), 3)
    table = [struct.unpack_from("<4sIII", b, 24 + 16 * i) for i in range(3)]
    assert [t[0] for t in table] == [b"CODE", b"DATA", b"META"]
    (_, coff, csize, ccount), (_, doff, dsize, _), (_, moff, msize, _) = table
    assert coff == 96 and csize == 64 and ccount == 2  # 24 + 48 = 72, aligned up to 96
    assert b[coff : coff + 32] == encode(p.instrs[0])
    assert doff == 160 and b[doff : doff + dsize] == b"\x01\x02\x03"
    assert moff == 192 and len(b) == moff + msize + (-msize % 32)
    meta = json.loads(b[moff : moff + msize])
    assert meta == {
        "comments": [[0, 1, "from nn.linear %3"]],
        "config_name": "spatten",
        "dram_size": 4096,
        "symbols": [{"addr": 16, "dtype": "fp16", "kind": "input", "name": "x", "shape": [2, 3]}],
    }
    assert crc == zlib.crc32(b[72:])
    assert read(b) == p
    assert [i.comment for i in read(b).instrs] == ["from nn.linear %3", ""]


def test_comment_runs_roundtrip() -> None:
    notes = ["a", "a", "", "b  c", "b c", "a", "\n"]
    p = Program(instrs=[make("NOP", comment=c) for c in notes])
    b = write(p)
    meta = json.loads(b[b.index(b'{"comments"') :].rstrip(b"\0"))
    assert meta["comments"] == [[0, 2, "a"], [3, 2, "b c"], [5, 1, "a"]]
    assert [i.comment for i in read(b).instrs] == ["a", "a", "", "b c", "b c", "a", ""]


def test_deterministic_and_empty_program() -> None:
    assert write(_prog()) == write(_prog())
    empty = Program()
    assert read(write(empty)) == empty


@PROGRAM_SETTINGS
@given(programs())
def test_roundtrip_random_programs(p: Program) -> None:
    b = write(p)
    q = read(b)
    assert q == p and write(q) == b
    assert [i.comment for i in q.instrs] == [" ".join(i.comment.split()) for i in p.instrs]


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_rejected(b: bytes) -> None:
    with pytest.raises(DecodeError, match=r"^f\.npubin: (instruction \d+ \()?byte offset \d+"):
        read(b, "f.npubin")


@PROGRAM_SETTINGS
@given(programs(), st.data())
def test_corrupted_files_rejected_or_canonical(p: Program, data: st.DataObject) -> None:
    b = bytearray(write(p))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(b) - 1))
        b[pos] = data.draw(st.integers(0, 255))
    try:
        q = read(bytes(b))
    except DecodeError:
        return
    assert write(q) == bytes(b)  # whatever is accepted is exactly what the writer produces


def _container(code: bytes, meta: bytes | None = None, count: int | None = None) -> bytes:
    m = meta if meta is not None else b'{"comments":[],"config_name":"","dram_size":0,"symbols":[]}'
    n = len(code) // 32 if count is None else count
    return pack(bytes(8), [(b"CODE", code, n), (b"DATA", b"", 0), (b"META", m, 0)])


def test_bad_code_names_instruction_and_file_offset() -> None:
    nop = encode(make("NOP"))
    b = _container(nop * 2 + bytes(32))
    with pytest.raises(DecodeError) as e:
        read(b, "k.npubin")
    assert str(e.value) == "k.npubin: instruction 2 (byte offset 160): unknown opcode 0"
    assert (e.value.index, e.value.offset) == (2, 160)
    bad_field = int.from_bytes(encode(make("SETP", pdst=1, value=1)), "little") | 1 << 100
    with pytest.raises(DecodeError, match=r"instruction 1 \(byte offset 140\): setp: reserved"):
        read(_container(nop + bad_field.to_bytes(32, "little")))


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        (b"{", "not valid UTF-8 JSON"),
        (b"\xff", "not valid UTF-8 JSON"),
        (b"[]", "expected an object"),
        (b'{"comments":{},"config_name":"","dram_size":0,"symbols":[]}', "comments must be a list"),
        (b'{"comments":[[0,1]],"config_name":"","dram_size":0,"symbols":[]}', "comment run 0 must"),
        (b'{"comments":[[2,2,"x"]],"config_name":"","dram_size":0,"symbols":[]}', "out of range"),
        (b'{"comments":[[0,0,"x"]],"config_name":"","dram_size":0,"symbols":[]}', "out of range"),
        (
            b'{"comments":[[1,1,"x"],[0,1,"y"]],"config_name":"","dram_size":0,"symbols":[]}',
            "comment run 1 .0, 1. overlaps",
        ),
        (b'{"comments":[[0,1,"a  b"]],"config_name":"","dram_size":0,"symbols":[]}', "canonical"),
        (b'{"comments":[[0,1,""]],"config_name":"","dram_size":0,"symbols":[]}', "empty"),
        (
            b'{"comments":[[0,1,"x"],[1,1,"x"]],"config_name":"","dram_size":0,"symbols":[]}',
            "runs must be maximal",
        ),
        (
            b'{"comments":[],"config_name":1,"dram_size":0,"symbols":[]}',
            "config_name must be a string",
        ),
        (b'{"comments":[],"config_name":"","dram_size":-1,"symbols":[]}', "dram_size"),
        (
            b'{"comments":[],"config_name":"","dram_size":0,"symbols":[1]}',
            "symbol 0 must be an object",
        ),
        (
            b'{"comments":[],"config_name":"","dram_size":0,"symbols":[{"addr":0,"dtype":"fp8","kind":'
            b'"input","name":"a","shape":[]}]}',
            "symbol 0 has a bad field",
        ),
        (b'{"comments":[],"config_name": "","dram_size":0,"symbols":[]}', "not in canonical form"),
    ],
)
def test_bad_meta(meta: bytes, needle: str) -> None:
    b = _container(encode(make("NOP")) * 3, meta)
    with pytest.raises(DecodeError, match="byte offset 192: META: .*" + needle):
        read(b)


def test_structural_errors_name_offsets() -> None:
    good = write(_prog())
    cases = [
        (good[:10], "byte offset 10: file too short"),
        (b"NPUC" + good[4:], "byte offset 0: bad magic"),
        (good[:4] + b"\x02\x00" + good[6:], "byte offset 4: unsupported format version 2"),
        (good[:16] + b"\x04" + good[17:], "byte offset 16: expected 3 sections, found 4"),
        (good + bytes(32), f"offset {len(good)}: file is {len(good) + 32} bytes, sections end"),
        (good[:-1] + b"\x01", "byte offset 20: CRC mismatch"),
        (_container(bytes(32), count=2), "CODE has 32 bytes for 2 instructions"),
    ]
    for b, needle in cases:
        with pytest.raises(DecodeError) as e:
            read(b)
        assert needle in str(e.value), (needle, str(e.value))
        assert isinstance(e.value, BackendError)
