"""cse: merge identical pure ops (e.g. two nn.weight of the same symbol)."""

from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination


class CommonSubexpressionEliminationPass(CommonSubexpressionElimination):
    """xDSL's common-subexpression elimination over nn's pure ops."""

    name = "cse"
