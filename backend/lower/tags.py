"""Layer tags for instruction comments and per-layer reports.

An op that reads a weight `blocks.N.X.*` belongs to `blocks.N.X` (attn, mlp, norm1, ...). An op
without weights takes the block tag of its last operand that has one (a residual add joins the
sublayer it closes; i32 index operands only if nothing else has one). Everything else is `embed` before the first block and `head` after it.
"""

from __future__ import annotations

import re

from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Operation, SSAValue

from dialects import nn

_PREFIXES = ("blocks.", "layers.", "h.")
_BLOCK = re.compile(r"^((?:blocks|layers|h)\.\d+\.[A-Za-z0-9_]+)\.")


def _is_index(v: SSAValue) -> bool:
    elem = getattr(v.type, "element_type", None)
    return isinstance(elem, IntegerType) and elem.width.data == 32


def layer_tags(ops: list[Operation]) -> list[str]:
    """One tag per op of ``ops``."""
    tag_of_value: dict[SSAValue, str] = {}
    tags: list[str] = []
    seen_block = False
    for op in ops:
        tag = ""
        has_weight = False
        for v in op.operands:
            owner = v.owner
            if isinstance(owner, nn.WeightOp):
                has_weight = True
                m = _BLOCK.match(owner.symbol)
                if m:
                    tag = m.group(1)
                    break
        if not tag and not has_weight:
            vals = [v for v in op.operands if v in tag_of_value]
            data = [v for v in vals if not _is_index(v)]  # indices (i32) join no sublayer
            cands = [tag_of_value[v] for v in data or vals]
            block_tags = [t for t in cands if t.startswith(_PREFIXES)]
            tag = block_tags[-1] if block_tags else ""
        if not tag:
            tag = "head" if seen_block else "embed"
        seen_block = seen_block or tag.startswith(_PREFIXES)
        tags.append(tag)
        for r in op.results:
            tag_of_value[r] = tag
    return tags
