"""The npu dialect: one xDSL op per ISA instruction class, generated from `backend.isa.ISA`.

It lives in `backend/` (not `dialects/`) because it is derived from the ISA table and dialects may
not import the backend. Every class field and the header (pred, pneg, wait, signal) is an
inherent property: integers as ``i64`` IntegerAttrs, f32 immediates as ``f32`` FloatAttrs and
enum-like fields (buf, dtype, enum) by name as StringAttrs. The nn op an instruction came from is
a discardable ``comment`` attribute. Ops print and parse in a custom form, the assembly's operand
syntax (`backend.npu_syntax`; fields holding their default are omitted)::

    npu.load dtype=fp16, dst=vec[0x0], dst_stride=16, src_addr=0x45740, src_stride=64, rows=8, cols=16 signal(vector) {comment = "embed"}

and, with ``--print-op-generic``, in xDSL's generic form::

    "npu.load"() <{dtype = "fp16", dst_buf = "vec", dst_off = 0 : i64, ...}> {comment = "embed"} : () -> ()

`to_op`/`from_op` convert between ops and `backend.isa.Instr` (the form lowering and the
scheduler work on), `to_module`/`from_module` between instruction lists and modules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from xdsl.context import Context
from xdsl.dialects.builtin import (
    I64,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    f32,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation
from xdsl.irdl import IRDLOperation, irdl_op_definition, opt_attr_def, prop_def
from xdsl.parser import Parser
from xdsl.printer import Printer

from backend.isa import HEADER, ISA, Field, Instr, InstrClass, make
from backend.npu_syntax import format_body, parse_body, print_op

_HEADER_PROPS = tuple(f for f in HEADER if f.name != "opcode")


def _prop_type(f: Field) -> object:
    if f.kind == "f32":
        return FloatAttr[Float32Type]
    if f.names:
        return StringAttr
    return IntegerAttr[I64]


def _class_name(c: InstrClass) -> str:
    return c.name.capitalize() + "Op"


def _print(self: IRDLOperation, printer: Printer) -> None:
    print_op(printer, from_op(self), self.attributes)


def _parse(cls: type[IRDLOperation], parser: Parser) -> IRDLOperation:
    ins = parse_body(parser, CLASS_OF_OP[cls.name])
    attrs = parser.parse_optional_attr_dict()
    op = to_op(ins)
    op.attributes.update(attrs)
    assert isinstance(op, cls)
    return op


def _make_op(c: InstrClass) -> type[IRDLOperation]:
    body: dict[str, object] = {
        "name": f"npu.{c.mnemonic}",
        "__doc__": f"`{c.mnemonic}` ({c.queue.name.lower()} queue): {c.doc}",
        "comment": opt_attr_def(StringAttr),
        "__module__": __name__,
        "print": _print,
        "parse": classmethod(_parse),
    }
    for f in (*c.fields, *_HEADER_PROPS):
        body[f.name] = prop_def(_prop_type(f))  # type: ignore[arg-type]
    return irdl_op_definition(type(_class_name(c), (IRDLOperation,), body))


NPU_OPS: tuple[type[IRDLOperation], ...] = tuple(_make_op(c) for c in ISA)
OP_OF_CLASS: dict[str, type[IRDLOperation]] = {
    c.name: op for c, op in zip(ISA, NPU_OPS, strict=True)
}
CLASS_OF_OP: dict[str, InstrClass] = {f"npu.{c.mnemonic}": c for c in ISA}
NPU = Dialect("npu", list(NPU_OPS), [])


def _to_attr(f: Field, v: int | float) -> Attribute:
    if f.kind == "f32":
        return FloatAttr(float(v), f32)
    if f.names:
        return StringAttr(f.names[int(v)])
    return IntegerAttr(int(v), i64)


def _from_attr(f: Field, a: Attribute) -> int | float | str:
    if isinstance(a, StringAttr):
        return a.data
    if isinstance(a, FloatAttr):
        return float(a.value.data)
    assert isinstance(a, IntegerAttr)
    return int(a.value.data)


def to_op(ins: Instr) -> Operation:
    """The npu op of one instruction (header fields included)."""
    props: dict[str, Attribute] = {f.name: _to_attr(f, ins.args[f.name]) for f in ins.cls.fields}
    props["pred"] = IntegerAttr(ins.pred, i64)
    props["pneg"] = IntegerAttr(int(ins.pneg), i64)
    props["wait"] = IntegerAttr(ins.wait, i64)
    props["signal"] = IntegerAttr(ins.signal, i64)
    attrs = {"comment": StringAttr(ins.comment)} if ins.comment else {}
    return OP_OF_CLASS[ins.cls.name].create(properties=props, attributes=attrs)


def from_op(op: Operation) -> Instr:
    """The instruction an npu op stands for (validated by `backend.isa.make`)."""
    c = CLASS_OF_OP[op.name]
    args = {f.name: _from_attr(f, op.properties[f.name]) for f in c.fields}
    hdr = {f.name: _from_attr(f, op.properties[f.name]) for f in _HEADER_PROPS}
    comment = op.attributes.get("comment")
    return make(
        c.name,
        pred=int(hdr["pred"]),
        pneg=bool(hdr["pneg"]),
        wait=int(hdr["wait"]),
        signal=int(hdr["signal"]),
        comment=comment.data if isinstance(comment, StringAttr) else "",
        **args,
    )


def to_module(instrs: Iterable[Instr]) -> ModuleOp:
    """A module holding one npu op per instruction, in order."""
    return ModuleOp([to_op(i) for i in instrs])


def from_module(module: ModuleOp) -> list[Instr]:
    """The instructions of a module of npu ops."""
    return [from_op(op) for op in module.ops]


def context() -> Context:
    """An xDSL context with builtin and npu loaded."""
    from xdsl.dialects.builtin import Builtin

    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(NPU)
    return ctx


def format_op(ins: Instr) -> str:
    """One npu op in its custom form (what xDSL prints for `to_op(ins)`)."""
    body = format_body(ins)
    attrs = f" {{comment = {json.dumps(ins.comment)}}}" if ins.comment else ""
    return f"npu.{ins.cls.mnemonic}{' ' + body if body else ''}{attrs}"


def print_instrs(instrs: Iterable[Instr]) -> str:
    """npu IR text of an instruction list: a module in the custom form (fast path, no ops built)."""
    body = "\n".join("  " + format_op(i) for i in instrs)
    return f"builtin.module {{\n{body}\n}}\n" if body else "builtin.module {\n}\n"


def parse_instrs(text: str) -> list[Instr]:
    """Parse npu IR text back into instructions."""
    return from_module(Parser(context(), text).parse_module())
