"""depgraph on the cases that break pruning tools: concat of one tensor twice, concat of unrelated
branches, reshapes between linears, reshapes mixing tokens with channels, unknown ops, whole heads.

Oracles: explicit index maps worked out by hand; zeroing slots equals deleting them and loading the
slices into a model traced independently at the smaller shapes; permuting slots keeps the output.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.ir import parse_module
from compiler.model import Model
from compiler.models import LayerNorm, Linear, Module, ModuleList, trace
from compiler.models import functional as F
from compiler.models.builder import Parameter, Tensor, normal
from compiler.weights import WeightStore
from passes.depgraph import Group, analyze

try:  # tests/ as a package (python -m pytest, or tests/__init__.py)
    from tests.test_depgraph_util import (
        inputs_for,
        load_into,
        output,
        permute,
        randomize,
        remove,
        zero,
    )
except ModuleNotFoundError:  # plain pytest puts tests/ itself on sys.path
    from test_depgraph_util import inputs_for, load_into, output, permute, randomize, remove, zero  # type: ignore[no-redef]

S = 5  # tokens


def traced(root: Module, width: int = 8) -> Model:
    return randomize(trace(root, {"x": ((S, width), np.float32)}, name="case"))


def group_with(groups: list[Group], symbol: str, axis: int) -> Group:
    (g,) = [
        g
        for g in groups
        if g.kind != "head" and any((m.symbol, m.axis) == (symbol, axis) for m in g.members)
    ]
    return g


def member(g: Group, symbol: str, axis: int) -> np.ndarray:
    (idx,) = [m.indices for m in g.members if (m.symbol, m.axis) == (symbol, axis)]
    return idx


def check_zero_equals_remove(
    model: Model, groups: list[Group], slots: list[int], small: Model
) -> None:
    feeds = inputs_for(model)
    zeroed = model.clone()
    zeroed.weights = zero(model.weights, groups, slots)
    pruned = load_into(small, remove(model.weights, groups, slots))
    np.testing.assert_allclose(output(pruned, feeds), output(zeroed, feeds), rtol=1e-9, atol=1e-9)


def check_permutation(model: Model, g: Group, seed: int = 0) -> None:
    feeds = inputs_for(model)
    perm = np.random.default_rng(seed).permutation(g.size)
    m = model.clone()
    m.weights = permute(model.weights, g.members, perm)
    np.testing.assert_allclose(output(m, feeds), output(model, feeds), rtol=1e-9, atol=1e-9)


class Twice(Module):
    """relu(a x) concatenated with itself, read by b."""

    def __init__(self, hidden: int) -> None:
        self.a = Linear(8, hidden)
        self.b = Linear(2 * hidden, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.a(x))
        return self.b(F.concat([h, h], axis=1))


def test_concat_of_the_same_tensor_twice() -> None:
    model = traced(Twice(6))
    g = group_with(analyze(model.module).groups, "a.weight", 0)
    assert g.prunable and g.size == 6
    assert np.array_equal(member(g, "a.weight", 0), np.arange(6)[:, None])
    assert np.array_equal(member(g, "b.weight", 1), np.stack([np.arange(6), np.arange(6) + 6], 1))
    check_permutation(model, g)
    check_zero_equals_remove(model, [g], [1, 4], trace(Twice(4), {"x": ((S, 8), np.float32)}))


class Branches(Module):
    """Two unrelated branches concatenated, read by one linear."""

    def __init__(self, n1: int, n2: int) -> None:
        self.a = Linear(8, n1)
        self.c = Linear(8, n2)
        self.b = Linear(n1 + n2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(F.concat([F.gelu(self.a(x)), F.tanh(self.c(x))], axis=1))


def test_concat_of_unrelated_branches() -> None:
    model = traced(Branches(6, 4))
    groups = analyze(model.module).groups
    ga, gc = group_with(groups, "a.weight", 0), group_with(groups, "c.weight", 0)
    assert ga is not gc and (ga.size, gc.size) == (6, 4)
    assert {m.symbol for m in ga.members} == {"a.weight", "a.bias", "b.weight"}
    assert np.array_equal(member(ga, "b.weight", 1).reshape(-1), np.arange(6))
    assert np.array_equal(member(gc, "b.weight", 1).reshape(-1), np.arange(6, 10))
    check_permutation(model, ga)
    check_permutation(model, gc, seed=1)
    check_zero_equals_remove(
        model, [gc], [0, 2], trace(Branches(6, 2), {"x": ((S, 8), np.float32)})
    )
    check_zero_equals_remove(model, [ga], [5], trace(Branches(5, 4), {"x": ((S, 8), np.float32)}))


class Regroup(Module):
    """a → [S, H, d] → transpose to [S, d, H] → [S, H·d] → b: channel h·d + j reaches column j·H + h."""

    def __init__(self, heads: int, d: int) -> None:
        self.heads, self.d = heads, d
        self.a = Linear(8, heads * d)
        self.b = Linear(heads * d, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = (
            self.a(x)
            .reshape(S, self.heads, self.d)
            .permute(0, 2, 1)
            .reshape(S, self.heads * self.d)
        )
        return self.b(F.relu(h))


def test_reshape_and_transpose_between_linears() -> None:
    model = traced(Regroup(3, 4))
    g = group_with(analyze(model.module).groups, "a.weight", 0)
    assert g.prunable and g.size == 12
    c = np.arange(12)
    assert np.array_equal(member(g, "a.weight", 0).reshape(-1), c)
    assert np.array_equal(member(g, "b.weight", 1).reshape(-1), (c % 4) * 3 + c // 4)
    assert g.factors  # removal must keep the [3, 4] grid
    check_permutation(model, g)
    # removing head 1 (channels 4..7) keeps the grid: equals a model traced with 2 heads
    check_zero_equals_remove(
        model, [g], [4, 5, 6, 7], trace(Regroup(2, 4), {"x": ((S, 8), np.float32)})
    )
    # removing inner channel 2 of every head: 3 heads of 3
    check_zero_equals_remove(
        model, [g], [2, 6, 10], trace(Regroup(3, 3), {"x": ((S, 8), np.float32)})
    )


class Flatten(Module):
    """A reshape that mixes the token dim with the channel dim: nothing on either side may be pruned."""

    def __init__(self) -> None:
        self.a = Linear(8, 6)
        self.b = Linear(S, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.a(x).reshape(6, S))


def test_reshape_mixing_tokens_and_channels_blocks() -> None:
    dg = analyze(traced(Flatten()).module)
    g = group_with(dg.groups, "a.weight", 0)
    assert not g.prunable
    assert any(b.op == "nn.reshape" and "token dim" in b.reason for b in g.blocked_by)
    assert "nn.reshape" in dg.to_text() and "BLOCKED" in dg.to_text()


UNKNOWN = """
func.func @main(%x: tensor<5x8xf32>) -> tensor<5x3xf32> {
  %wa = nn.weight @a.weight : tensor<6x8xf32>
  %h = nn.linear %x, %wa : (tensor<5x8xf32>, tensor<6x8xf32>) -> tensor<5x6xf32>
  %s = arith.addf %h, %h : tensor<5x6xf32>
  %wb = nn.weight @b.weight : tensor<3x6xf32>
  %wc = nn.weight @c.weight : tensor<7x8xf32>
  %u = nn.linear %x, %wc : (tensor<5x8xf32>, tensor<7x8xf32>) -> tensor<5x7xf32>
  %r = nn.relu %u : (tensor<5x7xf32>) -> tensor<5x7xf32>
  %wd = nn.weight @d.weight : tensor<3x7xf32>
  %v = nn.linear %r, %wd : (tensor<5x7xf32>, tensor<3x7xf32>) -> tensor<5x3xf32>
  %y0 = nn.linear %s, %wb : (tensor<5x6xf32>, tensor<3x6xf32>) -> tensor<5x3xf32>
  %y = nn.add %y0, %v : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
  func.return %y : tensor<5x3xf32>
}
"""


def test_op_without_rule_blocks_what_it_touches() -> None:
    dg = analyze(parse_module(UNKNOWN))
    before, after = group_with(dg.groups, "a.weight", 0), group_with(dg.groups, "b.weight", 1)
    assert before is not after  # no coupling through the unknown op, and both sides blocked
    for g in (before, after):
        assert [(b.op, b.where, b.reason) for b in g.blocked_by] == [
            ("arith.addf", "%s = arith.addf", "no depgraph rule for arith.addf")
        ]
    fine = group_with(dg.groups, "c.weight", 0)  # the branch that avoids it stays prunable
    assert fine.prunable and fine.kind == "hidden" and fine.size == 7
    text = dg.to_text()
    assert "BLOCKED by %s = arith.addf: no depgraph rule for arith.addf" in text


class FlexBlock(Module):
    def __init__(self, dim: int, heads: int, qk: int, vd: int, mlp: int) -> None:
        self.norm1 = LayerNorm(dim)
        self.q, self.k = Linear(dim, heads * qk), Linear(dim, heads * qk)
        self.v, self.proj = Linear(dim, heads * vd), Linear(heads * vd, dim)
        self.norm2 = LayerNorm(dim)
        self.fc1, self.fc2 = Linear(dim, mlp), Linear(mlp, dim)
        self.heads = heads

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        a = F.attention(self.q(h), self.k(h), self.v(h), self.heads, scale=0.3)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Flex(Module):
    """A pre-LN transformer whose head count, QK and V widths are independent of the embed dim."""

    def __init__(
        self, dim: int = 12, heads: int = 3, qk: int = 4, vd: int = 5, mlp: int = 10
    ) -> None:
        self.embed = Linear(8, dim)
        self.blocks = ModuleList(FlexBlock(dim, heads, qk, vd, mlp) for _ in range(2))
        self.norm = LayerNorm(dim)
        self.head = Linear(dim, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


def flex(**kw: int) -> Model:
    return trace(Flex(**kw), {"x": ((S, 8), np.float32)}, name="flex")


@pytest.fixture(scope="module")
def flex_dg():  # noqa: ANN201
    model = randomize(flex())
    return model, analyze(model.module)


def test_flex_heads_stay_whole(flex_dg) -> None:  # noqa: ANN001
    model, dg = flex_dg
    heads = dg.of_kind("head")
    assert len(heads) == 6 and all(g.size == 1 and g.prunable for g in heads)
    for g in heads:
        assert g.head is not None
        h = g.head[1]
        q = member(g, g.members[0].symbol.replace(".weight", ".weight"), 0)
        assert np.array_equal(q.reshape(-1), np.arange(4 * h, 4 * h + 4))
        proj = [m for m in g.members if m.symbol.endswith("proj.weight")]
        assert len(proj) == 1 and proj[0].axis == 1
        assert np.array_equal(proj[0].indices.reshape(-1), np.arange(5 * h, 5 * h + 5))
    # removing head 1 in both blocks == a model with 2 heads
    sel = [g for g in heads if g.head and g.head[1] == 1]
    check_zero_equals_remove(model, sel, [0], flex(heads=2))


def test_flex_qk_and_v_dims(flex_dg) -> None:  # noqa: ANN001
    model, dg = flex_dg
    qk, v = dg.prunable("qk_dim"), dg.prunable("v_dim")
    assert [g.size for g in qk] == [4] * 6 and [g.size for g in v] == [5] * 6
    assert len({g.tie for g in qk}) == 2 and len({g.tie for g in v}) == 2
    check_zero_equals_remove(model, qk, [2], flex(qk=3))  # same channel out of every head
    check_zero_equals_remove(model, v, [0, 3], flex(vd=3))
    check_permutation(model, qk[4])
    check_permutation(model, v[1])


def test_flex_embed_and_ffn(flex_dg) -> None:  # noqa: ANN001
    model, dg = flex_dg
    (embed,) = dg.of_kind("embed")
    assert embed.prunable and embed.size == 12
    check_permutation(model, embed)
    # deleting embed channels gives exactly the shapes of a model traced with a smaller dim, and it runs
    small = load_into(flex(dim=10), remove(model.weights, [embed], [3, 7]))
    assert np.isfinite(output(small, inputs_for(model))).all()
    ffn = dg.prunable("ffn")
    assert [g.size for g in ffn] == [10, 10]
    check_zero_equals_remove(model, ffn, [0, 9], flex(mlp=8))


def test_missing_member_is_caught_by_the_oracle(flex_dg) -> None:  # noqa: ANN001
    """The removal oracle itself: a group with one member dropped no longer loads or no longer matches."""
    model, dg = flex_dg
    (embed,) = dg.of_kind("embed")
    short = Group(embed.id, embed.kind, embed.size, embed.members[1:], embed.values, [])
    with pytest.raises(AssertionError):
        load_into(flex(dim=10), remove(model.weights, [short], [3, 7]))
    ffn = dg.prunable("ffn")
    bad = [
        Group(g.id, g.kind, g.size, [m for m in g.members if "bias" not in m.symbol], [], [])
        for g in ffn
    ]
    with pytest.raises(AssertionError):
        check_zero_equals_remove(model, bad, [0, 9], flex(mlp=8))


def test_weights_are_not_needed() -> None:
    model = flex()
    model.weights = WeightStore()
    assert len(analyze(model.module).prunable("head")) == 6


class Project(Module):
    """x · Aᵀ then a plain matmul with a weight [hidden, 3]: the weight's rows are the hidden units."""

    def __init__(self, hidden: int) -> None:
        self.a = Linear(8, hidden)
        self.w = Parameter((hidden, 3), normal(0.5))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.a(x)) @ self.w


def test_matmul_with_a_weight_operand() -> None:
    model = traced(Project(6))
    g = group_with(analyze(model.module).groups, "a.weight", 0)
    assert g.prunable and {(m.symbol, m.axis) for m in g.members} == {
        ("a.weight", 0),
        ("a.bias", 0),
        ("w", 0),
    }
    check_zero_equals_remove(model, [g], [0, 5], trace(Project(4), {"x": ((S, 8), np.float32)}))


class ManualAttention(Module):
    """Attention written with reshape/transpose/matmul: the rules cannot express a matmul over a factored
    view, so the projections' groups are blocked (fail closed), naming the reshape and the matmul."""

    def __init__(self) -> None:
        self.q, self.k, self.v, self.o = Linear(8, 8), Linear(8, 8), Linear(8, 8), Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        def split(t: Tensor) -> Tensor:
            return t.reshape(S, 2, 4).permute(1, 0, 2)

        p = F.softmax(F.matmul(split(self.q(x)), split(self.k(x)), transpose_b=True))
        a = F.matmul(p, split(self.v(x))).permute(1, 0, 2).reshape(S, 8)
        return self.o(a)


def test_attention_by_matmul_fails_closed() -> None:
    dg = analyze(traced(ManualAttention()).module)
    for symbol in ("q.weight", "k.weight", "v.weight"):
        g = group_with(dg.groups, symbol, 0)
        assert not g.prunable
        assert any(b.op == "nn.reshape" and "nn.matmul" in b.reason for b in g.blocked_by), (
            g.blocked_by
        )
    assert not group_with(dg.groups, "o.weight", 1).prunable


@pytest.mark.parametrize(
    "text",
    [
        "builtin.module {}",
        "func.func @f(%x: tensor<f32>) -> tensor<f32> {\n  func.return %x : tensor<f32>\n}",
    ],
)
def test_nothing_to_prune(text: str) -> None:
    dg = analyze(parse_module(text))
    assert dg.groups == [] and "(none)" in dg.to_text() and dg.to_dot().endswith("}\n")
