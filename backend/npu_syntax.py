"""The custom (readable) syntax of npu ops: the assembly's operand syntax after the op name.

    npu.load dtype=fp16, dst=vec[0x0], dst_stride=16, src_addr=0x45740, src_stride=64, rows=8, cols=16 signal(vector) {comment = "embed"}
    npu.cmp reduce=max, dtype=fp16, src=vec[0x40], rows=1, cols=8, imm=0.5, pdst=p1
    npu.vec op=add, dtype=fp16, dst=vec[0x0], a=vec[0x0], b=vec[0x80], rows=4, cols=64 pred(not p1) wait(load)
    npu.finish

Operands are the assembler's (`backend.asm.operands`): ``key=value``, a ``<p>_buf``/``<p>_off`` pair
written ``<p>=buf[off]``, fields holding their default omitted. Then the header: ``pred(pN)`` or
``pred(not pN)``, ``wait(queues)``, ``signal(queues)``; then the attribute dict (the nn op the
instruction came from, ``comment``). Floats always carry a dot (``1.0e-06``), as MLIR's lexer needs,
and are rounded to float32 as the assembler does.
"""

from __future__ import annotations

import math
from typing import Any

from xdsl.ir import Attribute
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.mlir_lexer import MLIRTokenKind

from backend.asm import format_operands, operands
from backend.errors import IsaError
from backend.isa import ISA, Field, Instr, InstrClass, Queue, make, to_f32

_QUEUES = {q.name.lower(): q for q in Queue}
_FLOAT_KEYS = {c.name: {o.key for o in operands(c) if o.fields[0].kind == "f32"} for c in ISA}


def _mlir_float(text: str) -> str:
    """An asm float spelled so MLIR's lexer reads it as one float token (`1e-06` → `1.0e-06`)."""
    if text in ("inf", "-inf", "nan") or "." in text:
        return text
    mant, e, exp = text.partition("e")
    return f"{mant}.0{e}{exp}"


def format_body(ins: Instr) -> str:
    """Operands and header of `ins` in the custom syntax (no op name, no attributes)."""
    floats = _FLOAT_KEYS[ins.cls.name]
    parts = []
    for t in format_operands(ins):
        key, _, value = t.partition("=")
        parts.append(f"{key}={_mlir_float(value)}" if key in floats else t)
    text = ", ".join(parts)
    header = []
    if ins.pred or ins.pneg:
        header.append(f"pred({'not ' if ins.pneg else ''}p{ins.pred})")
    for key, mask in (("wait", ins.wait), ("signal", ins.signal)):
        if mask:
            header.append(f"{key}({', '.join(q.name.lower() for q in Queue if mask >> q & 1)})")
    return " ".join(t for t in (text, *header) if t)


def print_op(printer: Printer, ins: Instr, attributes: dict[str, Attribute]) -> None:
    """Print the custom form after the op name."""
    body = format_body(ins)
    if body:
        printer.print_string(" " + body)
    printer.print_op_attributes(attributes)


def _parse_pred(parser: Parser) -> int:
    name = parser.parse_identifier(" (a predicate register pN)")
    if not (name.startswith("p") and name[1:].isdigit()):
        parser.raise_error(f"expected a predicate register pN, got '{name}'")
    return int(name[1:])


def _parse_float(parser: Parser) -> float:
    neg = parser.parse_optional_punctuation("-") is not None
    word = parser.parse_optional_keyword_in(("inf", "nan"))
    if word is not None:
        value = math.inf if word == "inf" else math.nan
    else:
        value = float(parser.parse_number())
    return to_f32(-value if neg else value)  # as the assembler: rounded to float32


def _parse_value(parser: Parser, f: Field) -> int | float | str:
    if f.kind == "f32":
        return _parse_float(parser)
    if f.kind == "pred":
        return _parse_pred(parser)
    if f.names:
        return parser.parse_identifier(f" (one of {', '.join(f.names)})")
    return parser.parse_integer(allow_boolean=False)


def _parse_queues(parser: Parser) -> int:
    mask = 0

    def one() -> None:
        nonlocal mask
        name = parser.parse_identifier(" (a queue)")
        if name not in _QUEUES:
            parser.raise_error(f"unknown queue '{name}' (queues: {', '.join(_QUEUES)})")
        mask |= 1 << _QUEUES[name]

    parser.parse_comma_separated_list(parser.Delimiter.PAREN, one)
    return mask


def parse_body(parser: Parser, cls: InstrClass) -> Instr:
    """Parse the custom form's operands and header (after the op name) into a validated Instr."""
    start = parser.pos
    by_key = {o.key: o for o in operands(cls)}
    args: dict[str, Any] = {}
    header: dict[str, int] = {"pred": 0, "pneg": 0, "wait": 0, "signal": 0}
    tok = parser._current_token  # pyright: ignore[reportPrivateUsage]
    first = tok.kind == MLIRTokenKind.BARE_IDENT and tok.text in by_key
    while first or (args and parser.parse_optional_punctuation(",") is not None):
        first = False
        at = parser._current_token.span  # pyright: ignore[reportPrivateUsage]
        key = parser.parse_identifier(" (an operand key)")
        o = by_key.get(key)
        if o is None:
            parser.raise_error(
                f"npu.{cls.mnemonic}: unknown operand '{key}' (operands: {', '.join(by_key)})", at
            )
        if any(f.name in args for f in o.fields):
            parser.raise_error(f"npu.{cls.mnemonic}: operand '{key}' given twice", at)
        parser.parse_punctuation("=")
        if o.grouped:
            buf, off = o.fields
            args[buf.name] = _parse_value(parser, buf)
            parser.parse_punctuation("[")
            args[off.name] = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation("]")
        else:
            args[o.fields[0].name] = _parse_value(parser, o.fields[0])
    if parser.parse_optional_keyword("pred") is not None:
        parser.parse_punctuation("(")
        header["pneg"] = int(parser.parse_optional_keyword("not") is not None)
        header["pred"] = _parse_pred(parser)
        parser.parse_punctuation(")")
    for key in ("wait", "signal"):
        if parser.parse_optional_keyword(key) is not None:
            header[key] = _parse_queues(parser)
    try:
        return make(
            cls.name,
            pred=header["pred"],
            pneg=bool(header["pneg"]),
            wait=header["wait"],
            signal=header["signal"],
            **args,
        )
    except IsaError as e:
        parser.raise_error(str(e), start, start + 1)
