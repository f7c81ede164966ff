"""Canonicalization patterns of nn ops (attached through HasCanonicalizationPatternsTrait)."""

from __future__ import annotations

from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from dialects import nn
from dialects.nn_base import shape_of


class FoldIdentityReshape(RewritePattern):
    """reshape(x : T) -> T  ==>  x;  reshape(reshape(x))  ==>  reshape(x)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReshapeOp, rewriter: PatternRewriter) -> None:
        src = op.input
        if src.type == op.result.type:
            rewriter.replace(op, [], [src])
        elif isinstance(src.owner, nn.ReshapeOp):
            rewriter.replace(op, nn.ReshapeOp.make([src.owner.input], op.result.type))


class FoldTranspose(RewritePattern):
    """Identity permutations vanish; transpose(transpose(x)) composes into one."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.TransposeOp, rewriter: PatternRewriter) -> None:
        perm = op.ints_prop("perm")
        if perm == tuple(range(len(perm))):
            rewriter.replace(op, [], [op.input])
        elif isinstance(inner := op.input.owner, nn.TransposeOp):
            inner_perm = inner.ints_prop("perm")
            composed = tuple(inner_perm[p] for p in perm)
            rewriter.replace(op, nn.TransposeOp.make([inner.input], perm=composed))


class FoldFullSlice(RewritePattern):
    """A slice that takes the whole tensor is its input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.SliceOp, rewriter: PatternRewriter) -> None:
        if shape_of(op.input.type) == shape_of(op.result.type):
            rewriter.replace(op, [], [op.input])


class FoldSingleConcat(RewritePattern):
    """concat of one tensor is that tensor."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ConcatOp, rewriter: PatternRewriter) -> None:
        if len(op.operands) == 1:
            rewriter.replace(op, [], [op.operands[0]])
