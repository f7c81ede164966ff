"""Input conversions that lose nothing but precision: no wrap-around, truncation, complex, overflow.

Converting an input array to the dtype a program (or a model) declares may round floats to a
narrower float format (that is the machine's arithmetic), but it must not change a value in any
other way: integers out of range would wrap, fractional floats would be truncated, complex values
would drop their imaginary part, and finite floats beyond the target's range would become inf.
`lossy_reason` says which of these a conversion would do; callers raise their own error.
"""

from __future__ import annotations

from contextvars import ContextVar

import numpy as np

# The user's opt-in (`wisp --allow-lossy`): convert anyway — saturating integers, truncating
# fractions, dropping imaginary parts, overflowing to inf — instead of refusing.
ALLOW_LOSSY: ContextVar[bool] = ContextVar("allow_lossy", default=False)


def convert(arr: np.ndarray, target: np.dtype, what: str) -> np.ndarray:
    """``arr`` as ``target``; a ValueError naming ``what`` if that would lose information, unless
    `ALLOW_LOSSY` is set (then integers saturate, complex values keep their real part)."""
    why = lossy_reason(arr, target)
    if why is None:
        return arr.astype(target, copy=False)
    if not ALLOW_LOSSY.get():
        raise ValueError(
            f"{what} ({arr.dtype}) cannot become {target}: {why} (--allow-lossy converts anyway)"
        )
    x = np.real(arr) if arr.dtype.kind == "c" else arr
    if target.kind in "iu":
        info = np.iinfo(target)
        x = np.clip(np.nan_to_num(np.asarray(x, np.float64)), info.min, info.max)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x).astype(target)


def lossy_reason(arr: np.ndarray, target: np.dtype) -> str | None:
    """Why converting ``arr`` to ``target`` would lose information (None: it would not)."""
    src = arr.dtype
    if src.kind not in "biufc":
        return f"{src} values are not numbers"
    if src.kind == "c" and target.kind != "c":
        return "complex values (the imaginary part would be dropped)"
    if arr.size == 0:
        return None
    if target.kind in "iu":
        info = np.iinfo(target)
        if src.kind == "f":
            if not np.isfinite(arr).all():
                return f"non-finite values cannot become {target}"
            if not (arr == np.trunc(arr)).all():
                return f"fractional values would be truncated to {target}"
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            return f"values in [{lo}, {hi}] do not fit {target} [{info.min}, {info.max}]"
        return None
    if target.kind == "f":
        if src.kind in "iu" or (src.kind == "f" and src.itemsize > target.itemsize):
            finite = arr[np.isfinite(arr)] if src.kind == "f" else arr
            big = np.abs(finite.astype(np.float64)).max() if finite.size else 0.0
            if big > float(np.finfo(target).max):
                return f"|value| {big:g} overflows {target} (max {np.finfo(target).max:g})"
        return None
    if target.kind == "b" and src.kind != "b":
        return f"{src} values would be reduced to booleans"
    return None
