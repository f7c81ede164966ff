"""The depgraph rule table: how each nn op couples the dims (and channels) of its operands and result.

A rule gets the op and a `Couplings` recorder and states, in channel terms:

- `link(a, da, b, db)`: channel i of dim `da` of value `a` is channel i of dim `db` of `b` (identity), or
  with explicit index arrays (`ia[k]` ≡ `ib[k]`) for offsets (concat, slice) and expansions;
- `same(a, b, dims)`: the op maps these dims one-to-one (elementwise ops, transpose); this also lets a
  reshape's factored dims (see below) pass through the op;
- `block(value, dims, reason)`: the op cannot express a coupling on these dims (fail closed);
- `heads(value, dim, role, width)`: nn.attention's head structure, channel c in head c // width;
- `role(value, dim, role)`: a hint for naming group kinds ("norm", "linear_out", "linear_in", "token").

Reshape is the one rule that factors dims: a run of dims whose product is preserved becomes one
*composite* node, e.g. [S, 64] → [S, 4, 16] makes channel c of dim 1 ≡ flat index c of (dim 1, dim 2) =
(c // 16, c % 16). Ops without a rule block every dim they touch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Operation, SSAValue

from dialects import nn
from dialects.nn_base import ShapeError, shape_of

Dims = tuple[int, ...]
NodeKey = tuple[SSAValue, Dims]


@dataclass
class Link:
    """Channels `ia` of node `a` are the same channels as `ib` of node `b` (None: identity)."""

    a: NodeKey
    b: NodeKey
    ia: np.ndarray | None
    ib: np.ndarray | None
    kind: str
    op: Operation | None


@dataclass
class Couplings:
    """What the rules state about the function being analysed (filled op by op)."""

    links: list[Link] = field(default_factory=list)
    blocks: list[tuple[NodeKey, Operation | None, str]] = field(default_factory=list)
    head_marks: list[tuple[NodeKey, Operation, str, int]] = field(default_factory=list)
    roles: list[tuple[NodeKey, Operation, str]] = field(default_factory=list)
    passthrough: list[tuple[SSAValue, SSAValue, dict[int, int], Operation]] = field(
        default_factory=list
    )
    composites: list[tuple[NodeKey, Operation]] = field(default_factory=list)
    op: Operation | None = None

    def link(
        self,
        a: SSAValue,
        da: int | Dims,
        b: SSAValue,
        db: int | Dims,
        kind: str = "id",
        ia: np.ndarray | None = None,
        ib: np.ndarray | None = None,
    ) -> None:
        ka = (a, (da,) if isinstance(da, int) else da)
        kb = (b, (db,) if isinstance(db, int) else db)
        self.links.append(Link(ka, kb, ia, ib, kind, self.op))

    def same(self, a: SSAValue, b: SSAValue, dims: dict[int, int]) -> None:
        for da, db in dims.items():
            self.link(a, da, b, db)
        self.passthrough.append((a, b, dims, self.current))

    def block(self, value: SSAValue, dims: Sequence[int] | None, reason: str) -> None:
        rank = len(shape_of(value.type)) if ranked(value) else 0
        for d in range(rank) if dims is None else dims:
            self.blocks.append(((value, (d % rank,)), self.op, reason))

    def heads(self, value: SSAValue, dim: int, role: str, width: int) -> None:
        self.head_marks.append(((value, (dim,)), self.current, role, width))

    def role(self, value: SSAValue, dim: int, role: str) -> None:
        self.roles.append(((value, (dim % len(shape_of(value.type)),)), self.current, role))

    @property
    def current(self) -> Operation:
        """The op whose rule is running."""
        assert self.op is not None
        return self.op


Rule = Callable[[Operation, Couplings], None]


def ranked(value: SSAValue) -> bool:
    """Whether the value is a ranked tensor (the only values with dims)."""
    try:
        shape_of(value.type)
    except ShapeError:
        return False
    return True


def _rank(v: SSAValue) -> int:
    return len(shape_of(v.type))


def _identity(op: Operation, c: Couplings) -> None:
    """Unary elementwise ops (and softmax): every dim maps to itself."""
    x, y = op.operands[0], op.results[0]
    c.same(x, y, {d: d for d in range(_rank(x))})


def _binary(op: Operation, c: Couplings) -> None:
    """Elementwise with numpy broadcasting: a dim is coupled unless it is broadcast from size 1."""
    y = op.results[0]
    out = shape_of(y.type)
    for x in op.operands:
        shape = shape_of(x.type)
        lead = len(out) - len(shape)
        dims = {d: d + lead for d, n in enumerate(shape) if n == out[d + lead]}
        c.same(x, y, dims)


def _linear(op: Operation, c: Couplings) -> None:
    x, w, y = op.operands[0], op.operands[1], op.results[0]
    r = _rank(x)
    c.same(x, y, {d: d for d in range(r - 1)})
    for d in range(r - 1):
        c.role(x, d, "token")
    c.link(x, r - 1, w, 1)
    c.link(w, 0, y, r - 1)
    c.role(w, 0, "linear_out")
    c.role(w, 1, "linear_in")
    if len(op.operands) == 3:
        c.link(op.operands[2], 0, y, r - 1)
        c.role(op.operands[2], 0, "linear_out")


def _matmul(op: Operation, c: Couplings) -> None:
    a, b, y = op.operands[0], op.operands[1], op.results[0]
    r = _rank(a)
    tb = isinstance(op, nn.MatmulOp) and op.bool_prop("transpose_b")
    batch = {d: d for d in range(r - 2)}
    c.same(a, y, batch)
    c.same(b, y, batch)
    k_b, n_b = (r - 1, r - 2) if tb else (r - 2, r - 1)
    c.link(a, r - 2, y, r - 2)
    c.link(a, r - 1, b, k_b)
    c.link(b, n_b, y, r - 1)


def _layer_norm(op: Operation, c: Couplings) -> None:
    x, g, b, y = (*op.operands, op.results[0])
    r = _rank(x)
    c.same(x, y, {d: d for d in range(r)})
    c.link(x, r - 1, g, 0)
    c.link(x, r - 1, b, 0)
    c.role(g, 0, "norm")
    c.role(b, 0, "norm")


def _transpose(op: Operation, c: Couplings) -> None:
    assert isinstance(op, nn.TransposeOp)
    perm = op.ints_prop("perm")
    c.same(op.operands[0], op.results[0], {p: i for i, p in enumerate(perm)})


def _concat(op: Operation, c: Couplings) -> None:
    assert isinstance(op, nn.ConcatOp)
    y = op.results[0]
    r = _rank(y)
    axis = op.int_prop("axis") % r
    offset = 0
    for x in op.operands:
        n = shape_of(x.type)[axis]
        c.same(x, y, {d: d for d in range(r) if d != axis})
        idx = np.arange(n)
        c.link(x, axis, y, axis, f"+{offset}", idx, idx + offset)
        offset += n


def _slice(op: Operation, c: Couplings) -> None:
    assert isinstance(op, nn.SliceOp)
    x, y = op.operands[0], op.results[0]
    src, dst = shape_of(x.type), shape_of(y.type)
    for d, off in enumerate(op.ints_prop("offsets")):
        if off == 0 and src[d] == dst[d]:
            c.same(x, y, {d: d})
        else:
            idx = np.arange(dst[d])
            c.link(x, d, y, d, f"[{off}:{off + dst[d]}]", idx + off, idx)


def _gather(op: Operation, c: Couplings) -> None:
    table, ids, y = op.operands[0], op.operands[1], op.results[0]
    ri, rt = _rank(ids), _rank(table)
    c.same(ids, y, {d: d for d in range(ri)})
    c.same(table, y, {d: ri + d - 1 for d in range(1, rt)})
    c.block(table, [0], "nn.gather selects table rows by data-dependent indices")


def _scatter(op: Operation, c: Couplings) -> None:
    table, _ids, rows, y = (*op.operands, op.results[0])
    c.same(table, y, {0: 0, 1: 1})
    c.same(rows, y, {1: 1})
    c.block(table, [0], "nn.scatter writes table rows at data-dependent indices")


def _patch_embed(op: Operation, c: Couplings) -> None:
    assert isinstance(op, nn.PatchEmbedOp)
    img, w, b, y = (*op.operands, op.results[0])
    p = op.int_prop("patch")
    channels = shape_of(img.type)[0]
    c.link(w, 0, y, 1)
    c.link(b, 0, y, 1)
    c.role(w, 0, "linear_out")
    c.role(b, 0, "linear_out")
    # weight column c·p² + k (k < p²) reads image channel c
    cols = np.arange(channels * p * p)
    c.link(img, 0, w, 1, f"c*{p * p}+k", cols // (p * p), cols)
    c.block(img, [1, 2], "nn.patch_embed mixes image rows/cols into patches")
    c.block(y, [0], "nn.patch_embed makes tokens from the patch grid")


def _attention(op: Operation, c: Couplings) -> None:
    assert isinstance(op, nn.AttentionOp)
    q, k, v, y = op.query, op.key, op.value, op.results[0]
    dqk, dv = op.int_prop("qk_dim"), op.int_prop("v_dim")
    c.link(q, 1, k, 1)  # head h, channel j of q meets channel j of k in the scores
    c.link(v, 1, y, 1)  # head h, channel j of v becomes channel j of head h's output
    c.heads(q, 1, "qk", dqk)
    c.heads(k, 1, "qk", dqk)
    c.heads(v, 1, "v", dv)
    c.heads(y, 1, "v", dv)
    mask = op.mask
    if op.bool_prop("causal"):
        for x in (q, k, v, y) if mask is None else (q, k, v, y, mask):
            c.block(x, [0], "causal nn.attention masks by token position")
    else:
        c.link(q, 0, y, 0)
        c.link(k, 0, v, 0)
        if mask is not None:
            c.link(k, 0, mask, 0)  # mask[j] gates key j: a key-token dim like k's and v's


def _runs(a: Sequence[int], b: Sequence[int]) -> list[tuple[Dims, Dims]] | None:
    """Pair minimal runs of non-unit dims of `a` and `b` with equal products (row-major reshape)."""
    ia = [d for d, n in enumerate(a) if n != 1]
    ib = [d for d, n in enumerate(b) if n != 1]
    runs: list[tuple[Dims, Dims]] = []
    i = j = 0
    while i < len(ia) and j < len(ib):
        ra, rb = [ia[i]], [ib[j]]
        pa, pb = a[ia[i]], b[ib[j]]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb and i < len(ia):
                pa *= a[ia[i]]
                ra.append(ia[i])
                i += 1
            elif pb < pa and j < len(ib):
                pb *= b[ib[j]]
                rb.append(ib[j])
                j += 1
            else:
                return None
        runs.append((tuple(ra), tuple(rb)))
    return runs if i == len(ia) and j == len(ib) else None


def _reshape(op: Operation, c: Couplings) -> None:
    x, y = op.operands[0], op.results[0]
    runs = _runs(shape_of(x.type), shape_of(y.type))
    if runs is None:  # unreachable for verified IR
        c.block(x, None, "nn.reshape: dims do not factor")
        c.block(y, None, "nn.reshape: dims do not factor")
        return
    for ra, rb in runs:
        if len(ra) == 1 and len(rb) == 1:
            c.same(x, y, {ra[0]: rb[0]})
            continue
        c.link(x, ra, y, rb, "reshape")
        for key in ((x, ra), (y, rb)):
            if len(key[1]) > 1:
                c.composites.append((key, op))


def _return(op: Operation, c: Couplings) -> None:
    for v in op.operands:
        if ranked(v):
            c.block(v, None, "function result")


def _weight(op: Operation, c: Couplings) -> None:
    pass


RULES: dict[type[Operation], Rule] = {
    nn.WeightOp: _weight,
    nn.LinearOp: _linear,
    nn.MatmulOp: _matmul,
    nn.AddOp: _binary,
    nn.SubOp: _binary,
    nn.MulOp: _binary,
    nn.DivOp: _binary,
    nn.LayerNormOp: _layer_norm,
    nn.GeluOp: _identity,
    nn.TanhOp: _identity,
    nn.ReluOp: _identity,
    nn.SoftmaxOp: _identity,
    nn.ReshapeOp: _reshape,
    nn.TransposeOp: _transpose,
    nn.ConcatOp: _concat,
    nn.SliceOp: _slice,
    nn.GatherOp: _gather,
    nn.ScatterOp: _scatter,
    nn.PatchEmbedOp: _patch_embed,
    nn.AttentionOp: _attention,
    ReturnOp: _return,
}


def apply_rule(op: Operation, c: Couplings) -> None:
    """Record `op`'s couplings; an op without a rule blocks every dim of its operands and results."""
    c.op = op
    rule = RULES.get(type(op))
    if rule is None:
        for v in (*op.operands, *op.results):
            if ranked(v):
                c.block(v, None, f"no depgraph rule for {op.name}")
        return
    rule(op, c)
