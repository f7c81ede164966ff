"""dce: remove ops whose results are unused and that have no side effects."""

from xdsl.transforms.dead_code_elimination import DeadCodeElimination


class DeadCodeEliminationPass(DeadCodeElimination):
    """xDSL's dead-code elimination (all nn ops are Pure, so any unused nn op is removed)."""

    name = "dce"
