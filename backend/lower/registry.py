"""The table of lowering rules: nn op class → function emitting its npu instructions."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.ir import Operation

from backend.lower.context import LowerCtx
from backend.lower.env import Env, Value

Rule = Callable[[LowerCtx, Operation, Env], Value]
RULES: dict[type[Operation], Rule] = {}


def rule(*op_classes: type[Operation]) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the lowering of ``op_classes`` (one rule per class)."""

    def deco(fn: Rule) -> Rule:
        for c in op_classes:
            assert c not in RULES, f"two lowering rules for {c.__name__}"
            RULES[c] = fn
        return fn

    return deco
