"""Helpers of the `wisp report` tests: parse the page's tables (html.parser) and read PNG headers."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from typing import Any


class Page(HTMLParser):
    """Tables by id (rows of cell texts, header row first), every start tag, the images' sources
    and the page text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict[str, Any]]] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)

    def rows(self, ident: str) -> dict[str, list[str]]:
        """Body rows of a table keyed by their first cell (the header row dropped)."""
        return {r[0]: r[1:] for r in self.tables[ident][1:]}


def number(cell: str) -> float:
    """A table cell's leading number ("1,234", "12.5 %", "35.1 (note)")."""
    m = re.match(r"-?[\d,]+(\.\d+)?", cell.strip())
    assert m, f"not a number: {cell!r}"
    return float(m.group(0).replace(",", ""))


def integer(cell: str) -> int:
    value = number(cell)
    assert value == int(value), cell
    return int(value)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; asserts the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def data_uri_bytes(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    return base64.b64decode(src[len(prefix) :], validate=True)
