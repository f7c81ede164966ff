"""The ``.npubin`` container: a compiled program as one deterministic binary file.

Layout (all integers little-endian)::

    0   magic  b"NPUB"
    4   u16    format version (1)
    6   u16    flags (0)
    8   8s     config hash
    16  u32    number of sections
    20  u32    CRC-32 of every byte after the section table
    24  section table: per section 4s tag, u32 offset, u32 size, u32 count (16 bytes each)
        then the sections, each starting on a 32-byte boundary, zero padding between them.

Sections, in this order: ``CODE`` (count instructions of 32 bytes, `backend.encoding`), ``DATA``
(the DRAM image loaded at address 0), ``META`` (UTF-8 JSON, sorted keys, no spaces:
comments as maximal runs ``[first instruction, count, text]``, config_name, dram_size, and the
symbol list in order).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from backend.encoding import decode_all, encode_all
from backend.errors import DecodeError
from backend.isa import INSTR_BYTES, DType
from backend.program import (
    CONFIG_HASH_BYTES,
    SYMBOL_KINDS,
    Program,
    Symbol,
    clean_comment,
    comment_runs,
)

MAGIC = b"NPUB"
VERSION = 1
_HEADER = struct.Struct("<4sHH8sII")
_ENTRY = struct.Struct("<4sIII")
_ALIGN = 32
SECTIONS = (b"CODE", b"DATA", b"META")
assert _HEADER.size == 24 and CONFIG_HASH_BYTES == 8


def _pad(n: int) -> int:
    return -n % _ALIGN


def _meta(program: Program) -> bytes:
    syms = [
        {
            "name": s.name,
            "addr": s.addr,
            "shape": list(s.shape),
            "dtype": s.dtype.asm_name,
            "kind": s.kind,
        }
        for s in program.symbols.values()
    ]
    doc = {
        "comments": [list(r) for r in comment_runs(program.instrs)],
        "config_name": program.config_name,
        "dram_size": program.dram_size,
        "symbols": syms,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pack(config_hash: bytes, sections: list[tuple[bytes, bytes, int]]) -> bytes:
    """Assemble a container from ``(tag, payload, count)`` sections (no validation of payloads)."""
    return b"".join(pack_chunks(config_hash, sections))


def pack_chunks(config_hash: bytes, sections: list[tuple[bytes, bytes, int]]) -> list[bytes]:
    """`pack`'s bytes as pieces whose concatenation is the container; payloads are referenced,
    not copied (a 200 MB data image is not held three times over while it is written)."""
    if len(config_hash) != CONFIG_HASH_BYTES:
        raise ValueError(f"config hash must be {CONFIG_HASH_BYTES} bytes")
    table_end = _HEADER.size + _ENTRY.size * len(sections)
    pos = table_end + _pad(table_end)
    entries: list[bytes] = []
    body: list[bytes] = [bytes(_pad(table_end))]
    for tag, payload, count in sections:
        entries.append(_ENTRY.pack(tag, pos, len(payload), count))
        body += [payload, bytes(_pad(len(payload)))]
        pos += len(payload) + _pad(len(payload))
    crc = 0
    for piece in body:
        crc = zlib.crc32(piece, crc)
    head = _HEADER.pack(MAGIC, VERSION, 0, config_hash, len(sections), crc)
    return [head, *entries, *body]


def _sections(program: Program) -> list[tuple[bytes, bytes, int]]:
    return [
        (b"CODE", encode_all(program.instrs), len(program.instrs)),
        (b"DATA", program.data, 0),
        (b"META", _meta(program), 0),
    ]


def write(program: Program) -> bytes:
    """The ``.npubin`` bytes of ``program`` (deterministic)."""
    return pack(program.config_hash, _sections(program))


def write_file(program: Program, path: str | os.PathLike[str]) -> tuple[int, int]:
    """Write `write`'s bytes to ``path`` piece by piece; returns the DATA section's
    (offset, size), as `data_span`."""
    chunks = pack_chunks(program.config_hash, _sections(program))
    with open(path, "wb") as f:
        for c in chunks:
            f.write(c)
    return data_span(b"".join(chunks[: 1 + len(SECTIONS)]))


def data_span(blob: bytes) -> tuple[int, int]:
    """(offset, size) of the DATA section in ``.npubin`` bytes written by `write`."""
    for i in range(len(SECTIONS)):
        tag, off, size, _ = _ENTRY.unpack_from(blob, _HEADER.size + i * _ENTRY.size)
        if tag == b"DATA":
            return off, size
    raise DecodeError("no DATA section", 0)  # pragma: no cover - `write` always emits one


def read(data: bytes, filename: str = "<npubin>") -> Program:
    """Parse ``.npubin`` bytes; raises DecodeError naming the byte offset (and instruction)."""
    try:
        return _read(bytes(data))
    except DecodeError as e:
        raise DecodeError(e.detail, e.offset, e.index, filename) from None


def _read(data: bytes) -> Program:
    if len(data) < _HEADER.size:
        raise DecodeError(f"file too short ({len(data)} bytes) for the header", len(data))
    magic, version, flags, chash, nsec, crc = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise DecodeError(f"bad magic {magic!r} (expected {MAGIC!r})", 0)
    if version != VERSION:
        raise DecodeError(f"unsupported format version {version} (expected {VERSION})", 4)
    if flags:
        raise DecodeError(f"unknown flags {flags:#x}", 6)
    if nsec != len(SECTIONS):
        raise DecodeError(f"expected {len(SECTIONS)} sections, found {nsec}", 16)
    table_end = _HEADER.size + _ENTRY.size * nsec
    if len(data) < table_end:
        raise DecodeError("file too short for the section table", len(data))
    pos = table_end + _pad(table_end)
    found: dict[bytes, tuple[int, int, int]] = {}
    for i, want in enumerate(SECTIONS):
        at = _HEADER.size + i * _ENTRY.size
        tag, off, size, count = _ENTRY.unpack_from(data, at)
        if tag != want:
            raise DecodeError(f"section {i} has tag {tag!r}, expected {want!r}", at)
        if off != pos:
            raise DecodeError(f"section {want.decode()} at offset {off}, expected {pos}", at + 4)
        if off + size > len(data):
            raise DecodeError(f"section {want.decode()} runs past the end of the file", at + 8)
        if want != b"CODE" and count:
            raise DecodeError(f"section {want.decode()} has nonzero count {count}", at + 12)
        found[want] = (off, size, count)
        pos = off + size + _pad(size)
    if pos != len(data):
        raise DecodeError(f"file is {len(data)} bytes, sections end at {pos}", min(pos, len(data)))
    if zlib.crc32(data[table_end:]) != crc:
        raise DecodeError("CRC mismatch: the file is corrupt", 20)
    for tag, (off, size, _) in found.items():
        end = off + size
        pad_end = end + _pad(size)
        if any(data[end:pad_end]):
            raise DecodeError(f"nonzero padding after section {tag.decode()}", end)
    if any(data[table_end : table_end + _pad(table_end)]):
        raise DecodeError("nonzero padding after the section table", table_end)

    off, size, count = found[b"CODE"]
    if size != count * INSTR_BYTES:
        raise DecodeError(f"CODE has {size} bytes for {count} instructions", _HEADER.size + 8)
    instrs = decode_all(data[off : off + size], off)
    doff, dsize, _ = found[b"DATA"]
    moff, msize, _ = found[b"META"]
    name, dram_size, symbols, runs = _parse_meta(data[moff : moff + msize], moff, len(instrs))
    for start, count, text in runs:
        for n in range(start, start + count):
            instrs[n] = replace(instrs[n], comment=text)
    return Program(instrs, data[doff : doff + dsize], dram_size, symbols, name, chash)


def _parse_meta(
    raw: bytes, off: int, ninstrs: int
) -> tuple[str, int, dict[str, Symbol], list[tuple[int, int, str]]]:
    def bad(msg: str) -> DecodeError:
        return DecodeError(f"META: {msg}", off)

    try:
        doc: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise bad(f"not valid UTF-8 JSON ({e})") from None
    top = {"comments", "config_name", "dram_size", "symbols"}
    if not isinstance(doc, dict) or set(doc) != top:
        raise bad("expected an object with keys " + ", ".join(sorted(top)))
    name, dram, syms = doc["config_name"], doc["dram_size"], doc["symbols"]
    if not isinstance(name, str):
        raise bad("config_name must be a string")
    if type(dram) is not int or not 0 <= dram <= 1 << 32:
        raise bad("dram_size must be an integer in 0..2^32")
    if not isinstance(syms, list):
        raise bad("symbols must be a list")
    out: dict[str, Symbol] = {}
    keys = {"name", "addr", "shape", "dtype", "kind"}
    for i, s in enumerate(syms):
        if not isinstance(s, dict) or set(s) != keys:
            raise bad(f"symbol {i} must be an object with keys {', '.join(sorted(keys))}")
        sname, addr, shape, dt, kind = (s[k] for k in ("name", "addr", "shape", "dtype", "kind"))
        ok = (
            isinstance(sname, str)
            and type(addr) is int
            and 0 <= addr < 1 << 32
            and isinstance(shape, list)
            and all(type(d) is int and 0 <= d < 1 << 32 for d in shape)
            and dt in {d.asm_name for d in DType}
            and kind in SYMBOL_KINDS
        )
        if not ok:
            raise bad(f"symbol {i} has a bad field")
        if sname in out:
            raise bad(f"duplicate symbol {sname!r}")
        out[sname] = Symbol(sname, addr, tuple(shape), DType[dt.upper()], kind)
    runs = _parse_comments(doc["comments"], ninstrs, bad)
    if json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() != raw:
        raise bad("not in canonical form (sorted keys, no spaces)")
    return name, dram, out, runs


def _parse_comments(
    runs: Any, ninstrs: int, bad: Callable[[str], DecodeError]
) -> list[tuple[int, int, str]]:
    """Validate the instruction comments: maximal, ordered runs [first, count, text]."""
    if not isinstance(runs, list):
        raise bad("comments must be a list")
    out: list[tuple[int, int, str]] = []
    end = 0
    for i, r in enumerate(runs):
        ok = (
            isinstance(r, list)
            and len(r) == 3
            and type(r[0]) is int
            and type(r[1]) is int
            and isinstance(r[2], str)
        )
        if not ok:
            raise bad(f"comment run {i} must be [first, count, text]")
        start, count, text = r
        if start < end or count < 1 or start + count > ninstrs:
            raise bad(f"comment run {i} ({start}, {count}) overlaps or is out of range")
        if not text or clean_comment(text) != text:
            raise bad(f"comment run {i} text is empty or not in canonical form")
        if out and start == end and out[-1][2] == text:
            raise bad(f"comment run {i} continues run {i - 1} (runs must be maximal)")
        out.append((start, count, text))
        end = start + count
    return out
