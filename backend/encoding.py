"""Binary encoding of instructions: 256-bit little-endian words, layout from `backend.isa`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from backend.errors import DecodeError, IsaError
from backend.isa import (
    BY_OPCODE,
    HEADER,
    INSTR_BYTES,
    ISA,
    Field,
    Instr,
    InstrClass,
    bits_f32,
    check_header,
    f32_bits,
    to_f32,
)

_K_UINT, _K_INT, _K_F32 = 0, 1, 2

# Per class: (name, shift, mask, kind, lo, hi) for every class field, precomputed once.
_Plan = tuple[tuple[str, int, int, int, int, int], ...]


def _plan(cls: InstrClass) -> _Plan:
    out: list[tuple[str, int, int, int, int, int]] = []
    for f, shift in zip(cls.fields, cls.shifts, strict=True):
        kind = _K_F32 if f.kind == "f32" else _K_INT if f.kind == "int" else _K_UINT
        out.append((f.name, shift, (1 << f.bits) - 1, kind, f.lo, f.hi))
    return tuple(out)


_PLANS: dict[int, _Plan] = {c.opcode: _plan(c) for c in ISA}
_SHIFT = {f.name: sum(h.bits for h in HEADER[:i]) for i, f in enumerate(HEADER)}
_PRED_SH, _PNEG_SH, _WAIT_SH, _SIG_SH = (_SHIFT[n] for n in ("pred", "pneg", "wait", "signal"))
_OPC_MASK = (1 << HEADER[0].bits) - 1


def _field_of(cls: InstrClass, name: str) -> Field:
    return cls.field(name)


def encode_int(instr: Instr, index: int | None = None) -> int:
    """The instruction as a 256-bit integer; raises IsaError on a bad field value."""
    cls = instr.cls
    where = cls.name if index is None else f"instruction {index} ({cls.name})"
    check_header(cls, instr.pred, instr.wait, instr.signal, where)
    w = (
        cls.opcode
        | instr.pred << _PRED_SH
        | int(bool(instr.pneg)) << _PNEG_SH
        | instr.wait << _WAIT_SH
        | instr.signal << _SIG_SH
    )
    args = instr.args
    if len(args) != len(cls.fields):
        extra = set(args) - set(cls.field_index)
        if extra:
            raise IsaError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
    for name, shift, mask, kind, lo, hi in _PLANS[cls.opcode]:
        if name not in args:
            raise IsaError(f"{where}: missing field '{name}'")
        v = args[name]
        if kind == _K_F32:
            if type(v) is not float or v != v or to_f32(v) != v:
                v = _field_of(cls, name).check(v, where)  # normalises, or raises the reason
            w |= f32_bits(float(v)) << shift
        else:
            if type(v) is not int or not lo <= v <= hi:
                v = int(_field_of(cls, name).check(v, where))
            w |= (v & mask) << shift
    return w


def encode(instr: Instr, index: int | None = None) -> bytes:
    """The 32-byte encoding of ``instr``."""
    return encode_int(instr, index).to_bytes(INSTR_BYTES, "little")


def encode_all(instrs: Iterable[Instr]) -> bytes:
    """Concatenated encodings of ``instrs``."""
    return b"".join(encode_int(i, n).to_bytes(INSTR_BYTES, "little") for n, i in enumerate(instrs))


def decode(word: bytes, index: int, offset: int | None = None) -> Instr:
    """Decode one 32-byte word; ``offset`` is its byte offset for errors (default index·32)."""
    base = index * INSTR_BYTES if offset is None else offset
    if len(word) != INSTR_BYTES:
        raise DecodeError(f"instruction word has {len(word)} bytes, expected {INSTR_BYTES}", base)
    return _decode_int(int.from_bytes(word, "little"), index, base)


def _decode_int(w: int, index: int, base: int) -> Instr:
    opcode = w & _OPC_MASK
    cls = BY_OPCODE.get(opcode)
    if cls is None:
        raise DecodeError(f"unknown opcode {opcode}", base, index)
    pred = (w >> _PRED_SH) & 15
    pneg = bool((w >> _PNEG_SH) & 1)
    wait = (w >> _WAIT_SH) & 31
    signal = (w >> _SIG_SH) & 31
    own = 1 << cls.queue
    if wait & own or signal & own:
        which = "wait" if wait & own else "signal"
        raise DecodeError(
            f"{cls.mnemonic}: '{which}' names its own queue '{cls.queue.name.lower()}'",
            base + _SHIFT[which] // 8,
            index,
        )
    used = cls.used_bits
    if w >> used:
        first = used + ((w >> used) & -(w >> used)).bit_length() - 1
        raise DecodeError(f"{cls.mnemonic}: reserved bit {first} is set", base + first // 8, index)
    args: dict[str, int | float] = {}
    for name, shift, mask, kind, lo, hi in _PLANS[opcode]:
        v = (w >> shift) & mask
        if kind == _K_F32:
            f = bits_f32(v)
            if f != f:
                raise DecodeError(
                    f"{cls.mnemonic}: field '{name}' is NaN", base + shift // 8, index
                )
            args[name] = f
            continue
        if kind == _K_INT and v > hi:
            v -= mask + 1
        if not lo <= v <= hi:
            raise DecodeError(
                f"{cls.mnemonic}: field '{name}' value {v} out of range "
                f"({_field_of(cls, name).range_text()})",
                base + shift // 8,
                index,
            )
        args[name] = v
    return Instr(cls, args, pred, pneg, wait, signal)


def decode_all(code: bytes, base_offset: int = 0) -> list[Instr]:
    """Decode a code section; ``base_offset`` is its byte offset in the containing file."""
    if len(code) % INSTR_BYTES:
        raise DecodeError(
            f"code length {len(code)} is not a multiple of {INSTR_BYTES}",
            base_offset + len(code) - len(code) % INSTR_BYTES,
        )
    mv = memoryview(code)
    return [
        _decode_int(
            int.from_bytes(mv[o : o + INSTR_BYTES], "little"), o // INSTR_BYTES, base_offset + o
        )
        for o in range(0, len(code), INSTR_BYTES)
    ]


def instrs_equal(a: Sequence[Instr], b: Sequence[Instr]) -> bool:
    """Bit-exact equality of two instruction lists (distinguishes 0.0 from -0.0)."""
    return len(a) == len(b) and all(
        encode_int(x) == encode_int(y) for x, y in zip(a, b, strict=True)
    )
