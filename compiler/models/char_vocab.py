"""The character vocabulary of `char-gpt`: newline + printable ASCII (96 symbols), one id each."""

from __future__ import annotations

import numpy as np

from compiler.errors import WispError

VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))
_INDEX = {ch: i for i, ch in enumerate(VOCAB)}


def encode(text: str, *, where: str = "text") -> np.ndarray:
    """Ids (int32) of `text`; a character outside the vocabulary is a WispError naming it."""
    bad = sorted({ch for ch in text if ch not in _INDEX})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:8]) + (" ..." if len(bad) > 8 else "")
        raise WispError(
            f"{where}: {len(bad)} character(s) outside the model's vocabulary "
            f"(newline and printable ASCII): {shown}"
        )
    return np.fromiter((_INDEX[ch] for ch in text), np.int32, len(text))


def decode(ids: np.ndarray | list[int]) -> str:
    return "".join(VOCAB[int(i)] for i in ids)
