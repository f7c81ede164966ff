"""FACT work skipping in the tokens dialect: `tokens.key_linear` (K/V rows no query selects).

Kept apart from dialects/tokens.py (which registers it) to keep files small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.ir import Attribute
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure

from dialects.nn import LinearOp
from dialects.nn_base import NNOp, PropValue, ShapeError, int_prop, shape_of


@irdl_op_definition
class KeyLinearOp(NNOp):
    """nn.linear computed only on the key rows some query selects (FACT: K/V generation skipped
    for unselected tokens), in row tiles of `tile`: row tile t = [t·tile, (t+1)·tile) is computed
    iff mask[h, i, j] ≠ 0 for some head h, query i and key j in the tile; the rows of a skipped
    tile are 0 (the masked attention never reads them). `mask` is tokens.predict's [heads, n, n].

        %k = tokens.key_linear %x, %m, %wk, %bk {tile = 16} : (tensor<65x64xf32>, tensor<4x65x65xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
    """

    name = "tokens.key_linear"
    PROPS: ClassVar[Mapping[str, type]] = {"tile": int}
    input = operand_def()
    mask = operand_def()
    weight = operand_def()
    bias = opt_operand_def()
    tile = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    @classmethod
    def infer(cls, operand_types: Sequence[Attribute], props: Mapping[str, PropValue]) -> Attribute:
        if len(operand_types) not in (3, 4):
            raise ShapeError(f"{cls.name}: expected input, mask, weight and optional bias")
        x, m = shape_of(operand_types[0]), shape_of(operand_types[1])
        if len(x) != 2:
            raise ShapeError(f"{cls.name}: input must be [tokens, features], got {list(x)}")
        if len(m) != 3 or m[2] != x[0]:
            raise ShapeError(
                f"{cls.name}: mask must be [heads, queries, {x[0]}] (tokens.predict), got {list(m)}"
            )
        if int_prop(cls.name, props, "tile") <= 0:
            raise ShapeError(f"{cls.name}: tile must be > 0")
        lin = [operand_types[0], *operand_types[2:]]
        try:
            return LinearOp.infer(lin, {})
        except ShapeError as e:
            raise ShapeError(str(e).replace(LinearOp.name, cls.name)) from None
