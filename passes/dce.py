"""dce: remove ops whose results are unused and that have no side effects."""

from xdsl.transforms.dead_code_elimination import DeadCodeElimination


class DeadCodeEliminationPass(DeadCodeElimination):
    """Remove unused side-effect-free ops (every nn op is Pure).

    Wraps xDSL's dead-code elimination."""

    name = "dce"
