"""shape-check: verify every op's shapes and, when weights are present, that they match the IR."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from dialects.nn import WeightOp
from dialects.nn_base import shape_of
from passes.context import PassContext, PassError


@dataclass(frozen=True)
class ShapeCheckPass(ModulePass):
    """Check every op's shapes and that each nn.weight's store entry exists with its declared shape.

    Fails with the op and the shapes involved; changes nothing."""

    name = "shape-check"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in op.walk():
            inner.verify(verify_nested_ops=False)
        weights = ctx.weights if isinstance(ctx, PassContext) else None
        if weights is None:
            return
        for inner in op.walk():
            if isinstance(inner, WeightOp):
                if inner.symbol not in weights:
                    raise PassError(f"nn.weight @{inner.symbol}: missing from the weight store")
                got, want = tuple(weights[inner.symbol].shape), shape_of(inner.result.type)
                if got != want:
                    raise PassError(
                        f"nn.weight @{inner.symbol}: store shape {list(got)} != IR shape {list(want)}"
                    )
