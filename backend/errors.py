"""Exceptions raised by the backend (ISA, assembler, binary format, configs, interpreter)."""

from __future__ import annotations


class BackendError(Exception):
    """Base class of every error the backend raises on bad input."""


class IsaError(BackendError, ValueError):
    """An instruction was built or encoded with a bad field value."""


class AsmError(BackendError):
    """Bad assembly text; the message starts with ``file:line:col:``."""

    def __init__(self, message: str, filename: str = "<asm>", line: int = 0, col: int = 0) -> None:
        super().__init__(f"{filename}:{line}:{col}: {message}")
        self.filename = filename
        self.line = line
        self.col = col


class DecodeError(BackendError):
    """Bad binary input; the message names the file (if any), instruction index and byte offset."""

    def __init__(
        self, message: str, offset: int, index: int | None = None, filename: str | None = None
    ) -> None:
        where = (
            f"byte offset {offset}"
            if index is None
            else f"instruction {index} (byte offset {offset})"
        )
        super().__init__(f"{filename}: {where}: {message}" if filename else f"{where}: {message}")
        self.detail = message
        self.offset = offset
        self.index = index
        self.filename = filename


class ConfigError(BackendError):
    """A hardware config file is missing, malformed or inconsistent."""


class SimError(BackendError):
    """The interpreter found an error while running a program (``index``: the instruction)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message if index is None else f"instruction {index}: {message}")
        self.index = index
