"""Build the dim graph of a module from the rule table: nodes are (value, dims), edges carry channel maps.

A node is one dim of a value, or a *composite* of dims that a reshape factors together (its channels are
the row-major flat index over those dims, in increasing dim order). Every node owns a range of a global
channel index space, so channel-level coupling is a union-find over integer pairs (numpy, no Python loop
per channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation, SSAValue

from dialects import nn
from dialects.nn_base import shape_of
from passes.depgraph_rules import Couplings, Dims, Link, NodeKey, apply_rule, ranked


@dataclass(frozen=True)
class Blocker:
    """Why a dim cannot be pruned: the op (name and where it is) and the reason."""

    op: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Node:
    key: NodeKey
    id: int
    size: int
    offset: int
    name: str
    blockers: list[Blocker] = field(default_factory=list)

    @property
    def value(self) -> SSAValue:
        return self.key[0]

    @property
    def dims(self) -> Dims:
        return self.key[1]

    @property
    def weight(self) -> str | None:
        """The weight symbol if this is a single dim of an nn.weight result."""
        owner = self.value.owner
        if isinstance(owner, nn.WeightOp) and len(self.dims) == 1:
            return owner.symbol
        return None


def value_names(module: Operation) -> dict[SSAValue, str]:
    """SSA names as xDSL's printer assigns them (%hint, %hint_1, or %N in print order)."""
    names: dict[SSAValue, str] = {}
    used: dict[str, int] = {}
    counter = 0

    def name(v: SSAValue) -> None:
        nonlocal counter
        if v.name_hint:
            n = used.get(v.name_hint, 0)
            names[v] = f"%{v.name_hint}" + (f"_{n}" if n else "")
            used[v.name_hint] = n + 1
        else:
            names[v] = f"%{counter}"
            counter += 1

    def visit(op: Operation) -> None:
        for r in op.results:
            name(r)
        for region in op.regions:
            for block in region.blocks:
                for a in block.args:
                    name(a)
                for inner in block.ops:
                    visit(inner)

    visit(module)
    return names


def where(op: Operation, names: dict[SSAValue, str]) -> str:
    if op.results:
        return f"{names.get(op.results[0], '%?')} = {op.name}"
    if isinstance(op, FuncOp):
        return f"func.func @{op.sym_name.data}"
    return op.name


def _perm_map(
    shape: tuple[int, ...], src: Dims, dims_map: dict[int, int]
) -> tuple[Dims, np.ndarray]:
    """Channel map of composite `src` through a dim permutation: (dst dims, dst index of each src index)."""
    sizes = [shape[d] for d in src]
    coords = np.unravel_index(np.arange(math.prod(sizes)), sizes)
    dst = [dims_map[d] for d in src]
    order = np.argsort(dst)
    flat = np.ravel_multi_index([coords[i] for i in order], [sizes[i] for i in order])
    return tuple(sorted(dst)), np.asarray(flat)


@dataclass
class DimGraph:
    """The dims, their channel links and the per-channel facts the grouping needs."""

    nodes: dict[NodeKey, Node]
    links: list[Link]
    couplings: Couplings
    names: dict[SSAValue, str]
    graph: nx.MultiGraph
    channels: int


def _propagate_composites(c: Couplings) -> tuple[dict[NodeKey, Operation], set[int]]:
    """Carry each reshape-factored composite through ops that map dims one-to-one; return the
    composites (with the reshape they come from) and the ids of single-dim links they replace."""
    origin: dict[NodeKey, Operation] = {}
    for key, op in c.composites:
        origin.setdefault(key, op)
    by_value: dict[SSAValue, list[tuple[SSAValue, dict[int, int], list[int]]]] = {}
    link_ids: dict[tuple[int, int], list[int]] = {}
    for i, link in enumerate(c.links):
        link_ids.setdefault((id(link.a[0]), id(link.b[0])), []).append(i)
    for a, b, m, _ in c.passthrough:
        ids = link_ids.get((id(a), id(b)), [])
        by_value.setdefault(a, []).append((b, m, ids))
        by_value.setdefault(b, []).append((a, {v: k for k, v in m.items()}, ids))
    dropped: set[int] = set()
    done: set[tuple[frozenset[int], Dims, Dims]] = set()
    work = list(origin)
    while work:
        value, dims = key = work.pop()
        for other, m, ids in by_value.get(value, []):
            if not all(d in m for d in dims):
                continue
            new_dims, flat = _perm_map(shape_of(value.type), dims, m)
            new_key = (other, new_dims)
            for i in ids:
                link = c.links[i]
                mine = link.a if link.a[0] is value else link.b
                if len(mine[1]) == 1 and mine[1][0] in dims:
                    dropped.add(i)
            pair = frozenset((id(value), id(other)))
            if (pair, dims, new_dims) not in done and (pair, new_dims, dims) not in done:
                done.add((pair, dims, new_dims))
                c.links.append(Link(key, new_key, np.arange(flat.size), flat, "factored", None))
            if new_key not in origin:
                origin[new_key] = origin[key]
                work.append(new_key)
    return origin, dropped


def build_dim_graph(module: ModuleOp) -> DimGraph:
    """Apply the rules to every op of every function and lay out nodes and channel ranges."""
    names = value_names(module)
    c = Couplings()
    values: list[SSAValue] = []
    for func in (op for op in module.walk() if isinstance(op, FuncOp)):
        c.op = func
        for arg in func.body.block.args:
            values.append(arg)
            if ranked(arg):
                c.block(arg, None, "function input")
        for op in func.body.block.ops:
            values.extend(op.results)
            apply_rule(op, c)
    composites, dropped = _propagate_composites(c)
    links = [link for i, link in enumerate(c.links) if i not in dropped]

    keys: list[NodeKey] = []
    by_value: dict[SSAValue, list[Dims]] = {}
    for key in composites:
        by_value.setdefault(key[0], []).append(key[1])
    for v in values:
        if ranked(v):
            keys += [(v, (d,)) for d in range(len(shape_of(v.type)))]
            keys += [(v, dims) for dims in sorted(by_value.get(v, []))]
    nodes: dict[NodeKey, Node] = {}
    offset = 0
    for i, key in enumerate(keys):
        shape = shape_of(key[0].type)
        size = math.prod(shape[d] for d in key[1])
        label = names.get(key[0], "%?") + "#" + ",".join(map(str, key[1]))
        nodes[key] = Node(key, i, size, offset, label)
        offset += size

    def blame(op: Operation | None) -> tuple[str, str]:
        return ("?", "?") if op is None else (op.name, where(op, names))

    for key, op, reason in c.blocks:
        nodes[key].blockers.append(Blocker(*blame(op), reason))
    for node in nodes.values():
        if node.size == 1 and not node.blockers:  # removing its only channel would empty the tensor
            owner = node.value.owner
            node.blockers.append(
                Blocker(*blame(owner if isinstance(owner, Operation) else None), "size-1 dim")
            )
    # A composite's dims may not also be coupled one by one (e.g. a token dim flattened into channels).
    linked: dict[NodeKey, list[Link]] = {}
    for link in links:
        linked.setdefault(link.a, []).append(link)
        linked.setdefault(link.b, []).append(link)
    for key, op in composites.items():
        node = nodes[key]
        if key[0].owner is not None and isinstance(key[0].owner, nn.WeightOp):
            node.blockers.append(Blocker(*blame(op), "a weight is reshaped across dims"))
        for d in key[1]:
            single = nodes[(key[0], (d,))]
            node.blockers.extend(single.blockers)
            others = [link.op for link in linked.get(single.key, [])]
            if others:
                by = sorted({where(o, names) for o in others if o is not None}) or ["a reshape"]
                b = Blocker(
                    *blame(op),
                    f"nn.reshape factors dims {list(key[1])} of {names[key[0]]} together, but dim"
                    f" {d} is also coupled on its own by {', '.join(by)} (e.g. a token dim mixed"
                    " with a channel dim)",
                )
                node.blockers.append(b)
                single.blockers.append(b)
    for key, op, _, _ in c.head_marks:
        if sum(1 for k, *_ in c.head_marks if k == key) > 1:
            nodes[key].blockers.append(
                Blocker(*blame(op), "value used as an attention operand twice")
            )

    graph = nx.MultiGraph()
    for node in nodes.values():
        graph.add_node(node.id, name=node.name, size=node.size, weight=node.weight)
    for link in links:
        graph.add_edge(nodes[link.a].id, nodes[link.b].id, kind=link.kind)
    return DimGraph(nodes, links, c, names, graph, offset)


def channel_pairs(g: DimGraph) -> tuple[np.ndarray, np.ndarray]:
    """Every link as pairs of global channel indices."""
    us, vs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for link in g.links:
        a, b = g.nodes[link.a], g.nodes[link.b]
        ia = np.arange(a.size) if link.ia is None else link.ia
        ib = np.arange(b.size) if link.ib is None else link.ib
        if ia.size != ib.size:
            raise AssertionError(f"depgraph: link {a.name} -> {b.name} maps {ia.size} to {ib.size}")
        us.append(ia.astype(np.int64) + a.offset)
        vs.append(ib.astype(np.int64) + b.offset)
    return np.concatenate(us), np.concatenate(vs)


def union_find(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected components of n items under pairs (u, v): each item's label is its component's
    smallest item (hook roots to the smaller root, then jump pointers, until every pair agrees)."""
    parent = np.arange(n, dtype=np.int64)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        lo, hi = np.minimum(pu, pv)[differ], np.maximum(pu, pv)[differ]
        np.minimum.at(parent, hi, lo)
        while True:
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
