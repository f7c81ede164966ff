"""Shared machinery of the nn dialect: one custom syntax and shape inference for every op.

Every nn op prints as

    %r = nn.name %a, %b {prop = value, ...} attributes {...} : (operand types) -> result type

Properties are printed without their builtin types (`heads = 4`, `scale = 0.25`, `causal = false`,
`perm = [1, 0]`, `approximate = "tanh"`) and parsed back to the same attributes, so the custom form and the
generic form round-trip. Each op states its semantics once, in `infer`, which both the verifier and the
builders use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, cast

from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    Float64Type,
    FloatAttr,
    FunctionType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

PropValue = int | float | bool | str | tuple[int, ...]

Shape = tuple[int, ...]


class ShapeError(VerifyException):
    """A shape or attribute rule of an nn op is violated."""


def tensor(shape: Sequence[int], element_type: Attribute) -> TensorType:
    """Build a ranked tensor type."""
    return TensorType(element_type, list(shape))


def shape_of(t: Attribute) -> Shape:
    """The static shape of a ranked tensor type."""
    if not isinstance(t, TensorType):
        raise ShapeError(f"expected a ranked tensor, got {t}")
    return tuple(int(d) for d in cast(TensorType[Attribute], t).get_shape())


def element_of(t: Attribute) -> Attribute:
    if not isinstance(t, TensorType):
        raise ShapeError(f"expected a ranked tensor, got {t}")
    return cast(TensorType[Attribute], t).element_type


def to_attr(value: PropValue) -> Attribute:
    """Convert a Python property value to its builtin attribute."""
    if isinstance(value, bool):
        return BoolAttr.from_bool(value)
    if isinstance(value, int):
        return IntegerAttr(value, 64)
    if isinstance(value, float):
        return FloatAttr(value, 64)
    if isinstance(value, str):
        return StringAttr(value)
    return DenseArrayBase.from_list(i64, list(value))


def from_attr(attr: Attribute) -> PropValue:
    """The Python value of a property attribute made by `to_attr`."""
    if isinstance(attr, IntegerAttr):
        iattr = cast(IntegerAttr[IntegerType], attr)
        value = iattr.value.data
        return bool(value) if iattr.type.width.data == 1 else value
    if isinstance(attr, FloatAttr):
        return float(cast(FloatAttr, attr).value.data)
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, DenseArrayBase):
        return tuple(int(v) for v in cast(DenseArrayBase[IntegerType], attr).get_values())
    raise ShapeError(f"unsupported property attribute {attr}")


def _format_float(value: float) -> str:
    text = repr(float(value))
    if "inf" in text or "nan" in text:
        raise ShapeError(f"non-finite float property {text}")
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _print_prop(printer: Printer, attr: Attribute) -> None:
    value = from_attr(attr)
    if isinstance(value, bool):
        printer.print_string("true" if value else "false")
    elif isinstance(value, int):
        printer.print_string(str(value))
    elif isinstance(value, float):
        printer.print_string(_format_float(value))
    elif isinstance(value, str):
        printer.print_string_literal(value)
    else:
        printer.print_string("[" + ", ".join(str(v) for v in value) + "]")


def _parse_prop(parser: Parser) -> Attribute:
    """Parse one property value written by `_print_prop`."""
    if parser.parse_optional_punctuation("[") is not None:
        values: list[int] = []
        if parser.parse_optional_punctuation("]") is None:
            values.append(parser.parse_integer())
            while parser.parse_optional_punctuation(",") is not None:
                values.append(parser.parse_integer())
            parser.parse_punctuation("]")
        return DenseArrayBase.from_list(i64, values)
    if parser.parse_optional_keyword("true") is not None:
        return BoolAttr.from_bool(True)
    if parser.parse_optional_keyword("false") is not None:
        return BoolAttr.from_bool(False)
    text = parser.parse_optional_str_literal()
    if text is not None:
        return StringAttr(text)
    number = parser.parse_optional_number()
    if number is None:
        parser.raise_error("expected a property value (integer, float, bool, string or [ints])")
    if isinstance(number, float):
        return FloatAttr(number, Float64Type())
    return IntegerAttr(number, 64)


def _end_of_last_token(parser: Parser, start: int) -> int:
    """The end of the text parsed since `start`: `parser.pos` is the start of the *next* token, often on the
    next line, and a span reaching into it makes the diagnostic end with that line instead of the message."""
    text = parser.lexer.input.content
    end = parser.pos
    newline = text.find("\n", start, end)
    if newline != -1:
        end = newline
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


_KIND_NAMES: dict[type, str] = {
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    str: "a string",
    tuple: "a list of integers",
}


class NNOp(IRDLOperation):
    """Base of all nn ops: custom syntax plus shape inference as the single statement of semantics."""

    # Property names in print order, with their Python types (documentation and builder coercion).
    PROPS: ClassVar[Mapping[str, type]] = {}

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        """Return the result type for these operand types and properties, or raise ShapeError."""
        raise NotImplementedError

    @classmethod
    def make(
        cls,
        operands: Sequence[SSAValue],
        result_type: Attribute | None = None,
        **props: PropValue,
    ) -> NNOp:
        """Create the op, coercing Python property values and inferring the result type if absent."""
        coerced: dict[str, PropValue] = {}
        for name, value in props.items():
            want = cls.PROPS.get(name)
            if want is None:
                raise ShapeError(f"{cls.name}: unknown property '{name}'")
            coerced[name] = float(value) if want is float else value  # type: ignore[arg-type]
        if result_type is None:
            result_type = cls.infer([o.type for o in operands], coerced)
        return cls.create(
            operands=list(operands),
            result_types=[result_type],
            properties={k: to_attr(v) for k, v in coerced.items()},
        )

    def prop(self, name: str) -> PropValue:
        return from_attr(self.properties[name])

    def int_prop(self, name: str) -> int:
        return cast(int, self.prop(name))

    def float_prop(self, name: str) -> float:
        return cast(float, self.prop(name))

    def bool_prop(self, name: str) -> bool:
        return cast(bool, self.prop(name))

    def ints_prop(self, name: str) -> tuple[int, ...]:
        return cast(tuple[int, ...], self.prop(name))

    def props_dict(self) -> dict[str, PropValue]:
        return {k: from_attr(v) for k, v in self.properties.items()}

    def verify_(self) -> None:
        for name, want in self.PROPS.items():
            if name not in self.properties:
                raise ShapeError(f"{self.name}: missing property '{name}'")
            value = self.prop(name)
            ok = isinstance(value, tuple) if want is tuple else isinstance(value, want)
            if want is int and isinstance(value, bool):
                ok = False
            if not ok:
                raise ShapeError(
                    f"{self.name}: property '{name}' must be {_KIND_NAMES[want]}, got {value!r}"
                )
        extra = set(self.properties) - set(self.PROPS)
        if extra:
            raise ShapeError(f"{self.name}: unknown properties {sorted(extra)}")
        self.check_result()

    def check_result(self) -> None:
        """Check the result type against `infer` (ops whose result shape is given override this)."""
        inferred = self.infer([o.type for o in self.operands], self.props_dict())
        actual = self.results[0].type
        if inferred != actual:
            raise ShapeError(
                f"{self.name}: result type {actual} does not match inferred {inferred}"
            )

    # ---- custom syntax ------------------------------------------------------------------------

    def print(self, printer: Printer) -> None:
        if self.operands:
            printer.print_string(" ")
            printer.print_list(self.operands, printer.print_operand)
        ordered = [k for k in self.PROPS if k in self.properties] + sorted(
            k for k in self.properties if k not in self.PROPS
        )
        if ordered:
            printer.print_string(" {")
            for i, key in enumerate(ordered):
                if i:
                    printer.print_string(", ")
                printer.print_string(f"{key} = ")
                _print_prop(printer, self.properties[key])
            printer.print_string("}")
        if self.attributes:
            printer.print_string(" attributes ")
            printer.print_attr_dict(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(
            FunctionType.from_lists([o.type for o in self.operands], [self.results[0].type])
        )

    @classmethod
    def parse(cls, parser: Parser) -> NNOp:
        unresolved = []
        first = parser.parse_optional_unresolved_operand()
        if first is not None:
            unresolved.append(first)
            while parser.parse_optional_punctuation(",") is not None:
                unresolved.append(parser.parse_unresolved_operand())
        props: dict[str, Attribute] = {}
        if parser.parse_optional_punctuation("{") is not None:
            if parser.parse_optional_punctuation("}") is None:
                while True:
                    key = parser.parse_identifier(" for a property name")
                    if key in props:
                        parser.raise_error(f"duplicate property '{key}'")
                    parser.parse_punctuation("=")
                    props[key] = _parse_prop(parser)
                    if parser.parse_optional_punctuation(",") is None:
                        break
                parser.parse_punctuation("}")
        attrs = parser.parse_optional_attr_dict_with_keyword()
        parser.parse_punctuation(":")
        pos = parser.pos
        ftype = parser.parse_function_type()
        end = _end_of_last_token(parser, pos)
        inputs = ftype.inputs.data
        if len(inputs) != len(unresolved):
            parser.raise_error(
                f"{cls.name} has {len(unresolved)} operand{'s' if len(unresolved) != 1 else ''}"
                f" but its type lists {len(inputs)}",
                pos,
                end,
            )
        if len(ftype.outputs.data) != 1:
            parser.raise_error(f"{cls.name} has exactly one result", pos, end)
        operands = [parser.resolve_operand(u, t) for u, t in zip(unresolved, inputs, strict=True)]
        return cls.create(
            operands=operands,
            result_types=[ftype.outputs.data[0]],
            properties=props,
            attributes=dict(attrs.data) if attrs is not None else {},
        )


def int_prop(op: str, props: Mapping[str, PropValue], name: str, default: int = 0) -> int:
    """An integer property during inference (booleans and other types are rejected)."""
    value = props.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShapeError(f"{op}: property '{name}' must be an integer, got {value!r}")
    return value


def broadcast_shapes(op: str, a: Shape, b: Shape) -> Shape:
    """Numpy broadcasting of two static shapes."""
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + a
    pb = (1,) * (rank - len(b)) + b
    out: list[int] = []
    for da, db in zip(pa, pb, strict=True):
        if da != db and 1 not in (da, db):
            raise ShapeError(f"{op}: shapes {list(a)} and {list(b)} do not broadcast")
        out.append(max(da, db))
    return tuple(out)


def same_element(op: str, types: Sequence[Attribute]) -> Attribute:
    elems = [element_of(t) for t in types]
    for e in elems[1:]:
        if e != elems[0]:
            raise ShapeError(f"{op}: element types differ ({elems[0]} vs {e})")
    return elems[0]


__all__ = [
    "NNOp",
    "PropValue",
    "Shape",
    "ShapeError",
    "broadcast_shapes",
    "int_prop",
    "element_of",
    "same_element",
    "shape_of",
    "tensor",
]
