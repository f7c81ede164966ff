"""depgraph removal plans: the sliced weights load into models traced independently at the pruned
shapes and compute what the zeroed model computes; constraint violations are refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.model import Model
from compiler.models import Linear, Module, trace
from compiler.models import functional as F
from compiler.models.builder import Tensor
from compiler.weights import WeightStore
from dialects import nn
from passes.depgraph import DepGraph, analyze
from passes.depgraph_plan import PlanError, plan

try:  # tests/ as a package (python -m pytest, or tests/__init__.py)
    from tests.test_depgraph_cases import UNKNOWN, Regroup, S, flex, traced
except ModuleNotFoundError:  # plain pytest puts tests/ itself on sys.path
    from test_depgraph_cases import UNKNOWN, Regroup, S, flex, traced  # type: ignore[no-redef]
try:  # tests/ as a package (python -m pytest, or tests/__init__.py)
    from tests.test_depgraph_util import inputs_for, load_into, output, randomize, zero
except ModuleNotFoundError:  # plain pytest puts tests/ itself on sys.path
    from test_depgraph_util import inputs_for, load_into, output, randomize, zero  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def model_dg() -> tuple[Model, DepGraph]:
    model = randomize(flex())
    return model, analyze(model.module)


def _pruned(model: Model, sliced: dict[str, np.ndarray]) -> WeightStore:
    return WeightStore({**dict(model.weights.items()), **sliced})


def test_plan_matches_independent_slicing_and_shapes(model_dg) -> None:  # noqa: ANN001
    model, dg = model_dg
    heads = [g for g in dg.of_kind("head") if g.head and g.head[1] == 1]
    qk = dg.of_kind("qk_dim")
    ffn = dg.of_kind("ffn")
    selection = {g.id: [0] for g in heads}
    selection.update({g.id: [2] for g in qk})
    selection.update({g.id: [0, 9] for g in ffn})
    removal = plan(dg, selection)
    sliced = _pruned(model, removal.slice_weights(model.weights))
    pruned = load_into(flex(heads=2, qk=3, mlp=8), sliced)  # every weight has the built shape
    assert {tuple(v.values()) for v in removal.attention.values()} == {(2, 3, 5)}
    # zeroing the same slots (heads removed whole, QK channel 2 of every head, two FFN units) is the same
    # function as the pruned model
    zeroed = model.clone()
    zeroed.weights = zero(zero(zero(model.weights, heads, [0]), qk, [2]), ffn, [0, 9])
    feeds = inputs_for(model)
    np.testing.assert_allclose(output(pruned, feeds), output(zeroed, feeds), rtol=1e-9, atol=1e-9)


def test_plan_values_and_unused_selection(model_dg) -> None:  # noqa: ANN001
    _, dg = model_dg
    ffn = dg.of_kind("ffn")[0]
    removal = plan(dg, {ffn.id: [1, 3]})
    assert removal.attention == {}
    sizes = {v.name: idx.tolist() for v in ffn.values for idx in removal.values[v.value].values()}
    assert (
        all(idx == [1, 3] for idx in sizes.values()) and len(sizes) == 2
    )  # fc1 output, gelu output


def test_plan_refuses_unequal_head_widths(model_dg) -> None:  # noqa: ANN001
    _, dg = model_dg
    qk0 = dg.of_kind("qk_dim")[0]
    with pytest.raises(PlanError, match="qk_dim removals differ between heads"):
        plan(dg, {qk0.id: [1]})
    # ...unless the other heads go whole
    head_ids = [
        g.id
        for g in dg.of_kind("head")
        if g.attention is qk0.attention and g.head and g.head[1] != 0
    ]
    removal = plan(dg, {qk0.id: [1], **{h: [0] for h in head_ids}})
    assert list(removal.attention.values()) == [{"heads": 1, "qk_dim": 3, "v_dim": 5}]


def test_plan_refuses_removing_every_head_or_channel(model_dg) -> None:  # noqa: ANN001
    _, dg = model_dg
    attn = dg.of_kind("head")[0].attention
    with pytest.raises(PlanError, match="removing all 3 heads"):
        plan(dg, {g.id: [0] for g in dg.of_kind("head") if g.attention is attn})
    (embed,) = dg.of_kind("embed")
    with pytest.raises(PlanError, match="empties"):
        plan(dg, {embed.id: list(range(embed.size))})


def test_plan_refuses_bad_input(model_dg) -> None:  # noqa: ANN001
    _, dg = model_dg
    with pytest.raises(PlanError, match="no group 'ffn9'"):
        plan(dg, {"ffn9": [0]})
    with pytest.raises(PlanError, match=r"slots must be in \[0, 10\)"):
        plan(dg, {"ffn0": [10]})
    with pytest.raises(PlanError, match="duplicate"):
        plan(dg, {"ffn0": [1, 1]})


def test_plan_refuses_blocked_groups() -> None:
    from compiler.ir import parse_module

    dg = analyze(parse_module(UNKNOWN))
    blocked = next(
        g for g in dg.groups if any(m.symbol == "a.weight" and m.axis == 0 for m in g.members)
    )
    with pytest.raises(
        PlanError, match="blocked by %s = arith.addf: no depgraph rule for arith.addf"
    ):
        plan(dg, {blocked.id: [0]})


def test_plan_keeps_factored_views_rectangular() -> None:
    model = traced(Regroup(3, 4))
    dg = analyze(model.module)
    (g,) = dg.prunable()
    with pytest.raises(PlanError, match="ragged"):
        plan(dg, {g.id: [0]})
    removal = plan(dg, {g.id: [1, 5, 9]})  # inner channel 1 of every head
    small = trace(Regroup(3, 3), {"x": ((S, 8), np.float32)})
    pruned = load_into(small, _pruned(model, removal.slice_weights(model.weights)))
    zeroed = model.clone()
    zeroed.weights = zero(model.weights, [g], [1, 5, 9])
    feeds = inputs_for(model)
    np.testing.assert_allclose(output(pruned, feeds), output(zeroed, feeds), rtol=1e-9, atol=1e-9)


def _results(model: Model) -> list:  # noqa: ANN202
    return [r for op in model.main.walk() for r in op.results]


def test_new_shapes_match_the_independently_traced_model(model_dg) -> None:  # noqa: ANN001
    model, dg = model_dg
    heads = [g for g in dg.of_kind("head") if g.head and g.head[1] == 2]
    selection = {g.id: [0] for g in heads}
    selection.update({g.id: [0, 4] for g in dg.of_kind("v_dim")})
    selection.update({g.id: [3] for g in dg.of_kind("ffn")})
    selection.update({g.id: [1, 2] for g in dg.of_kind("embed")})
    removal = plan(dg, selection)
    small = flex(dim=10, heads=2, vd=3, mlp=9)
    got = [removal.new_shape(r) for r in _results(model)]
    want = [tuple(r.type.get_shape()) for r in _results(small)]
    assert got == want


def test_new_shapes_of_factored_views() -> None:
    model = traced(Regroup(3, 4))
    dg = analyze(model.module)
    (g,) = dg.prunable()
    removal = plan(dg, {g.id: [4, 5, 6, 7]})  # head 1 of the [S, 3, 4] view
    small = trace(Regroup(2, 4), {"x": ((S, 8), np.float32)})
    assert [removal.new_shape(r) for r in _results(model)] == [
        tuple(r.type.get_shape()) for r in _results(small)
    ]


class Window(Module):
    """a → channels [lo, hi) → b: the unread channels of a form their own group."""

    def __init__(self, width: int, lo: int, hi: int) -> None:
        self.a = Linear(8, width)
        self.b = Linear(hi - lo, 3)
        self.lo, self.hi = lo, hi

    def forward(self, x: Tensor) -> Tensor:
        return self.b(F.relu(self.a(x))[:, self.lo : self.hi])


def test_slice_offsets_follow_removed_channels() -> None:
    model = traced(Window(10, 2, 8))
    dg = analyze(model.module)
    read = next(g for g in dg.prunable() if any(m.symbol == "b.weight" for m in g.members))
    unread = next(g for g in dg.prunable() if g is not read)
    assert np.array_equal(read.members[0].indices.reshape(-1), np.arange(2, 8))
    assert np.array_equal(unread.members[0].indices.reshape(-1), [0, 1, 8, 9])
    removal = plan(dg, {unread.id: [0, 3], read.id: [1]})  # a rows 0, 9 and 3
    (sl,) = [op for op in model.main.walk() if isinstance(op, nn.SliceOp)]
    assert removal.new_offsets(sl) == (0, 1)
    small = trace(Window(7, 1, 6), {"x": ((S, 8), np.float32)})
    pruned = load_into(small, _pruned(model, removal.slice_weights(model.weights)))
    zeroed = model.clone()
    zeroed.weights = zero(zero(model.weights, [unread], [0, 3]), [read], [1])
    feeds = inputs_for(model)
    np.testing.assert_allclose(output(pruned, feeds), output(zeroed, feeds), rtol=1e-9, atol=1e-9)
