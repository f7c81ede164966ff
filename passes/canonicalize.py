"""canonicalize: apply every op's canonicalization patterns, then remove dead ops."""

from xdsl.transforms.canonicalize import CanonicalizePass as XDSLCanonicalizePass


class CanonicalizePass(XDSLCanonicalizePass):
    """Fold identity reshape/transpose/slice/concat and compose chains; remove dead ops.

    xDSL's canonicalizer applies the patterns each nn op declares (dialects/nn_canonicalize.py).

    Example: `%y = nn.reshape %x : (tensor<4x8xf32>) -> tensor<4x8xf32>` folds to `%x`.
    """

    name = "canonicalize"
