"""SmoothQuant migration (Xiao et al., ICML 2023): move activation outliers into the weights.

Per input channel j of a linear's input X, s_j = max|X_j|^α / max|W_j|^(1−α) (max over every
linear reading X); then W[:, j] ·= s_j and X[:, j] /= s_j. The division is folded into the layer
norm that produces X (gamma /= s, beta /= s), so the float model computes the same function and X
becomes easier to quantize per tensor. Inputs not produced by such a layer norm are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from dialects import nn

if TYPE_CHECKING:
    from passes.quantize import Layer


def _sole_weight(module: ModuleOp, value: SSAValue) -> str | None:
    """The symbol of `value` if it is an nn.weight used once, whose symbol no other op names."""
    op = value.owner
    if not isinstance(op, nn.WeightOp) or value.uses.get_length() != 1:
        return None
    named = sum(1 for o in module.walk() if isinstance(o, nn.WeightOp) and o.symbol == op.symbol)
    return op.symbol if named == 1 else None


def _why_not(module: ModuleOp, x: SSAValue, layers: Sequence[Layer]) -> str | None:
    """Why the producer of `x` cannot absorb the division (None: it can)."""
    prod = x.owner
    if not isinstance(prod, nn.LayerNormOp):
        return f"produced by {getattr(prod, 'name', 'a block argument')}, not nn.layer_norm"
    for what, v in (("gamma", prod.gamma), ("beta", prod.beta)):
        if _sole_weight(module, v) is None:
            return f"the layer norm's {what} is not an nn.weight used only there"
    readers = {id(lay.op) for lay in layers}
    others = [u.operation.name for u in x.uses if id(u.operation) not in readers]
    if others:
        return f"also read by {others[0]} (not a layer being quantized)"
    if any(lay.op.input is not x or lay.op.weight is x for lay in layers):
        return "used as a weight"
    return None


def smoothing_factors(acts: np.ndarray, ws: Sequence[np.ndarray], alpha: float) -> np.ndarray:
    """s_j = max|X_j|^α / max|W_j|^(1−α); 1 where either maximum is 0."""
    a = np.abs(np.asarray(acts, np.float64)).max(axis=0)
    w = np.max([np.abs(np.asarray(m, np.float64)).max(axis=0) for m in ws], axis=0)
    ok = (a > 0) & (w > 0)
    s = np.ones_like(a)
    s[ok] = a[ok] ** alpha / w[ok] ** (1.0 - alpha)
    return s


def smooth_layers(
    module: ModuleOp,
    weights: MutableMapping[str, np.ndarray],
    chosen: Sequence[Layer],
    acts: Mapping[SSAValue, np.ndarray],
    alpha: float,
) -> list[str]:
    """Migrate each chosen layer input's outliers into its weights (new arrays in `weights`); notes
    say which inputs were smoothed and which were left alone, and why."""
    by_input: dict[SSAValue, list[Layer]] = {}
    for lay in chosen:
        by_input.setdefault(lay.op.input, []).append(lay)
    notes: list[str] = []
    for x, layers in by_input.items():
        names = ", ".join(lay.name for lay in layers)
        why = _why_not(module, x, layers)
        if why is not None:
            notes.append(f"smooth: input of {names} left alone: {why}")
            continue
        norm = x.owner
        assert isinstance(norm, nn.LayerNormOp)
        s = smoothing_factors(acts[x], [weights[lay.weight] for lay in layers], alpha)
        for v in (norm.gamma, norm.beta):
            sym = _sole_weight(module, v)
            assert sym is not None
            weights[sym] = (np.asarray(weights[sym], np.float64) / s).astype(np.float32)
        for lay in layers:
            weights[lay.weight] = (np.asarray(weights[lay.weight], np.float64) * s).astype(
                np.float32
            )
        notes.append(
            f"smooth: {names}: {len(s)} channels, factors {float(s.min()):.3g}..{float(s.max()):.3g}"
        )
    return notes
