"""Weights that load but are probably wrong: non-finite values and entries no op uses.

`WeightStore.check` refuses what cannot work (missing entries, wrong shape or dtype). This module
reports what works but is suspicious, as `WispWarning`s naming the file and the array:
NaN/Inf values (every output they reach becomes NaN/Inf) and keys that no `nn.weight` names
(often a misspelled or stale name). `strict=True` turns them into a `WispError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from contextvars import ContextVar

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from compiler.errors import WispError, WispWarning
from dialects.nn import WeightOp

# `wisp --strict`: suspicious weights (and non-finite inputs) are errors, not warnings.
STRICT: ContextVar[bool] = ContextVar("strict", default=False)


def weight_problems(source: str, arrays: Mapping[str, np.ndarray], module: ModuleOp) -> list[str]:
    """One message per suspicious weight (non-finite values, unused keys), naming ``source``."""
    problems: list[str] = []
    for name, arr in arrays.items():
        if arr.dtype.kind in "fc" and arr.size and not np.isfinite(arr).all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(np.isinf(arr).sum())
            problems.append(f"{source}: weight '{name}' has {n_nan} NaN and {n_inf} Inf values")
    used = {op.symbol for op in module.walk() if isinstance(op, WeightOp)}
    extra = sorted(set(arrays) - used)
    if extra:
        shown = ", ".join(extra[:5]) + (f", ... ({len(extra)} in all)" if len(extra) > 5 else "")
        problems.append(f"{source}: weights no nn.weight uses: {shown}")
    return problems


def audit_inputs(source: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Warn (with `STRICT`: one `WispError`) about NaN/Inf values in input arrays."""
    for name, arr in arrays.items():
        a = np.asarray(arr)
        if a.dtype.kind in "fc" and a.size and not np.isfinite(a).all():
            msg = f"{source}: input '{name}' has {int(np.isnan(a).sum())} NaN and {int(np.isinf(a).sum())} Inf values"
            if STRICT.get():
                raise WispError(msg)
            warnings.warn(msg, WispWarning, stacklevel=3)


def audit_weights(
    source: str, arrays: Mapping[str, np.ndarray], module: ModuleOp, strict: bool = False
) -> None:
    """Warn (or with ``strict`` raise `WispError`) about each of `weight_problems`."""
    problems = weight_problems(source, arrays, module)
    if (strict or STRICT.get()) and problems:
        raise WispError(problems[0])
    for p in problems:
        warnings.warn(p, WispWarning, stacklevel=3)
