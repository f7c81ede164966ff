"""canonicalize: apply every op's canonicalization patterns, then remove dead ops."""

from xdsl.transforms.canonicalize import CanonicalizePass as XDSLCanonicalizePass


class CanonicalizePass(XDSLCanonicalizePass):
    """xDSL's canonicalizer over nn's patterns (identity reshape/transpose/slice/concat folding), with
    dead-code removal after each walk.

    Example: `%y = nn.reshape %x : (tensor<4x8xf32>) -> tensor<4x8xf32>` folds to `%x`.
    """

    name = "canonicalize"
