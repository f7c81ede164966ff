"""IR plumbing: the context with wisp's dialects, parsing with source locations, verification that names
the failing op and its place, and printing."""

from __future__ import annotations

import io
import re

from xdsl.context import Context
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr
from xdsl.ir import Dialect, Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError
from xdsl.utils.mlir_lexer import MLIRLexer

from compiler.errors import WispError
from passes.context import PassContext

# xDSL 0.74's string-literal regex nests `+` inside `*`, so an unterminated "... on a long line
# backtracks exponentially (40 characters take hours). The same language without the nesting:
MLIRLexer._unescaped_characters_regex = re.compile(
    r'"(?:[^"\\\n\v\f]|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*"'
)


def make_context() -> PassContext:
    """A context with only the dialects wisp uses, registered lazily (weights are attached later)."""
    ctx = PassContext()
    from xdsl.dialects.arith import Arith
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func

    from dialects.nn import NN
    from dialects.quant import QUANT
    from dialects.tokens import Tokens

    ctx.load_dialect(Builtin)
    ctx.register_dialect("func", lambda: Func)
    ctx.register_dialect("arith", lambda: Arith)
    ctx.register_dialect("nn", lambda: NN)
    ctx.register_dialect("quant", lambda: QUANT)
    ctx.register_dialect("tokens", lambda: Tokens)
    ctx.register_dialect("npu", _npu)
    return ctx


def _npu() -> Dialect:
    from backend.npu_dialect import NPU

    return NPU


class LocatingParser(Parser):
    """A parser that records each op's file:line:col as its MLIR location (not printed by default).

    `line_offset` shifts lines for a chunk of a larger file (wisp-opt --split-input-file)."""

    def __init__(
        self, ctx: Context, text: str, name: str = "<unknown>", line_offset: int = 0
    ) -> None:
        super().__init__(ctx, text, name)
        self.line_offset = line_offset

    def parse_module(self, allow_implicit_module: bool = True) -> ModuleOp:
        """Parse; xDSL errors that escape as other exceptions (e.g. ValueError for an invalid block
        name) become a ParseError at the current token, so every failure has a place."""
        try:
            return super().parse_module(allow_implicit_module)
        except ParseError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AssertionError) as e:
            first = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
            self.raise_error(first or type(e).__name__)

    def parse_operation(self) -> Operation:
        start = self._current_token.span.get_location()
        op = super().parse_operation()
        if not isinstance(op.location, FileLineColLoc):
            op.location = FileLineColLoc(
                StringAttr(start.file), IntAttr(start.line + self.line_offset), IntAttr(start.col)
            )
        return op


def _parse_error_line(e: ParseError) -> str:
    """xDSL's parse error as one line: file:line:col: message."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    where = lines[0].strip() if lines else "<input>"
    message = lines[-1].strip() if len(lines) > 1 else str(e)
    return f"{where}: {message}"


def parse_module(text: str, filename: str = "<input>", *, ctx: Context | None = None) -> ModuleOp:
    """Parse and verify an nn module; every failure is a WispError with file:line:col."""
    try:
        module = LocatingParser(ctx or make_context(), text, filename).parse_module()
    except ParseError as e:
        raise WispError(_parse_error_line(e)) from None
    verify(module)
    return module


def location_of(op: Operation) -> str | None:
    loc = op.location
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    return None


def _root_message(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    text = str(e).strip().splitlines()
    message = text[0] if text else type(e).__name__
    return message.removeprefix("Operation does not verify: ")


def verify(module: Operation, after: str | None = None) -> None:
    """Verify op by op, so the error names the op (and its source place when it has one)."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except Exception as e:  # xDSL raises VerifyException, DiagnosticException or ValueError
            where = location_of(op)
            prefix = f"{where}: " if where else ""
            message = _root_message(e)
            if not message.startswith(op.name):
                message = f"{op.name}: {message}"
            suffix = f" (after pass '{after}')" if after else ""
            raise WispError(f"{prefix}{message}{suffix}") from None


def print_module(module: Operation, *, generic: bool = False) -> str:
    """Print a module in custom (default) or generic form, ending in a newline."""
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=generic).print_op(module)
    stream.write("\n")
    return stream.getvalue()
