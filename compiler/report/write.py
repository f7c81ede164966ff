"""Write the report's files: every PNG, then the HTML, each atomically; refuse to replace a file
`wisp report` did not write unless forced; remove its own PNGs of an earlier report that this one
does not have."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from compiler.errors import WispError
from compiler.io_util import atomic_file
from compiler.report.page import GENERATOR
from compiler.report.plots import PNG_MARK

_HEAD = 4096  # bytes read to recognise a file as ours


KINDS = ("layers-measured", "layers-static", "queues", "roofline")  # every PNG a report may have
STATIC_KINDS = ("layers-static", "roofline")  # those of a --static report


def png_path(html: Path, kind: str) -> Path:
    """Where the PNG of figure ``kind`` goes: beside the HTML, named after it."""
    return html.with_name(f"{html.stem}-{kind}.png")


def is_ours(path: Path) -> bool:
    """True if ``path`` is a regular file an earlier `wisp report` wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return False
    if path.suffix == ".png":
        return head.startswith(b"\x89PNG") and b"tEXtTitle\x00" + PNG_MARK.encode() in head
    return GENERATOR.encode() in head


def check_writable(paths: list[Path], force: bool) -> None:
    for p in paths:
        if not os.path.lexists(p):
            continue
        if p.is_dir() and not p.is_symlink():
            raise WispError(f"{p}: is a directory; cannot write the report there")
        if not force and not is_ours(p):
            raise WispError(
                f"{p}: exists and was not written by wisp report; not replacing it "
                "(pass --force to replace)"
            )


def write_report(html_path: Path, html: str, pngs: Mapping[str, bytes], force: bool) -> list[Path]:
    """Write the PNGs and the HTML (last); returns the paths written. Nothing is written when any
    target may not be replaced."""
    targets = [png_path(html_path, k) for k in pngs] + [html_path]
    check_writable(targets, force)
    if not html_path.parent.is_dir():
        raise WispError(f"{html_path.parent}: no such directory")
    for kind, data in pngs.items():
        with atomic_file(png_path(html_path, kind)) as f:
            f.write(data)
    with atomic_file(html_path) as f:
        f.write(html.encode("utf-8"))
    for kind in KINDS:  # an earlier report's PNG this one has not (measured, then --static)
        stale = png_path(html_path, kind)
        if kind not in pngs and is_ours(stale):
            stale.unlink()
    return targets
