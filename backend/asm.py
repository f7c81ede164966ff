"""Assembler and disassembler. The lark grammar is generated from the ISA table.

Syntax (one statement per line; ``;`` or ``#`` starts a comment; a trailing comment on an
instruction line becomes `Instr.comment`)::

    .config spatten 0123456789abcdef      ; target config name and hash
    .dram 0x100000                        ; DRAM size in bytes
    .symbol x 0x0 [4,64] fp16 input       ; name addr shape dtype kind
    .data 00ff10...                       ; hex bytes appended to the DRAM image
    .zero 4096                            ; zero bytes appended to the DRAM image
    .incbin "weights.bin"                 ; file (relative to this one) appended to the image
    .incbin "program.npubin", 0x1c0, 4096 ; COUNT bytes of it from byte OFFSET on
    @!p3 matmul mode=int8, a=act[0x0], a_stride=64, ..., k=64 wait(load) signal(vector)

Operands are ``key=value``. A ``<p>_buf``/``<p>_off`` field pair is written ``<p>=buf[off]``;
predicate registers are ``pN``; enum fields take their names; float immediates accept decimal,
hex-float (``0x1.8p-3``) and ``inf``, and are rounded to float32. Fields with a default may be
omitted; the canonical form (`disassemble`) omits them when they hold the default.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import re
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from backend.encoding import encode_int
from backend.errors import AsmError, BackendError, IsaError
from backend.isa import (
    ISA,
    Buf,
    DType,
    Field,
    Instr,
    InstrClass,
    Queue,
    check_header,
    f32_bits,
    to_f32,
)
from backend.program import (
    CONFIG_HASH_BYTES,
    MAX_IMAGE_BYTES,
    SYMBOL_KINDS,
    Program,
    Symbol,
    clean_comment,
)

# ---- operand view of the table ------------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    """One ``key=value`` operand: a single field, or a (buf, off) pair written ``buf[off]``."""

    key: str
    fields: tuple[Field, ...]

    @property
    def grouped(self) -> bool:
        return len(self.fields) == 2


def operands(cls: InstrClass) -> tuple[Operand, ...]:
    """The asm operands of ``cls`` in canonical order (derived from its fields)."""
    return _OPERANDS[cls.name]


def _operands(cls: InstrClass) -> tuple[Operand, ...]:
    names = {f.name for f in cls.fields}
    out: list[Operand] = []
    fs = cls.fields
    i = 0
    while i < len(fs):
        f = fs[i]
        p = f.name[: -len("_buf")]
        if (
            f.kind == "buf"
            and f.name.endswith("_buf")
            and i + 1 < len(fs)
            and fs[i + 1].name == p + "_off"
            and p not in names
        ):
            out.append(Operand(p, (f, fs[i + 1])))
            i += 2
        else:
            out.append(Operand(f.name, (f,)))
            i += 1
    return tuple(out)


_OPERANDS = {c.name: _operands(c) for c in ISA}


# ---- grammar ------------------------------------------------------------------------------------

_TERMINALS = r"""
GUARD: /@!?p[0-9]+/
INT: /[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)/
FLOAT: /[+-]?/ (_INF | _HEXF | _DECF)
_INF: "inf"
_HEXF: /0[xX][0-9a-fA-F]+(\.[0-9a-fA-F]*)?[pP][+-]?[0-9]+/
_DECF: /([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?/
PREG: /p[0-9]+/
HEX: /[0-9a-fA-F]+/
NAME: /[A-Za-z_][A-Za-z0-9_.\-\/:]*/
STRING: /"([^"\\\n]|\\.)*"/
COMMENT: /[;#][^\n]*/
_NL: /\n/
%ignore /[ \t\r]+/
"""


def _lit(s: str) -> str:
    return json.dumps(s)


def _alts(names: tuple[str, ...]) -> str:
    return " | ".join(_lit(n) for n in names)


def _value_rule(cls: InstrClass, op: Operand) -> str:
    if op.grouped:
        return "BUFOP"
    f = op.fields[0]
    if f.kind == "f32":
        return "FLOAT"
    if f.kind == "pred":
        return "PREG"
    if f.kind == "buf":
        return "bufname"
    if f.kind == "dtype":
        return "dtypename"
    if f.kind == "enum":
        return f"e_{cls.mnemonic}_{f.name}"
    return "INT"


@functools.cache
def grammar() -> str:
    """The lark grammar of the assembly language, generated from `ISA`."""
    g = [
        "start: line*",
        "line: [stmt] [COMMENT] _NL",
        "?stmt: instr | directive",
        "instr: [GUARD] body sync*",
        '!sync: ("wait" | "signal") "(" [qname ("," qname)*] ")"',
        "!qname: " + _alts(tuple(q.name.lower() for q in Queue)),
        "?body: " + " | ".join(f"i_{c.mnemonic}" for c in ISA),
        "!bufname: " + _alts(tuple(b.asm_name for b in Buf)),
        "!dtypename: " + _alts(tuple(d.asm_name for d in DType)),
        "cfgname: NAME | STRING",
        "symname: NAME | STRING",
        '?directive: ".config" cfgname HEX -> d_config',
        '    | ".dram" INT -> d_dram',
        '    | ".symbol" symname INT shape dtypename symkind -> d_symbol',
        '    | ".data" HEX -> d_data',
        '    | ".zero" INT -> d_zero',
        '    | ".incbin" STRING ["," INT "," INT] -> d_incbin',
        'shape: "[" [INT ("," INT)*] "]"',
        "!symkind: " + _alts(SYMBOL_KINDS),
    ]
    for c in ISA:
        m = c.mnemonic
        ops = operands(c)
        if not ops:
            g.append(f"!i_{m}: {_lit(m)}")
            continue
        g.append(f'!i_{m}: {_lit(m)} [a_{m} ("," a_{m})*]')
        g.append(
            f"a_{m}: " + "\n    | ".join(f"{_key_terminal(o.key)} {_value_rule(c, o)}" for o in ops)
        )
        for f in c.fields:
            if f.kind == "enum":
                g.append(f"!e_{m}_{f.name}: {_alts(f.choices)}")
    keys = sorted({o.key for c in ISA for o in operands(c)})
    g += [f"{_key_terminal(k)}: /{k}[ \\t]*=/" for k in keys]
    bufs = "|".join(b.asm_name for b in Buf)
    g.append(f"BUFOP: /({bufs})\\[[ \\t]*(0[xX][0-9a-fA-F]+|[0-9]+)[ \\t]*\\]/")
    return "\n".join(g) + "\n" + _TERMINALS


def _key_terminal(key: str) -> str:
    return "K_" + key.upper()


@functools.cache
def _parser() -> Lark:
    return Lark(grammar(), parser="lalr", lexer="contextual", maybe_placeholders=True)


# ---- assembler ----------------------------------------------------------------------------------


def _terminal_text(parser: Lark, name: str) -> str:
    try:
        t = parser.get_terminal(name)
    except KeyError:
        return name
    if t.pattern.type == "str":
        return repr(t.pattern.value)
    if name.startswith("K_"):
        return repr(name[2:].lower() + "=")
    if name == "BUFOP":
        return "buf[offset] (buf: " + "|".join(b.asm_name for b in Buf) + ")"
    return {"_NL": "end of line"}.get(name, name)


def _syntax_error(e: UnexpectedInput, text: str, filename: str) -> AsmError:
    p = _parser()
    line, col = max(e.line, 1), max(e.column, 1)
    if isinstance(e, UnexpectedCharacters):
        m = re.match(r"[^\s,=\[\]()]{1,20}", text[e.pos_in_stream :])
        got = repr(m.group(0) if m else text[e.pos_in_stream : e.pos_in_stream + 1])
        expected = e.allowed or set()
    elif isinstance(e, UnexpectedToken):
        got = "end of line" if e.token.type == "_NL" else reprlib.repr(str(e.token))
        expected = e.expected or set()
    elif isinstance(e, UnexpectedEOF):
        lines = text.split("\n")
        line, col = len(lines), 1
        got = "end of input"
        expected = set(e.expected or ())
    else:  # pragma: no cover - lark has no other subclasses
        got, expected = "input", set()
    exp = sorted({_terminal_text(p, n) for n in expected})
    msg = f"unexpected {got}"
    if exp:
        msg += "; expected " + (", ".join(exp[:12]) + (", ..." if len(exp) > 12 else ""))
    return AsmError(msg, filename, line, col)


class _Asm:
    """One assembly run: turns the parse tree into a Program."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.prog = Program()
        self.data = bytearray()
        self.seen: set[str] = set()

    def err(self, tok: Token | None, msg: str) -> AsmError:
        line = (tok.line or 0) if tok is not None else 0
        col = (tok.column or 0) if tok is not None else 0
        return AsmError(msg, self.filename, line, col)

    def run(self, tree: Tree) -> Program:
        for line in tree.children:
            assert isinstance(line, Tree)
            stmt, comment = line.children
            if isinstance(stmt, Tree):
                if stmt.data == "instr":
                    c = clean_comment(str(comment)[1:]) if isinstance(comment, Token) else ""
                    self.prog.instrs.append(self.instr(stmt, c))
                else:
                    self.directive(stmt)
        self.prog.data = bytes(self.data)
        return self.prog

    # -- values --

    def int_value(self, tok: Token) -> int:
        s = str(tok)
        if len(s) > 40:
            raise self.err(tok, f"integer literal too long ({len(s)} characters)")
        return int(s, 16 if s.lstrip("+-")[:2].lower() == "0x" else 10)

    def float_value(self, tok: Token) -> float:
        s = str(tok)
        try:
            x = float.fromhex(s) if "x" in s.lower() else float(s)
        except (ValueError, OverflowError) as e:
            raise self.err(tok, f"bad float {reprlib.repr(s)}") from e
        y = to_f32(x)
        if math.isinf(y) and "inf" not in s:
            raise self.err(tok, f"float immediate {reprlib.repr(s)} overflows float32")
        return y

    def field_value(self, f: Field, node: Token | Tree) -> tuple[int | float, Token]:
        tok = _first_token(node)
        if f.kind == "f32":
            raw: object = self.float_value(tok)
        elif f.kind == "pred":
            raw = int(str(tok)[1:]) if len(tok) <= 4 else str(tok)
        elif f.kind in ("buf", "dtype", "enum"):
            raw = str(tok)
        else:
            raw = self.int_value(tok)
        try:
            return f.check(raw), tok
        except IsaError as e:
            raise self.err(tok, str(e)) from None

    # -- instructions --

    def instr(self, node: Tree, comment: str) -> Instr:
        guard, body, *syncs = node.children
        assert isinstance(body, Tree)
        mn = body.children[0]
        assert isinstance(mn, Token)
        cls = _BY_RULE[body.data]
        pred, pneg = 0, False
        if isinstance(guard, Token):
            pneg = guard.startswith("@!")
            digits = guard.lstrip("@!p")
            pred = int(digits) if len(digits) <= 3 else 999
            if pred > 15:
                reg = reprlib.repr("p" + digits)[1:-1]
                raise self.err(guard, f"predicate register {reg} does not exist (p0..p15)")
        args: dict[str, int | float] = {}
        ops = {o.key: o for o in operands(cls)}
        keys_seen: set[str] = set()
        for a in body.children[1:]:
            if not isinstance(a, Tree):
                continue
            ktok, value = a.children
            assert isinstance(ktok, Token) and isinstance(value, Token | Tree)
            key = _KEYS[ktok.type]
            if key in keys_seen:
                raise self.err(ktok, f"{cls.mnemonic}: operand '{key}' given twice")
            keys_seen.add(key)
            op = ops[key]
            if op.grouped:
                assert isinstance(value, Token)
                bm = _BUFOP.match(value)
                assert bm is not None
                fb, fo = op.fields
                args[fb.name] = int(Buf[bm.group(1).upper()])
                off = Token("INT", bm.group(2), line=value.line, column=value.column)
                off.column = (value.column or 0) + bm.start(2)
                args[fo.name] = self.field_value(fo, off)[0]
            else:
                args[key] = self.field_value(op.fields[0], value)[0]
        for f in cls.fields:
            if f.name not in args:
                if f.default is None:
                    raise self.err(
                        mn, f"{cls.mnemonic}: missing operand '{_key_of(cls, f)}' ({f.doc})"
                    )
                args[f.name] = f.default
        masks = {"wait": 0, "signal": 0}
        for s in syncs:
            assert isinstance(s, Tree)
            kind = s.children[0]
            assert isinstance(kind, Token)
            for q in s.children[1:]:
                if isinstance(q, Tree):
                    qt = _first_token(q)
                    bit = 1 << Queue[str(qt).upper()]
                    if masks[str(kind)] & bit:
                        raise self.err(qt, f"queue '{qt}' named twice in {kind}(...)")
                    masks[str(kind)] |= bit
        try:
            check_header(cls, pred, masks["wait"], masks["signal"])
        except IsaError as e:
            raise self.err(mn, str(e)) from None
        ordered = {f.name: args[f.name] for f in cls.fields}
        return Instr(cls, ordered, pred, pneg, masks["wait"], masks["signal"], comment)

    # -- directives --

    def name(self, node: Tree | Token | None) -> str:
        try:
            return _name(node)
        except ValueError as e:
            raise self.err(_first_token(node), f"bad string: {e}") from None

    def once(self, tok: Token, what: str) -> None:
        if what in self.seen:
            raise self.err(tok, f"duplicate {what} directive")
        self.seen.add(what)

    def directive(self, node: Tree) -> None:
        first = _first_token(node)
        kids = node.children
        if node.data == "d_config":
            self.once(first, ".config")
            name, h = kids
            assert isinstance(h, Token)
            if len(h) != 2 * CONFIG_HASH_BYTES:
                raise self.err(h, f"config hash must be {2 * CONFIG_HASH_BYTES} hex digits")
            self.prog.config_name = self.name(name)
            self.prog.config_hash = bytes.fromhex(str(h))
        elif node.data == "d_dram":
            self.once(first, ".dram")
            tok = kids[0]
            assert isinstance(tok, Token)
            size = self.int_value(tok)
            if not 0 <= size <= 1 << 32:
                raise self.err(tok, f"DRAM size {size} out of range (0..2^32)")
            self.prog.dram_size = size
        elif node.data == "d_symbol":
            self.symbol(kids)
        elif node.data == "d_data":
            h = kids[0]
            assert isinstance(h, Token)
            if len(h) % 2:
                raise self.err(h, "odd number of hex digits in .data")
            self.data += bytes.fromhex(str(h))
        elif node.data == "d_zero":
            tok = kids[0]
            assert isinstance(tok, Token)
            n = self.int_value(tok)
            if not 0 <= n <= MAX_IMAGE_BYTES - len(self.data):
                raise self.err(
                    tok,
                    f".zero count {n} out of range (the image is limited to {MAX_IMAGE_BYTES} B)",
                )
            self.data += bytes(n)
        elif node.data == "d_incbin":
            tok = kids[0]
            assert isinstance(tok, Token)
            span = None
            if len(kids) == 3 and kids[1] is not None:
                off_t, cnt_t = kids[1], kids[2]
                assert isinstance(off_t, Token) and isinstance(cnt_t, Token)
                span = (self.int_value(off_t), self.int_value(cnt_t))
            self.data += self.incbin(tok, span)

    def incbin(self, tok: Token, span: tuple[int, int] | None = None) -> bytes:
        from backend.incbin import IncbinError, read_incbin

        name = self.name(tok)
        try:
            return read_incbin(self.filename, name, MAX_IMAGE_BYTES - len(self.data), span)
        except IncbinError as e:
            raise self.err(tok, f"cannot read .incbin file {name!r}: {e}") from None

    def symbol(self, kids: list[Tree | Token | None]) -> None:
        name_n, addr_t, shape_n, dt_n, kind_n = kids
        assert isinstance(addr_t, Token) and isinstance(shape_n, Tree)
        assert isinstance(dt_n, Tree) and isinstance(kind_n, Tree)
        name = self.name(name_n)
        if name in self.prog.symbols:
            raise self.err(_first_token(name_n), f"duplicate symbol {name!r}")
        addr = self.int_value(addr_t)
        if not 0 <= addr < 1 << 32:
            raise self.err(addr_t, f"symbol address {addr} out of range (0..2^32-1)")
        shape: list[int] = []
        for d in shape_n.children:
            if isinstance(d, Token):
                v = self.int_value(d)
                if not 0 <= v < 1 << 32:
                    raise self.err(d, f"symbol dimension {v} out of range (0..2^32-1)")
                shape.append(v)
        dtype = DType[str(_first_token(dt_n)).upper()]
        kind = str(_first_token(kind_n))
        self.prog.symbols[name] = Symbol(name, addr, tuple(shape), dtype, kind)


_BY_RULE = {f"i_{c.mnemonic}": c for c in ISA}
_KEYS = {_key_terminal(o.key): o.key for c in ISA for o in operands(c)}
_BUFOP = re.compile(r"(\w+)\[[ \t]*(\w+)[ \t]*\]")


def _key_of(cls: InstrClass, f: Field) -> str:
    for o in operands(cls):
        if f in o.fields:
            return o.key
    return f.name


def _first_token(node: Tree | Token | None) -> Token:
    if isinstance(node, Token):
        return node
    assert isinstance(node, Tree)
    for c in node.children:
        if isinstance(c, Token | Tree):
            return _first_token(c)
    raise AssertionError("empty tree")


def _name(node: Tree | Token | None) -> str:
    """The text of a NAME or (JSON-escaped) STRING token; ValueError on a bad escape."""
    tok = _first_token(node)
    if tok.type == "STRING":
        s = json.loads(str(tok))
        assert isinstance(s, str)
        return s
    return str(tok)


def assemble(text: str, filename: str = "<asm>") -> Program:
    """Assemble ``text`` into a Program; raises AsmError (``file:line:col: message``)."""
    if not text.endswith("\n"):
        text += "\n"
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the parse allocates many small objects; collections make it quadratic
    try:
        tree = _parser().parse(text)
        return _Asm(filename).run(tree)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, filename) from None
    finally:
        if gc_was_enabled:
            gc.enable()


# ---- disassembler -------------------------------------------------------------------------------

_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/:]*\Z")


def format_float(x: float) -> str:
    """The shortest decimal that reads back (rounded to float32) as the float32 ``x``."""
    if not math.isfinite(x):
        return repr(x)
    bits = f32_bits(x)
    for p in range(1, 10):
        s = repr(float(f"{x:.{p}g}"))
        if f32_bits(to_f32(float(s))) == bits:
            return s
    return repr(x)  # pragma: no cover - 9 significant digits always suffice for float32


def _format_name(s: str) -> str:
    return s if _SIMPLE_NAME.match(s) else json.dumps(s)


def _format_field(f: Field, v: int | float) -> str:
    if f.kind == "f32":
        return format_float(float(v))
    if f.kind == "pred":
        return f"p{int(v)}"
    if f.names:
        return f.names[int(v)]
    if f.name.endswith(("_off", "_addr")):
        return hex(int(v))
    return str(int(v))


def _queues(mask: int) -> str:
    return ",".join(q.name.lower() for q in Queue if mask >> q & 1)


_Fmt = Callable[[Mapping[str, int | float]], "str | None"]


def _formatter(o: Operand) -> _Fmt:
    """A function printing operand ``o`` of an args mapping (None when it holds its default)."""
    f = o.fields[0]
    if o.grouped:
        fo = o.fields[1]
        names = f.names
        dflt = (f.default, fo.default) if f.default is not None else None

        def grouped(a: Mapping[str, int | float]) -> str | None:
            b, off = a[f.name], a[fo.name]
            if dflt is not None and (b, off) == dflt:
                return None
            return f"{o.key}={names[int(b)]}[{hex(int(off))}]"

        return grouped

    if f.kind == "f32":
        dbits = None if f.default is None else f32_bits(float(f.default))

        def flt(a: Mapping[str, int | float]) -> str | None:
            v = float(a[f.name])
            return None if f32_bits(v) == dbits else f"{o.key}={format_float(v)}"

        return flt

    def single(a: Mapping[str, int | float]) -> str | None:
        v = a[f.name]
        return None if v == f.default else f"{o.key}={_format_field(f, v)}"

    return single


_FORMATTERS = {c.name: tuple(_formatter(o) for o in operands(c)) for c in ISA}


def format_operands(i: Instr) -> list[str]:
    """The canonical ``key=value`` operands of ``i`` (fields holding their default omitted)."""
    return [t for fmt in _FORMATTERS[i.cls.name] if (t := fmt(i.args)) is not None]


def format_instr(i: Instr) -> str:
    """The canonical one-line assembly of ``i`` (including its comment, if any)."""
    ops = format_operands(i)
    line = i.cls.mnemonic + (" " + ", ".join(ops) if ops else "")
    if i.pred or i.pneg:
        line = f"@{'!' if i.pneg else ''}p{i.pred} {line}"
    if i.wait:
        line += f" wait({_queues(i.wait)})"
    if i.signal:
        line += f" signal({_queues(i.signal)})"
    note = clean_comment(i.comment) if i.comment else ""
    if note:
        line += "  ; " + note
    return line


def disassemble(
    program: Program,
    incbin: str | None = None,
    width: int = 32,
    span: tuple[int, int] | None = None,
) -> str:
    """Canonical assembly text of ``program``.

    With ``incbin``, the DRAM image is referenced as ``.incbin "<incbin>"`` (the caller writes
    ``program.data`` there) instead of inline ``.data`` lines of ``width`` bytes; with ``span``
    (offset, count) as ``.incbin "<incbin>", offset, count``: the image is those bytes of that
    file (e.g. the DATA section of the program's ``.npubin``, `backend.npubin.data_span`).
    """
    out = [
        f".config {_format_name(program.config_name)} {program.config_hash.hex()}",
        f".dram {hex(program.dram_size)}",
    ]
    for s in program.symbols.values():
        shape = ",".join(str(d) for d in s.shape)
        out.append(
            f".symbol {_format_name(s.name)} {hex(s.addr)} [{shape}] {s.dtype.asm_name} {s.kind}"
        )
    if incbin is not None:
        if program.data and span is not None:
            out.append(f".incbin {json.dumps(incbin)}, {hex(span[0])}, {span[1]}")
        elif program.data:
            out.append(f".incbin {json.dumps(incbin)}")
    else:
        out.extend(_data_lines(program.data, width))
    for n, i in enumerate(program.instrs):
        encode_int(i, n)  # raises IsaError (naming the instruction) rather than print bad text
    out.extend(format_instr(i) for i in program.instrs)
    return "\n".join(out) + "\n"


def _data_lines(data: bytes, width: int) -> list[str]:
    out: list[str] = []
    zeros = 0
    for o in range(0, len(data), width):
        chunk = data[o : o + width]
        if len(chunk) == width and not any(chunk):
            zeros += width
            continue
        if zeros:
            out.append(f".zero {zeros}")
            zeros = 0
        out.append(f".data {chunk.hex()}")
    if zeros:
        out.append(f".zero {zeros}")
    return out


# ---- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m backend.asm IN.s -o OUT.npubin`` or ``python -m backend.asm -d IN.npubin``."""
    import argparse
    import sys

    from backend.npubin import read, write

    ap = argparse.ArgumentParser(prog="python -m backend.asm", description=main.__doc__)
    ap.add_argument("input", help="assembly (.s) or, with -d, a .npubin file")
    ap.add_argument("-d", "--disassemble", action="store_true", help="disassemble a .npubin")
    ap.add_argument("-o", "--output", help="output file (default: stdout for -d)")
    args = ap.parse_args(argv)
    try:
        src = Path(args.input)
        if args.disassemble:
            text = disassemble(read(src.read_bytes(), str(src)))
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        else:
            out = Path(args.output) if args.output else src.with_suffix(".npubin")
            out.write_bytes(write(assemble(src.read_text(encoding="utf-8"), str(src))))
    except (BackendError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
