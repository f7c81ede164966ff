"""The tokens ops' reference semantics against independent, loop-by-loop numpy implementations of
the papers' formulas (SpAtten, EViT, TPS, FACT), and the shared top-k tie rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp, f32, i32
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Region

from backend.interpreter.numerics import leading_one as leading_one_int8
from compiler import reference
from compiler.model import Model
from compiler.reference_tokens import leading_one
from compiler.weights import WeightStore
from dialects import tokens as T
from dialects.nn_base import tensor

RNG = np.random.default_rng(7)


def run_op(cls: type, arrays: list[np.ndarray], **props: object) -> np.ndarray:
    """Run one op on the reference executor (a one-op @main)."""
    types = [tensor(a.shape, i32 if a.dtype.kind == "i" else f32) for a in arrays]
    block = Block(arg_types=types)
    for i, arg in enumerate(block.args):
        arg.name_hint = f"a{i}"
    op = cls.make(list(block.args), **props)
    block.add_ops([op, ReturnOp(op.results[0])])
    func = FuncOp("main", (types, [op.results[0].type]), Region(block))
    model = Model("one-op", ModuleOp([func]), WeightStore({}))
    ins = {f"a{i}": a for i, a in enumerate(arrays)}
    return reference.run(model, ins, dtype=np.float64)["out0"]


ATT = {"heads": 4, "qk_dim": 8, "v_dim": 8, "scale": 0.3, "causal": False}


def probs_loop(q: np.ndarray, k: np.ndarray, heads: int, scale: float, causal: bool) -> np.ndarray:
    n, m = q.shape[0], k.shape[0]
    d = q.shape[1] // heads
    p = np.zeros((heads, n, m))
    for h in range(heads):
        for i in range(n):
            logits = [
                -math.inf
                if causal and j > i + (m - n)
                else scale * float(q[i, h * d : (h + 1) * d] @ k[j, h * d : (h + 1) * d])
                for j in range(m)
            ]
            mx = max(logits)
            e = [math.exp(v - mx) for v in logits]
            p[h, i] = [v / sum(e) for v in e]
    return p


@pytest.mark.parametrize("causal", [False, True])
def test_received_importance_is_spatten_column_sum(causal: bool) -> None:
    q, k = RNG.standard_normal((9, 32)), RNG.standard_normal((9, 32))
    got = run_op(T.ImportanceOp, [q, k], **{**ATT, "causal": causal}, kind="received")
    p = probs_loop(q, k, 4, 0.3, causal)
    want = [sum(p[h, i, j] for h in range(4) for i in range(9)) for j in range(9)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert abs(got.sum() - 4 * 9) < 1e-9  # every query row gives away probability 1 per head


def test_cls_importance_is_evit_head_mean() -> None:
    q, k = RNG.standard_normal((9, 32)), RNG.standard_normal((9, 32))
    got = run_op(T.ImportanceOp, [q, k], **ATT, kind="cls")
    p = probs_loop(q, k, 4, 0.3, False)
    np.testing.assert_allclose(got, [np.mean([p[h, 0, j] for h in range(4)]) for j in range(9)])


def test_head_importance_is_output_magnitude() -> None:
    o = RNG.standard_normal((7, 12))
    got = run_op(T.HeadImportanceOp, [o], heads=3)
    want = [sum(abs(o[i, c]) for i in range(7) for c in range(4 * h, 4 * h + 4)) for h in range(3)]
    np.testing.assert_allclose(got, want)


def select_loop(s: list[float], k: int, protect: list[int]) -> list[int]:
    """Keep the protected, then repeatedly the highest remaining score (lowest index on ties)."""
    n = len(s)
    kept = {p % n for p in protect}
    while len(kept) < k:
        best = max((j for j in range(n) if j not in kept), key=lambda j: (s[j], -j))
        kept.add(best)
    return sorted(kept)


@pytest.mark.parametrize("seed", range(6))
def test_select_with_ties_and_protection(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    s = rng.integers(0, 4, n).astype(np.float64)  # many ties
    k = int(rng.integers(2, n + 1))
    protect = [0, -1] if seed % 2 else [0]
    got = run_op(T.SelectOp, [s], k=k, protect=tuple(protect))
    assert got.dtype == np.int32
    assert got.tolist() == select_loop(s.tolist(), k, protect)


def test_topk_instruction_rule_is_the_select_rule() -> None:
    from backend.topk import topk_indices

    s = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]], np.float32)
    assert topk_indices(s, 2).tolist() == [[1, 2]]
    assert topk_indices(s, 4).tolist() == [[1, 2, 3, 4]]


def tps_loop(x: np.ndarray, idx: list[int], protect: list[int]) -> np.ndarray:
    n = x.shape[0]
    pruned = [i for i in range(n) if i not in idx]
    hosts = [j for j in idx if j not in protect]

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    members: dict[int, list[tuple[float, np.ndarray]]] = {j: [(1.0, x[j])] for j in hosts}
    for i in pruned:
        c = [cos(x[i], x[j]) for j in hosts]
        h = hosts[int(np.argmax(c))]
        members[h].append((max(c), x[i]))
    out = []
    for j in idx:
        if j not in members:
            out.append(x[j])
            continue
        w = np.array([math.exp(c) for c, _ in members[j]])
        w /= w.sum()
        out.append(sum(wi * v for wi, (_, v) in zip(w, members[j], strict=True)))
    return np.array(out)


def test_tps_squeeze() -> None:
    x = RNG.standard_normal((12, 6))
    idx = [0, 2, 3, 7, 9]
    got = run_op(T.SqueezeOp, [x, np.array(idx, np.int32)], protect=(0,))
    np.testing.assert_allclose(got, tps_loop(x, idx, [0]), rtol=1e-12)
    np.testing.assert_array_equal(got[0], x[0])  # CLS untouched


def test_tps_squeeze_keeps_everything_when_nothing_is_pruned() -> None:
    x = RNG.standard_normal((5, 4))
    got = run_op(T.SqueezeOp, [x, np.arange(5, dtype=np.int32)], protect=(0,))
    np.testing.assert_array_equal(got, x)


def test_evit_fuse() -> None:
    x = RNG.standard_normal((10, 5))
    a = RNG.random(10)
    idx = [0, 4, 5, 8]
    got = run_op(T.FuseOp, [x, np.array(idx, np.int32), a])
    pruned = [i for i in range(10) if i not in idx]
    fused = sum(a[i] * x[i] for i in pruned) / sum(a[i] for i in pruned)
    np.testing.assert_allclose(got, np.vstack([x[idx], fused]), rtol=1e-12)


def test_float_leading_one_equals_the_int8_lut() -> None:
    v = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(leading_one(v.astype(np.float64)), leading_one_int8(v))
    assert leading_one(np.array([0.3, -5.9, 1e-3])).tolist() == [0.25, -4.0, 2.0**-10]


def lo(v: float) -> float:
    return 0.0 if v == 0 else math.copysign(2.0 ** math.floor(math.log2(abs(v))), v)


def test_masked_attention_is_softmax_over_the_mask() -> None:
    q, k, v = (RNG.standard_normal((6, 8)) for _ in range(3))
    mask = (RNG.random((2, 6, 6)) < 0.5).astype(np.float64)
    mask[:, :, 0] = 1.0
    props = {"heads": 2, "qk_dim": 4, "v_dim": 4, "scale": 0.5, "causal": False}
    got = run_op(T.MaskedAttentionOp, [q, k, v, mask], **props)
    want = np.zeros((6, 8))
    for h in range(2):
        for i in range(6):
            js = np.flatnonzero(mask[h, i])
            e = np.exp([0.5 * q[i, 4 * h : 4 * h + 4] @ k[j, 4 * h : 4 * h + 4] for j in js])
            want[i, 4 * h : 4 * h + 4] = (e / e.sum()) @ v[js, 4 * h : 4 * h + 4]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_head_attention_zeroes_dropped_heads() -> None:
    q, k, v = (RNG.standard_normal((6, 12)) for _ in range(3))
    props = {"heads": 3, "qk_dim": 4, "v_dim": 4, "scale": 0.5, "causal": True}
    got = run_op(T.HeadAttentionOp, [q, k, v, np.array([0, 2], np.int32)], **props)
    full = reference.attention(q, k, v, 3, 0.5, True)
    np.testing.assert_allclose(got[:, :4], full[:, :4])
    np.testing.assert_allclose(got[:, 8:], full[:, 8:])
    assert not got[:, 4:8].any()
