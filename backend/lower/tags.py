"""Layer tags for instruction comments and per-layer reports.

An op that reads a weight `blocks.N.X.*` belongs to `blocks.N.X` (attn, mlp, norm1, ...). Other
ops take the tag of their most recently defined operand that has one. Ops before the first block
are `embed`, ops after the last block are `head`.
"""

from __future__ import annotations

import re

from xdsl.ir import Operation, SSAValue

from dialects import nn

_BLOCK = re.compile(r"^((?:blocks|layers|h)\.\d+\.[A-Za-z0-9_]+)\.")


def layer_tags(ops: list[Operation]) -> list[str]:
    """One tag per op of ``ops``."""
    tag_of_value: dict[SSAValue, str] = {}
    tags: list[str] = []
    seen_block = False
    for op in ops:
        tag = ""
        for v in op.operands:
            owner = v.owner
            if isinstance(owner, nn.WeightOp):
                m = _BLOCK.match(owner.symbol)
                if m:
                    tag = m.group(1)
                    break
        if not tag:
            cands = [tag_of_value[v] for v in op.operands if v in tag_of_value]
            block_tags = [t for t in cands if t.startswith(("blocks.", "layers.", "h."))]
            if block_tags:
                tag = block_tags[-1]
            elif seen_block:
                tag = "head"
            else:
                tag = "embed"
        if tag.startswith(("blocks.", "layers.", "h.")):
            seen_block = True
        elif seen_block and not isinstance(op, nn.WeightOp):
            tag = "head"
        tags.append(tag)
        for r in op.results:
            tag_of_value[r] = tag
    return tags
