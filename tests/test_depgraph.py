"""depgraph on the zoo: group counts from the model dims, and functional oracles on the members.

- permutation: permuting a group's slots consistently in every member leaves the output unchanged (a
  missing, extra or misplaced member changes it, with random weights);
- removal: zeroing slots equals physically deleting them and loading the slices into a model built
  independently at the smaller size (the shapes must match exactly, so every member must be listed).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from compiler.models import build
from passes.depgraph import analyze

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

SMALL = {
    "deit-tiny": dict(layers=2, dim=24, heads=3, mlp_dim=20, image=8, patch=4, classes=5),
    "bert-tiny": dict(layers=2, dim=16, heads=2, mlp_dim=12, seq=5, vocab=13),
    "gpt2": dict(layers=2, dim=16, heads=4, mlp_dim=12, seq=5, vocab=13),
}


@pytest.fixture(scope="module", params=list(SMALL))
def zoo(request: pytest.FixtureRequest):  # noqa: ANN201
    name = request.param
    model = randomize(build(name, **SMALL[name]))
    return name, model, analyze(model.module)


def test_counts_from_dims(zoo) -> None:  # noqa: ANN001
    name, model, dg = zoo
    c = SMALL[name]
    layers, heads, dim = c["layers"], c["heads"], c["dim"]
    assert len(dg.prunable("head")) == len(dg.of_kind("head")) == layers * heads
    for kind in ("qk_dim", "v_dim"):
        gs = dg.prunable(kind)
        assert len(gs) == layers * heads and all(g.size == dim // heads for g in gs)
        assert len({g.tie for g in gs}) == layers
    ffn = dg.prunable("ffn")
    assert len(ffn) == layers and sum(g.size for g in ffn) == c["mlp_dim"] * layers
    (embed,) = dg.of_kind("embed")
    assert embed.prunable and embed.size == dim
    symbols = {m.symbol for m in embed.members}
    norms = {s for s in model.weights if "norm" in s}
    assert norms and norms <= symbols  # every layer norm's gamma and beta
    assert len(dg.prunable("hidden")) == (1 if name == "bert-tiny" else 0)  # BERT's pooler


def test_heads_are_whole(zoo) -> None:  # noqa: ANN001
    name, _, dg = zoo
    hd = SMALL[name]["dim"] // SMALL[name]["heads"]
    for g in dg.of_kind("head"):
        assert g.size == 1 and g.head is not None
        h = g.head[1]
        kinds = {dg.group(p).kind for p in g.parts}
        assert kinds == {"qk_dim", "v_dim"}
        for m in g.members:
            assert m.symbol.rsplit(".", 2)[-2] in ("q", "k", "v", "proj")
            assert m.axis == (1 if ".proj." in m.symbol else 0)
            assert np.array_equal(m.indices.reshape(-1), np.arange(h * hd, (h + 1) * hd))
        assert len(g.members) == 7  # q, k, v weights and biases, proj columns


def test_permuting_any_group_keeps_outputs(zoo) -> None:  # noqa: ANN001
    _, model, dg = zoo
    feeds = inputs_for(model)
    want = output(model, feeds)
    rng = np.random.default_rng(0)
    for g in dg.prunable():
        if g.kind == "head" or g.size < 2:
            continue
        perm = rng.permutation(g.size)
        while np.array_equal(perm, np.arange(g.size)):
            perm = rng.permutation(g.size)
        m = model.clone()
        m.weights = permute(model.weights, g.members, perm)
        np.testing.assert_allclose(output(m, feeds), want, rtol=1e-9, atol=1e-9, err_msg=g.id)
        if g.kind == "unused":
            continue
        broken = model.clone()  # sanity: dropping one member breaks the invariance
        broken.weights = permute(model.weights, g.members[1:], perm)
        assert not np.allclose(output(broken, feeds), want, rtol=1e-6, atol=1e-6), g.id


def test_swapping_two_heads_keeps_outputs(zoo) -> None:  # noqa: ANN001
    _, model, dg = zoo
    feeds = inputs_for(model)
    want = output(model, feeds)
    a, b = dg.of_kind("head")[:2]
    assert a.head and b.head and a.head[0] == b.head[0]
    m = model.clone()
    w = model.weights.copy()
    for ma, mb in zip(a.members, b.members, strict=True):
        assert (ma.symbol, ma.axis) == (mb.symbol, mb.axis)
        arr = np.moveaxis(np.array(w[ma.symbol]), ma.axis, 0)
        ia, ib = ma.indices.reshape(-1), mb.indices.reshape(-1)
        arr[ia], arr[ib] = arr[ib].copy(), arr[ia].copy()
        w[ma.symbol] = np.moveaxis(arr, 0, ma.axis)
    m.weights = w
    np.testing.assert_allclose(output(m, feeds), want, rtol=1e-9, atol=1e-9)


def test_zeroing_ffn_units_equals_removing_them(zoo) -> None:  # noqa: ANN001
    name, model, dg = zoo
    feeds = inputs_for(model)
    ffn = dg.prunable("ffn")
    slots = [1, 4]
    zeroed = model.clone()
    zeroed.weights = zero(model.weights, ffn, slots)
    small = build(name, **{**SMALL[name], "mlp_dim": SMALL[name]["mlp_dim"] - len(slots)})
    pruned = load_into(small, remove(model.weights, ffn, slots))
    np.testing.assert_allclose(output(pruned, feeds), output(zeroed, feeds), rtol=1e-9, atol=1e-9)
    assert not np.allclose(output(zeroed, feeds), output(model, feeds))


def test_text_json_dot(zoo) -> None:  # noqa: ANN001
    name, _, dg = zoo
    text = dg.to_text(name)
    assert "embed0" in text and "prunable groups:" in text
    data = json.loads(dg.to_json(name))
    assert data["model"] == name
    assert len(data["groups"]) == len(dg.groups)  # type: ignore[arg-type]
    dot = dg.to_dot()
    assert dot.startswith("graph depgraph {") and dot.rstrip().endswith("}")
    declared = set(re.findall(r"^  (n\d+) \[label=\"[^\"]*\", fillcolor=\w+", dot, re.M))
    edges = re.findall(r"^  (n\d+) -- (n\d+)(?: \[label=\"[^\"]*\"\])?;$", dot, re.M)
    assert len(declared) == dg.graph.number_of_nodes() and len(edges) == dg.graph.number_of_edges()
    assert all(a in declared and b in declared for a, b in edges)


def test_params_per_slot_matches_model_sizes(zoo) -> None:  # noqa: ANN001
    name, model, dg = zoo
    c = SMALL[name]
    smaller = build(name, **{**c, "mlp_dim": c["mlp_dim"] - 1}).weights.num_params
    assert sum(g.params_per_slot for g in dg.prunable("ffn")) == model.weights.num_params - smaller
