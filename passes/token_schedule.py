"""Keep schedules for token pruning: how many tokens remain after each attention layer.

`keep` is one ratio r or one fraction per layer. With one ratio, `schedule` says how it is used,
as a fraction f_l of the model's tokens kept after layer l (layers before `start` keep all):

- `ramp` (SpAtten): f_l falls linearly from 1 to r, reaching r at the last layer;
- `step`: f_l = r from `start` on (one pruning step);
- `each` (DynamicViT/EViT-style): every layer from `start` keeps r of the tokens entering it, f_l = r^(l−start+1).

With one value per layer, f_l = keep[l] (non-increasing: a pruned token stays pruned).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from passes.context import PassError

SCHEDULES = ("ramp", "step", "each")


def default_start(layers: int) -> int:
    """SpAtten's rule of thumb: skip the first ~15% of the layers."""
    return min(layers - 1, math.ceil(0.15 * layers))


def fractions(keep: Sequence[float], schedule: str, start: int, layers: int) -> list[float]:
    """f_l for every layer (1.0: nothing pruned there)."""
    for v in keep:
        if not 0.0 < v <= 1.0:
            raise PassError(f"keep={v}: a keep ratio must be in (0, 1]")
    if schedule not in SCHEDULES:
        raise PassError(f"schedule={schedule}: unknown (known: {', '.join(SCHEDULES)})")
    if not -1 <= start < layers:
        raise PassError(f"start={start}: the model has {layers} attention layers (0..{layers - 1})")
    if len(keep) == layers and layers > 1:
        for i in range(1, layers):
            if keep[i] > keep[i - 1]:
                raise PassError(
                    f"keep: layer {i} keeps {keep[i]} > layer {i - 1}'s {keep[i - 1]}"
                    " (a pruned token stays pruned, so fractions must not increase)"
                )
        return list(keep)
    if len(keep) != 1:
        raise PassError(
            f"keep: {len(keep)} values for {layers} attention layers (give one ratio or one per layer)"
        )
    r = keep[0]
    s = default_start(layers) if start < 0 else start
    out: list[float] = []
    for layer in range(layers):
        if layer < s:
            out.append(1.0)
        elif schedule == "ramp":
            out.append(1.0 - (1.0 - r) * (layer - s + 1) / (layers - s))
        elif schedule == "step":
            out.append(r)
        else:
            out.append(r ** (layer - s + 1))
    return out


def counts(fracs: Sequence[float], tokens: int, floor: int) -> list[int]:
    """Tokens kept after each layer: round(f_l · tokens), at least `floor`, never increasing."""
    out: list[int] = []
    prev = tokens
    for f in fracs:
        n = min(prev, max(floor, round(f * tokens)))
        out.append(n)
        prev = n
    return out
