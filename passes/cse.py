"""cse: merge identical pure ops (e.g. two nn.weight of the same symbol)."""

from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination


class CommonSubexpressionEliminationPass(CommonSubexpressionElimination):
    """Merge identical pure ops, such as two nn.weight ops of the same symbol.

    Wraps xDSL's common-subexpression elimination."""

    name = "cse"
