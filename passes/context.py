"""The pass context: xDSL's Context plus the module's out-of-line weights."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context


class PassError(Exception):
    """A pass cannot run on this input (bad option, missing weights, unsupported op)."""


@dataclass
class PassContext(Context):
    """A Context that also carries the WeightStore (symbol → array) the module's nn.weight ops name."""

    weights: MutableMapping[str, np.ndarray] | None = field(default=None)


def weights_of(ctx: Context, pass_name: str) -> MutableMapping[str, np.ndarray]:
    """The weights a pass may read and replace; a clear error if the module came without them."""
    weights = ctx.weights if isinstance(ctx, PassContext) else None
    if weights is None:
        raise PassError(f"pass '{pass_name}' needs the model's weights (give FILE.weights.npz)")
    return weights
