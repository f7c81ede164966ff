"""Zoo shape options that follow each other: heads and mlp_dim are derived from dim when not given.

- `heads`: when `dim` is given without `heads`, the head width of the entry's default config is kept
  (64 for every shipped model) — heads = dim / 64 — or, if that does not divide, the divisor of dim
  nearest to it (so dim / heads is always an integer);
- `mlp_dim`: when `dim` is given without `mlp_dim`, the default ratio is kept (4 · dim);
- an explicit combination that cannot work (dim not divisible by heads) is an error naming the options
  and values that would work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from compiler.errors import WispError


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def derived_heads(dim: int, head_dim: int) -> int:
    """The number of heads giving head width closest to `head_dim` (ties: fewer heads)."""
    return min(_divisors(dim), key=lambda h: (abs(dim / h - head_dim), h))


def derive_shape_options(name: str, config: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` completed with heads / mlp_dim derived from dim; WispError if they cannot fit."""
    fields = {f.name for f in dataclasses.fields(config)}
    out = dict(options)
    if not {"dim", "heads"} <= fields:
        return out
    d0, h0 = config.dim, config.heads
    dim = out.get("dim", d0)
    if "dim" in out and "heads" not in out and dim != d0:
        out["heads"] = derived_heads(dim, d0 // h0)
    if "dim" in out and "mlp_dim" not in out and "mlp_dim" in fields and dim != d0:
        out["mlp_dim"] = dim * config.mlp_dim // d0 if (dim * config.mlp_dim) % d0 == 0 else 4 * dim
    heads = out.get("heads", h0)
    if dim % heads:
        given = [k for k in ("dim", "heads") if k in options]
        fits = sorted(sorted(_divisors(dim), key=lambda h: (abs(h - heads), h))[:4])
        hint = (
            f"or omit --heads to derive it (head width {d0 // h0})"
            if "dim" in options
            else f"or pass --dim, a multiple of {heads}"
        )
        raise WispError(
            f"{name}: dim {dim} is not divisible by heads {heads} ({' and '.join(given)} given);"
            f" use --heads {' / '.join(map(str, fits))} for dim {dim}, {hint}"
        )
    return out
