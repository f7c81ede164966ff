"""Atomic outputs: a file or directory appears whole or not at all, with the permissions the umask gives."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from compiler.errors import WispError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block succeeds (mode 0666 & ~umask)."""
    path = Path(path)
    if path.is_dir():
        raise WispError(f"{path}: is a directory; cannot write a file there")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise WispError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise WispError(f"{path}: cannot write: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_file(path) as f:
        f.write(text.encode())


SAFE_MEMBER = re.compile(r"[^/\\\x00]+\Z")
STAGING_NAME = re.compile(r"^\..+\.(staging|old)-[^/]*$")


def is_staging_leftover(path: str | os.PathLike[str]) -> bool:
    """True for a staging or old-copy directory name that `staged_directory` creates."""
    return bool(STAGING_NAME.match(Path(path).name))


@contextmanager
def staged_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh staging directory beside `target`; on success it replaces `target`, on failure it
    is removed and `target` is left as it was. OS errors name `target`, not the staging directory.
    Callers decide first whether `target` may be replaced (`compiler.output_guard`)."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    except OSError as e:
        raise WispError(f"{target}: cannot create output: {e.strerror or e}") from None
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp creates 0700
        old = None
        if os.path.lexists(target):
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, old / "dir")
        os.replace(stage, target)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        raise WispError(f"{target}: cannot write output: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_npz(path: str | os.PathLike[str], what: str = "arrays") -> dict[str, np.ndarray]:
    """Named arrays from a `.npz`; a missing or malformed file is one WispError naming it (and the
    array, when one member is bad). Only regular files are read (no devices or FIFOs)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise WispError(f"{path}: {what} file is not a regular file")
            with np.load(f, allow_pickle=False) as data:
                if not hasattr(data, "files"):  # a .npy holds one unnamed array
                    raise WispError(
                        f"{path}: not a valid .npz {what} file (a .npy file, not a .npz of named arrays)"
                    )
                out: dict[str, np.ndarray] = {}
                for k in data.files:
                    try:
                        value = data[k]
                    except Exception as e:  # noqa: BLE001 - any decoder failure is the file's fault
                        raise WispError(f"{path}: array '{k}': cannot read ({_why(e)})") from None
                    if not isinstance(value, np.ndarray):  # numpy hands back raw bytes
                        raise WispError(f"{path}: array '{k}': cannot read (not a .npy array)")
                    out[k] = value
                return out
    except WispError:
        raise
    except FileNotFoundError:
        raise WispError(f"{path}: {what} file not found") from None
    except Exception as e:  # noqa: BLE001 - zip/npy parsing raises many types; all mean a bad file
        raise WispError(f"{path}: not a valid .npz {what} file ({_why(e)})") from None


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays as an uncompressed `.npz`, atomically, in sorted key order. Names become
    zip member names, so they must be plain names (no path separators, no '..')."""
    for name in arrays:
        if not SAFE_MEMBER.match(name) or name in (".", ".."):
            raise WispError(f"{path}: array name {name!r} is not a plain name; cannot save it")
    with atomic_file(path) as f:
        np.savez(f, **dict(sorted(arrays.items())))  # pyright: ignore[reportArgumentType]
