"""What `-o PATH` may replace: nothing the user did not ask to lose.

A compile output directory carries a marker file (`MARKER`). An existing PATH is replaced only if it
is an empty directory or a directory holding that marker (or, for outputs written before the marker
existed, ``compile.json`` next to ``model.mlir``); a regular file, a symlink, a device or any other
non-empty directory is refused unless the caller passes ``force=True`` (``--force``).
"""

from __future__ import annotations

import os
from pathlib import Path

from compiler.errors import WispError

MARKER = ".wisp-output"
MARKER_TEXT = "written by wisp compile; this directory may be replaced by the next compile\n"
_LEGACY = ("compile.json", "model.mlir")


def is_wisp_output(path: Path) -> bool:
    """True if ``path`` is a directory that wisp wrote (marker, or the legacy file pair)."""
    if path.is_symlink() or not path.is_dir():
        return False
    if (path / MARKER).is_file():
        return True
    return all((path / name).is_file() for name in _LEGACY)


def check_replaceable(path: str | os.PathLike[str], force: bool = False) -> None:
    """Raise WispError unless writing a directory at ``path`` loses nothing the user did not ask to."""
    p = Path(path)
    if p.name in ("", ".", ".."):
        raise WispError(f"{path}: refusing to write an output directory here (give a new name)")
    if not os.path.lexists(p):
        return
    if force:
        if p.is_dir() and not p.is_symlink() and p.resolve() in _protected():
            raise WispError(f"{path}: refusing to replace this directory, even with --force")
        return
    if p.is_symlink():
        raise WispError(f"{path}: is a symbolic link; not replacing it (pass --force to replace)")
    if not p.is_dir():
        kind = "a regular file" if p.is_file() else "not a directory"
        raise WispError(f"{path}: exists and is {kind}; not replacing it (pass --force to replace)")
    if any(p.iterdir()) and not is_wisp_output(p):
        raise WispError(
            f"{path}: directory exists, is not empty and is not a wisp output; "
            "not replacing it (pass --force to replace)"
        )


def _protected() -> set[Path]:
    """Directories never replaced: the working directory, its ancestors and the home directory."""
    cwd = Path.cwd().resolve()
    return {cwd, *cwd.parents, Path.home().resolve()}
