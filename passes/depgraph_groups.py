"""Pruning groups from the dim graph: channel classes (slots) grouped by the nodes they touch and their
attention head, named by kind; head groups are unions of a head's qk_dim and v_dim groups."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Operation, SSAValue

from dialects import nn
from dialects.nn_base import shape_of
from passes.depgraph_graph import Blocker, DimGraph, Node, channel_pairs, union_find

KINDS = ("embed", "head", "qk_dim", "v_dim", "ffn", "hidden", "token", "unused", "channel")


@dataclass(frozen=True)
class Member:
    """A weight slice: slot s of the group is `indices[s, :]` along `axis` of weight `symbol`."""

    symbol: str
    axis: int
    indices: np.ndarray
    shape: tuple[int, ...]  # the weight's shape (before pruning)


@dataclass(frozen=True)
class ValueDim:
    """An activation dim a group touches: slot s is `indices[s, :]` of the row-major flat index over
    `dims` of `value` (one dim, or several that a reshape factors together)."""

    value: SSAValue
    name: str
    dims: tuple[int, ...]
    indices: np.ndarray


@dataclass
class Group:
    """A pruning group: slots pruned as one unit across all members (see the module docstring)."""

    id: str
    kind: str
    size: int
    members: list[Member]
    values: list[ValueDim]
    blocked_by: list[Blocker]
    tie: str | None = None
    head: tuple[str, int] | None = None  # (attention result name, head index)
    parts: list[str] = field(default_factory=list)  # head groups: their qk_dim / v_dim groups
    # Reshape-factored value dims the group touches ((value name, dims, sizes)): slots must be removed
    # so that each stays a full grid (e.g. the same inner channels in every head of a split-heads view).
    factors: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    ops: list[Operation] = field(default_factory=list)  # ops that own members (IR annotation)
    attention: Operation | None = None  # the nn.attention of a head / qk_dim / v_dim group

    @property
    def prunable(self) -> bool:
        return not self.blocked_by

    @property
    def params_per_slot(self) -> int:
        """Weight entries removed with one slot (summed over members)."""
        return sum(m.indices.shape[1] * math.prod(m.shape) // m.shape[m.axis] for m in self.members)


@dataclass
class _Raw:
    nodes: list[Node]
    indices: list[np.ndarray]
    slots: int
    first: int
    labels: set[int]


def _raw_groups(g: DimGraph) -> tuple[list[_Raw], list[tuple[Operation, str, int]]]:
    """Channel classes (slots) grouped by the exact set of nodes they touch and their head labels."""
    n = g.channels
    if n == 0:
        return [], []
    u, v = channel_pairs(g)
    root = union_find(n, u, v)
    node_list = sorted(g.nodes.values(), key=lambda x: x.id)
    sizes = np.array([x.size for x in node_list], dtype=np.int64)
    node_of = np.repeat(np.arange(len(node_list)), sizes)
    local = np.arange(n) - np.repeat(np.array([x.offset for x in node_list], dtype=np.int64), sizes)
    label = np.full(n, -1, dtype=np.int64)
    table: list[tuple[Operation, str, int]] = []
    for key, op, role, width in g.couplings.head_marks:
        node = g.nodes[key]
        base = len(table)
        table += [(op, role, h) for h in range(node.size // width)]
        label[node.offset : node.offset + node.size] = base + np.arange(node.size) // width
    rng = np.random.default_rng(12345)
    node_hash = rng.integers(1, 2**62, len(node_list), dtype=np.uint64)
    label_hash = rng.integers(1, 2**62, max(len(table), 1), dtype=np.uint64)
    sig = np.zeros(n, np.uint64)
    np.add.at(sig, root, node_hash[node_of])
    lab = np.zeros(n, np.uint64)
    has = label >= 0
    np.add.at(lab, root[has], label_hash[label[has]])
    slots = np.unique(root)
    _, slot_group = np.unique(
        np.stack([sig[slots], lab[slots]], axis=1), axis=0, return_inverse=True
    )
    group_of_slot = np.zeros(n, np.int64)
    group_of_slot[slots] = slot_group.reshape(-1)
    gid = group_of_slot[root]
    order = np.lexsort((local, root, node_of, gid))
    nslots = np.bincount(slot_group.reshape(-1))
    raws: list[_Raw] = []
    bounds = np.flatnonzero(np.diff(gid[order])) + 1
    for seg in np.split(order, bounds):
        count = int(nslots[gid[seg[0]]])
        raw = _Raw(
            [],
            [],
            count,
            int(root[seg].min()),
            set(int(x) for x in np.unique(label[seg]) if x >= 0),
        )
        nb = np.flatnonzero(np.diff(node_of[seg])) + 1
        for part in np.split(seg, nb):
            if part.size % count:
                raise AssertionError("depgraph: inconsistent group (hash collision?)")
            k = part.size // count
            r = root[part].reshape(count, k)
            if not (r == r[:, :1]).all():
                raise AssertionError("depgraph: inconsistent slot layout")
            raw.nodes.append(node_list[int(node_of[part[0]])])
            raw.indices.append(local[part].reshape(count, k))
        raws.append(raw)
    raws.sort(key=lambda r: r.first)
    return raws, table


def _owners(value: SSAValue) -> list[Operation]:
    return [use.operation for use in value.uses if not isinstance(use.operation, ReturnOp)]


def _roles(g: DimGraph) -> dict[int, list[tuple[str, Operation]]]:
    out: dict[int, list[tuple[str, Operation]]] = {}
    for key, op, role in g.couplings.roles:
        out.setdefault(g.nodes[key].id, []).append((role, op))
    return out


def _make_group(raw: _Raw, names: dict[SSAValue, str]) -> Group:
    members, values, blockers, ops = [], [], [], []
    seen: set[tuple[str, int, bytes]] = set()
    for node, idx in zip(raw.nodes, raw.indices, strict=True):
        for b in node.blockers:
            if b not in blockers:
                blockers.append(b)
        if node.weight is not None:
            key = (node.weight, node.dims[0], idx.tobytes())
            if key not in seen:
                seen.add(key)
                members.append(Member(node.weight, node.dims[0], idx, shape_of(node.value.type)))
            ops += [o for o in _owners(node.value) if o not in ops]
        else:
            values.append(ValueDim(node.value, names.get(node.value, "%?"), node.dims, idx))
    grp = Group("", "channel", raw.slots, members, values, blockers, ops=ops)
    for v in values:
        if len(v.dims) > 1:
            shape = tuple(shape_of(v.value.type)[d] for d in v.dims)
            grp.factors.append((v.name, v.dims, shape))
    return grp


def _kind(
    raw: _Raw,
    table: list[tuple[Operation, str, int]],
    roles: dict[int, list[tuple[str, Operation]]],
) -> str:
    if raw.labels:
        kinds = {table[x][1] for x in raw.labels}
        if len(kinds) == 1:
            return "qk_dim" if kinds == {"qk"} else "v_dim"
    rs = [r for node in raw.nodes for r in roles.get(node.id, [])]
    names = {r for r, _ in rs}
    if "norm" in names:
        return "embed"
    if "token" in names:
        return "token"
    if "linear_out" in names and "linear_in" in names:
        return "hidden"  # refined to ffn once the embed groups are known
    if len(raw.nodes) == 1 and raw.nodes[0].weight is not None and not raw.nodes[0].blockers:
        return "unused"
    return "channel"


def _is_ffn(
    raw: _Raw, roles: dict[int, list[tuple[str, Operation]]], embed: set[tuple[SSAValue, int]]
) -> bool:
    """One linear writes the units and linears read them; the writer reads, and readers write, embed."""
    rs = [r for node in raw.nodes for r in roles.get(node.id, [])]
    writers = {op for role, op in rs if role == "linear_out"}
    readers = {op for role, op in rs if role == "linear_in"}
    if len(writers) != 1 or not readers or writers & readers:
        return False
    (w,) = writers
    if not isinstance(w, nn.LinearOp) or not all(isinstance(r, nn.LinearOp) for r in readers):
        return False
    x = w.operands[0]
    ok_in = (x, len(shape_of(x.type)) - 1) in embed
    return ok_in and all(
        (r.results[0], len(shape_of(r.results[0].type)) - 1) in embed for r in readers
    )


def _head_groups(
    groups: list[Group],
    raws: list[_Raw],
    table: list[tuple[Operation, str, int]],
    names: dict[SSAValue, str],
) -> list[Group]:
    """One `head` group per (attention, head): the union of that head's qk_dim and v_dim groups, size 1."""
    parts: dict[tuple[Operation, int], list[Group]] = {}
    for grp, raw in zip(groups, raws, strict=True):
        if grp.kind in ("qk_dim", "v_dim"):
            attn, role, h = table[min(raw.labels)]
            heads = {(table[x][0], table[x][2]) for x in raw.labels}
            grp.head = (names[attn.results[0]], h) if len(heads) == 1 else None
            grp.tie = f"{names[attn.results[0]]}.{role}"
            grp.ops.append(attn)
            grp.attention = attn
            for key in heads:
                parts.setdefault(key, []).append(grp)
    out: list[Group] = []
    for (attn, h), ps in parts.items():
        members, values, blockers, ops = [], [], [], []
        for p in ps:
            members += [
                Member(m.symbol, m.axis, m.indices.reshape(1, -1), m.shape) for m in p.members
            ]
            values += [
                ValueDim(v.value, v.name, v.dims, v.indices.reshape(1, -1)) for v in p.values
            ]
            blockers += [b for b in p.blocked_by if b not in blockers]
            ops += [o for o in p.ops if o not in ops]
        head = Group("", "head", 1, members, values, blockers, head=(names[attn.results[0]], h))
        head.parts = [p.id for p in ps]
        head.ops = ops
        head.factors = [f for p in ps for f in p.factors]
        head.attention = attn
        out.append(head)
    return out


def find_groups(g: DimGraph) -> list[Group]:
    """The pruning groups of a dim graph: named by kind, in IR order, sorted by kind."""
    raws, table = _raw_groups(g)
    raws = [r for r in raws if any(node.weight is not None for node in r.nodes)]
    roles = _roles(g)
    groups = [_make_group(r, g.names) for r in raws]
    for grp, raw in zip(groups, raws, strict=True):
        grp.kind = _kind(raw, table, roles)
    embed = {
        (v.value, v.dims[0])
        for grp in groups
        if grp.kind == "embed"
        for v in grp.values
        if len(v.dims) == 1
    }
    for grp, raw in zip(groups, raws, strict=True):
        if grp.kind == "hidden" and _is_ffn(raw, roles, embed):
            grp.kind = "ffn"
    counters: dict[str, int] = {}

    def name(grp: Group) -> None:
        grp.id = f"{grp.kind}{counters.get(grp.kind, 0)}"
        counters[grp.kind] = counters.get(grp.kind, 0) + 1

    for grp in groups:
        name(grp)
    heads = _head_groups(groups, raws, table, g.names)
    for grp in heads:
        name(grp)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(groups + heads, key=lambda x: order[x.kind])
