"""Renderings of a DepGraph: a readable text listing, JSON, and Graphviz DOT of the dim graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from passes.depgraph import DepGraph, Group

_COLORS = {
    "embed": "lightblue",
    "qk_dim": "palegreen",
    "v_dim": "khaki",
    "ffn": "lightsalmon",
    "hidden": "plum",
    "token": "lightgray",
    "unused": "white",
    "channel": "white",
}


def fmt_indices(idx: np.ndarray) -> str:
    """`a:b` for a contiguous range, `a:b & c:d` for several contiguous columns, else a short list."""
    cols = []
    for col in idx.T if idx.shape[0] > 1 else [idx.reshape(-1)]:
        if col.size and np.array_equal(col, np.arange(col[0], col[0] + col.size)):
            cols.append(f"{col[0]}:{col[0] + col.size}")
        else:
            cols = []
            break
    if cols:
        return " & ".join(cols)
    flat = [int(x) for x in idx.reshape(-1)[:8]]
    more = ", …" if idx.size > 8 else ""
    return "[" + ", ".join(map(str, flat)) + more + "]"


def _group_lines(g: Group) -> list[str]:
    extra = []
    if g.head is not None:
        extra.append(f"head {g.head[1]} of {g.head[0]}")
    if g.tie:
        extra.append(f"tie {g.tie}")
    if g.parts:
        extra.append("parts " + ", ".join(g.parts))
    for name, dims, sizes in g.factors:
        extra.append(f"factored {name}#{','.join(map(str, dims))} as {list(sizes)}")
    head = f"  {g.id:<10} {g.kind:<7} size {g.size:<5}"
    head += f" {len(g.members)} weights, {len(g.values)} value dims" + (
        f"; {'; '.join(extra)}" if extra else ""
    )
    lines = [head]
    for m in g.members:
        lines.append(f"      {m.symbol}[axis {m.axis}] {fmt_indices(m.indices)}")
    for b in g.blocked_by:
        lines.append(f"      BLOCKED by {b}")
    return lines


def to_text(dg: DepGraph, title: str = "") -> str:
    from passes.depgraph import KINDS

    groups = dg.groups
    nodes, edges = dg.graph.number_of_nodes(), dg.graph.number_of_edges()
    head = f"depgraph{': ' + title if title else ''}: {len(groups)} groups"
    head += f" ({sum(g.prunable for g in groups)} prunable, {sum(not g.prunable for g in groups)} blocked);"
    head += f" {nodes} dim nodes, {edges} edges"
    out = [head, "", f"  {'kind':<8} {'groups':>6} {'prunable':>8} {'units':>7}"]
    for kind in KINDS:
        gs = [g for g in groups if g.kind == kind]
        if gs:
            units = sum(g.size for g in gs if g.prunable)
            out.append(f"  {kind:<8} {len(gs):>6} {sum(g.prunable for g in gs):>8} {units:>7}")
    out += ["", "prunable groups:"]
    for g in groups:
        if g.prunable:
            out += _group_lines(g)
    if not any(g.prunable for g in groups):
        out.append("  (none)")
    blocked = [g for g in groups if not g.prunable]
    if blocked:
        out += ["", "blocked groups:"]
        for g in blocked:
            out += _group_lines(g)
    return "\n".join(out) + "\n"


def to_dict(dg: DepGraph) -> dict[str, object]:
    def group(g: Group) -> dict[str, object]:
        return {
            "id": g.id,
            "kind": g.kind,
            "size": g.size,
            "prunable": g.prunable,
            "tie": g.tie,
            "head": None if g.head is None else {"attention": g.head[0], "index": g.head[1]},
            "parts": g.parts,
            "factors": [{"value": n, "dims": list(d), "sizes": list(z)} for n, d, z in g.factors],
            "members": [
                {"symbol": m.symbol, "axis": m.axis, "indices": m.indices.tolist()}
                for m in g.members
            ],
            "values": [
                {"value": v.name, "dims": list(v.dims), "indices": v.indices.tolist()}
                for v in g.values
            ],
            "blocked_by": [
                {"op": b.op, "where": b.where, "reason": b.reason} for b in g.blocked_by
            ],
        }

    return {
        "nodes": dg.graph.number_of_nodes(),
        "edges": dg.graph.number_of_edges(),
        "groups": [group(g) for g in dg.groups],
    }


def _quote(s: str) -> str:
    return '"' + s.replace('"', '\\"') + '"'


def to_dot(dg: DepGraph) -> str:
    """The dim graph: one node per (value, dims), filled by the kind of its first group, red if blocked."""
    kind_of: dict[tuple[int, tuple[int, ...]], str] = {}
    for g in dg.groups:
        if g.kind == "head":
            continue
        for v in g.values:
            kind_of.setdefault((id(v.value), v.dims), g.kind)
    lines = ["graph depgraph {", "  node [shape=box, style=filled, fontsize=10];"]
    for node in sorted(dg.dims.nodes.values(), key=lambda n: n.id):
        label = f"{node.weight}[{node.dims[0]}]" if node.weight else node.name
        label += f"\\n{node.size}"
        color = _COLORS.get(kind_of.get((id(node.value), node.dims), "channel"), "white")
        if node.weight:
            color = "lightyellow"
        border = ", color=red, penwidth=2" if node.blockers else ""
        lines.append(f"  n{node.id} [label={_quote(label)}, fillcolor={color}{border}];")
    for a, b, data in dg.graph.edges(data=True):
        kind = data.get("kind", "")
        attr = "" if kind == "id" else f" [label={_quote(kind)}]"
        lines.append(f"  n{a} -- n{b}{attr};")
    lines.append("}")
    return "\n".join(lines) + "\n"
