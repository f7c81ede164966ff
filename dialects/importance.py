"""Checks shared by the token-importance ops (tokens.importance, tokens.quant_importance,
tokens.masked_importance, quant.progressive_kv_importance): the scoring kind and the prior scores."""

from __future__ import annotations

from collections.abc import Mapping

from xdsl.dialects.builtin import f32
from xdsl.ir import Attribute

from dialects.nn_base import PropValue, ShapeError, tensor


def check_kind(name: str, props: Mapping[str, PropValue], kinds: tuple[str, ...]) -> None:
    """``kind`` is one of ``kinds``; "cls" scoring needs a CLS token every query sees."""
    kind = props.get("kind")
    if kind not in kinds:
        raise ShapeError(f"{name}: kind must be one of {kinds}, got {kind!r}")
    if kind == "cls" and props.get("causal"):
        raise ShapeError(
            f'{name}: kind "cls" needs a CLS token every query sees; causal attention has none'
        )


def check_prior(name: str, prior: Attribute, keys: int) -> None:
    """An accumulated prior holds one fp32 score per key."""
    if prior != tensor((keys,), f32):
        raise ShapeError(
            f"{name}: prior must be tensor<{keys}xf32> (one score per key), got {prior}"
        )
