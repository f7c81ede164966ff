"""`wisp import`'s output pair, NAME.mlir + NAME.weights.npz: both are written to temporary files
beside their targets and renamed only once both are complete, so a failed import leaves nothing (and
never half of the pair). An existing target is replaced only if it looks like what wisp writes there
(IR text, an .npz), unless ``force``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from compiler.errors import WispError
from compiler.io_util import SAFE_MEMBER, _umask
from compiler.ir import print_module
from compiler.model import Model

_LOOKS_LIKE = {".mlir": (b"builtin.module", b"module", b"func.func", b"//"), ".npz": (b"PK",)}


def weights_path_for(mlir: Path) -> Path:
    return mlir.with_name(mlir.name.removesuffix(".mlir") + ".weights.npz")


def check_pair(mlir: Path, weights: Path, force: bool) -> None:
    """Raise WispError if writing either file would destroy something the user did not ask to lose."""
    for path in (mlir, weights):
        if not os.path.lexists(path):
            if not path.parent.is_dir():
                raise WispError(f"{path}: directory {path.parent} does not exist")
            continue
        if path.is_symlink():
            if not force:
                raise WispError(f"{path}: is a symbolic link; not replacing it (pass --force)")
            continue
        if path.is_dir():
            raise WispError(f"{path}: is a directory; cannot write a file there")
        if not path.is_file():
            raise WispError(f"{path}: exists and is not a regular file; not replacing it")
        if force:
            continue
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
        if head and not head.startswith(_LOOKS_LIKE[path.suffix]):
            raise WispError(
                f"{path}: exists and does not look like a wisp output; not replacing it "
                "(pass --force to replace)"
            )


def write_pair(model: Model, mlir: Path, weights: Path) -> None:
    """Write the model's IR and weights; both targets change, or neither does."""
    arrays = {k: model.weights[k] for k in model.weights}
    for name in arrays:
        if not SAFE_MEMBER.match(name) or name in (".", ".."):
            raise WispError(f"{weights}: array name {name!r} is not a plain name; cannot save it")
    temps: list[str] = []
    try:
        for path in (weights, mlir):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append(tmp)
            with os.fdopen(fd, "wb") as f:
                if path is weights:
                    np.savez(f, **dict(sorted(arrays.items())))  # pyright: ignore[reportArgumentType]
                else:
                    f.write(print_module(model.module).encode())
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(temps[0], weights)
        os.replace(temps[1], mlir)
    except OSError as e:
        raise WispError(f"{mlir}: cannot write: {e.strerror or e}") from None
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
