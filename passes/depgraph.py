"""depgraph: the dependency graph of prunable dims (DepGraph, Fang et al. 2023) and its pruning groups.

    dg = analyze(model.module)
    for g in dg.prunable("ffn"):
        for m in g.members:          # removing slot s of g removes m.indices[s, :] along m.axis of m.symbol
            ...

**Slots and members.** A group has `size` slots. Removing slot `s` means: for every member, delete the
entries `member.indices[s, :]` along `member.axis` of weight `member.symbol`; for every value dim, the
activation loses `indices[s, :]` along its (flattened) dims. `indices` is `[size, k]`: k > 1 when a
channel is used k times (e.g. a tensor concatenated with itself: slot i ↔ consumer columns i and i + n).
The same weight may appear in several members (different axes or index sets).

**Kinds.** `embed` (the residual stream: every layer norm, embeddings, classifier input), `ffn` (hidden
units between two linears that read and write the embed dim), `qk_dim` / `v_dim` (the channels of one
attention head: Q and K rows, or V rows and the output projection's columns), `head` (one whole head:
size 1, members are that head's Q/K/V rows and projection columns), `hidden` (other linear → linear
channels, e.g. BERT's pooler), `token` (token dims), `unused` (weight entries nothing reads, e.g.
position rows past the sequence length) and `channel` (anything else).

**Constraints** for a pruning pass: a group with `blocked_by` must not be pruned (an op without a
rule, a function input/output, or a coupling the rules cannot express touches it); a `head` group is
removed whole; `qk_dim` (and `v_dim`) groups with the same `tie` must keep equal sizes (nn.attention has
one qk_dim for all heads); at least one head must stay; a group with `factors` touches a
reshape-factored view (e.g. [S, 64] → [S, 4, 16]) and the removed slots must leave it a full grid.

See docs/depgraph.md for the rule table and the checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx
from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from passes.depgraph_graph import Blocker, DimGraph, build_dim_graph, where
from passes.depgraph_groups import KINDS, Group, Member, ValueDim, find_groups

__all__ = [
    "KINDS",
    "Blocker",
    "DepGraph",
    "DepGraphPass",
    "Group",
    "Member",
    "ValueDim",
    "analyze",
    "annotate",
]


@dataclass
class DepGraph:
    """The result of `analyze`: the dim graph (networkx) and the pruning groups."""

    graph: nx.MultiGraph
    groups: list[Group]
    dims: DimGraph

    def group(self, gid: str) -> Group:
        for g in self.groups:
            if g.id == gid:
                return g
        raise KeyError(gid)

    def of_kind(self, kind: str) -> list[Group]:
        return [g for g in self.groups if g.kind == kind]

    def prunable(self, kind: str | None = None) -> list[Group]:
        return [g for g in self.groups if g.prunable and kind in (None, g.kind)]

    def blocked(self) -> list[Group]:
        return [g for g in self.groups if not g.prunable]

    def to_text(self, title: str = "") -> str:
        from passes.depgraph_report import to_text

        return to_text(self, title)

    def to_dict(self) -> dict[str, object]:
        """The groups as plain data (what `to_json` writes)."""
        from passes.depgraph_report import to_dict

        return to_dict(self)

    def to_json(self, title: str = "") -> str:
        import json

        data = {"model": title, **self.to_dict()} if title else self.to_dict()
        return json.dumps(data, indent=1) + "\n"

    def to_dot(self) -> str:
        from passes.depgraph_report import to_dot

        return to_dot(self)


def analyze(module: ModuleOp) -> DepGraph:
    """Build the dim graph of every function in `module` and its pruning groups (weights not needed)."""
    g = build_dim_graph(module)
    return DepGraph(g.graph, find_groups(g), g)


def iter_blocking(dg: DepGraph) -> Iterator[tuple[Blocker, Group]]:
    for grp in dg.groups:
        for b in grp.blocked_by:
            yield b, grp


ATTR_GROUPS = "depgraph.groups"
ATTR_BLOCKED = "depgraph.blocked"
ATTR_BLOCKS = "depgraph.blocks"


def annotate(module: ModuleOp, dg: DepGraph) -> None:
    """Attach group ids as discardable attributes: `depgraph.groups` (prunable) and `depgraph.blocked`
    on ops owning members, `depgraph.blocks` on the ops that block groups."""
    for op in module.walk():
        for attr in (ATTR_GROUPS, ATTR_BLOCKED, ATTR_BLOCKS):
            op.attributes.pop(attr, None)
    owned: dict[Operation, tuple[list[str], list[str]]] = {}
    for grp in dg.groups:
        for op in grp.ops:
            ok, bad = owned.setdefault(op, ([], []))
            (ok if grp.prunable else bad).append(grp.id)
    blocks: dict[str, list[str]] = {}
    for b, grp in iter_blocking(dg):
        ids = blocks.setdefault(b.where, [])
        if grp.id not in ids:
            ids.append(grp.id)
    for op, (ok, bad) in owned.items():
        if ok:
            op.attributes[ATTR_GROUPS] = ArrayAttr([StringAttr(x) for x in ok])
        if bad:
            op.attributes[ATTR_BLOCKED] = ArrayAttr([StringAttr(x) for x in bad])
    for op in module.walk():
        ids = blocks.get(where(op, dg.dims.names))
        if ids:
            op.attributes[ATTR_BLOCKS] = ArrayAttr([StringAttr(x) for x in ids])


@dataclass(frozen=True)
class DepGraphPass(ModulePass):
    """Find pruning groups (heads, QK/V dims, FFN units, embed dim) and tag ops with their ids.

    Adds `depgraph.groups` / `depgraph.blocked` to ops owning group members and `depgraph.blocks` to ops
    that block groups (no rule, or a coupling the rules cannot express). Changes nothing else."""

    name = "depgraph"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        annotate(op, analyze(op))
