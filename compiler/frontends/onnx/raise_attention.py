"""Raising of decomposed attention (both torch exporters' forms) to one `nn.attention`.

Matched at the head-merging Reshape, walking back:

    Reshape[1,N,H·dv] ← Transpose(0,2,1,3) ← MatMul(P, Vh)
    P  = Softmax(S, axis=-1)
    S  = MatMul(Qh, Kᵀ) with, in any order around it: Div/Mul by a scalar (on S, Q or Kᵀ),
         an additive constant mask or a `Where` with a constant condition (causal or none)
    Qh, Vh = Transpose(0,2,1,3) ← Reshape[1,N,H,d] ← X[1,N,H·d]
           | Gather(i, axis 0) / Squeeze∘Split ← Transpose(2,0,3,1,4) ← Reshape[1,N,3,H,d] ← QKV (timm)
    Kᵀ = Transpose(0,1,3,2) ← Kh  |  Transpose(0,2,3,1) ← Reshape[1,N,H,d] ← X

A run-time key-padding mask (HF's `attention_mask` input, added to the scores or as a `Where`
condition; see raise_mask.py) becomes the mask operand of `nn.attention`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from compiler.frontends.onnx.fold import reshape_target
from compiler.frontends.onnx.match import node_of, scalar_of, split_const, src
from compiler.frontends.onnx.raise_mask import MASKED as _MASKED
from compiler.frontends.onnx.raise_mask import additive_key_mask, keep_condition
from compiler.frontends.onnx.state import Env, Run, Value
from dialects import nn


def _perm(node: Any) -> list[int]:
    for a in node.attribute:
        if a.name == "perm":
            return list(a.ints)
    return []


def _int_attr(node: Any, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _peel_scale(env: Env, name: str) -> tuple[str, float]:
    """Strip Mul/Div by scalar constants: (the scaled value, the product of the factors)."""
    scale = 1.0
    while True:
        node = node_of(env, name, "Mul", "Div")
        if node is None:
            return src(env, name), scale
        parts = split_const(env, node)
        if parts is None:
            return src(env, name), scale
        other, c, right = parts
        v = scalar_of(c)
        if v is None or v == 0 or (node.op_type == "Div" and not right):
            return src(env, name), scale
        scale *= v if node.op_type == "Mul" else 1.0 / v
        name = other


def _packed(env: Env, reshape: Any, parts: int) -> tuple[Run, int, int] | None:
    """(X, H, d) for a Reshape of X[1,N,parts·H·d] to [1,N,(parts,)H,d]."""
    x = env.run(src(env, reshape.input[0]))
    out = env.run(reshape.output[0])
    if x is None or out is None or x.batch != 0 or len(x.shape) != 3:
        return None
    want_rank = 5 if parts > 1 else 4
    if len(out.shape) != want_rank or out.shape[:2] != x.shape[:2]:
        return None
    h, d = out.shape[-2], out.shape[-1]
    if parts > 1 and out.shape[2] != parts:
        return None
    return x, h, d


def _columns(env: Env, x: Run, lo: int, width: int) -> Run:
    if lo == 0 and width == x.shape[-1]:
        return x
    ssa = env.emit(nn.SliceOp, [x.ssa], (x.shape[1], width), offsets=(0, lo))
    return Run(ssa, (1, x.shape[1], width), 0)


def _fused_part(env: Env, name: str) -> tuple[str, int] | None:
    """(the [3,1,H,N,d] tensor, index) for Gather(i, axis 0) or Squeeze(Split(axis 0)[i], 0)."""
    g = node_of(env, name, "Gather", "Squeeze")
    if g is None:
        return None
    if g.op_type == "Gather":
        idx = env.const(src(env, g.input[1]))
        if _int_attr(g, "axis", 0) != 0 or idx is None or idx.ndim != 0:
            return None
        return g.input[0], int(idx)
    sl = node_of(env, g.input[0], "Slice")
    if sl is not None:  # dynamo's unbind: Squeeze(Slice(x, [i], [i + 1], axes=[0]), [0])
        consts = [env.const(src(env, n)) if n else None for n in list(sl.input[1:5])]
        starts, ends = consts[0], consts[1]
        axes = consts[2] if len(consts) > 2 else np.array([0])
        steps = consts[3] if len(consts) > 3 else None
        if starts is None or ends is None or axes is None or starts.size != 1 or ends.size != 1:
            return None
        if int(axes.reshape(-1)[0]) != 0 or (steps is not None and int(steps.reshape(-1)[0]) != 1):
            return None
        i = int(starts.reshape(-1)[0])
        return (sl.input[0], i) if int(ends.reshape(-1)[0]) == i + 1 else None
    sp = node_of(env, g.input[0], "Split")
    if sp is None or _int_attr(sp, "axis", 0) != 0:
        return None
    k = list(sp.output).index(src(env, g.input[0]))
    return sp.input[0], k


def _heads(env: Env, name: str) -> tuple[Run, int, int] | None:
    """(packed [1,N,H·d] value, H, d) for a head-split value [1,H,N,d]."""
    tr = node_of(env, name, "Transpose")
    if tr is not None and _perm(tr) == [0, 2, 1, 3]:
        rs = node_of(env, tr.input[0], "Reshape")
        return None if rs is None else _packed(env, rs, 1)
    part = _fused_part(env, name)
    if part is None:
        return None
    tr = node_of(env, part[0], "Transpose")
    if tr is None or _perm(tr) != [2, 0, 3, 1, 4]:
        return None
    rs = node_of(env, tr.input[0], "Reshape")
    hit = None if rs is None else _packed(env, rs, 3)
    if hit is None:
        return None
    x, h, d = hit
    return _columns(env, x, part[1] * h * d, h * d), h, d


def _keys(env: Env, name: str) -> tuple[Run, int, int, float] | None:
    """(packed K, H, d, scale) for Kᵀ [1,H,d,N]."""
    name, s1 = _peel_scale(env, name)
    batch_free = _batch_free_kt(env, name)
    if batch_free is not None:
        inner, s2 = _peel_scale(env, batch_free)
        hit = _heads(env, inner)
        return None if hit is None else (*hit, s1 * s2)
    tr = node_of(env, name, "Transpose")
    if tr is None:
        return None
    if _perm(tr) == [0, 2, 3, 1]:
        rs = node_of(env, tr.input[0], "Reshape")
        hit = None if rs is None else _packed(env, rs, 1)
        return None if hit is None else (*hit, s1)
    if _perm(tr) == [0, 1, 3, 2]:
        inner, s2 = _peel_scale(env, tr.input[0])
        hit = _heads(env, inner)
        return None if hit is None else (*hit, s1 * s2)
    return None


def _batch_free_kt(env: Env, name: str) -> str | None:
    """The K [1,H,N,d] of `Reshape(K → [H,N,d]) → Transpose(0,2,1) → Reshape(→ [1,H,d,N])`: Kᵀ written
    through a batch-free view (torch's SDPA decomposition in the dynamo exporter)."""
    back = node_of(env, name, "Reshape")
    if back is None:
        return None
    tr = node_of(env, back.input[0], "Transpose")
    if tr is None or _perm(tr) != [0, 2, 1]:
        return None
    drop = node_of(env, tr.input[0], "Reshape")
    if drop is None:
        return None
    shapes = env.graph.shapes
    k, flat, kt = (shapes.get(n) for n in (src(env, drop.input[0]), drop.output[0], back.output[0]))
    if k is None or flat is None or kt is None or len(k) != 4 or k[0] != 1:
        return None
    if tuple(flat) != tuple(k[1:]) or tuple(kt) != (1, k[1], k[3], k[2]):
        return None
    return drop.input[0]


def _causal_keep(keep: np.ndarray, sq: int, sk: int) -> bool | None:
    """True if `keep` (broadcast to [..., sq, sk]) is the causal pattern, False if it keeps all."""
    try:
        full = (
            np.broadcast_to(keep, (*keep.shape[:-2], sq, sk))
            if keep.ndim >= 2
            else np.broadcast_to(keep, (sq, sk))
        )
    except ValueError:
        return None
    flat = full.reshape(-1, sq, sk)
    if not np.all(flat == flat[0]):
        return None
    if flat[0].all():
        return False
    tri = np.tril(np.ones((sq, sk), bool), sk - sq)
    return True if np.array_equal(flat[0], tri) else None


def _runtime_add(env: Env, node: Any, sk: int) -> tuple[str, SSAValue] | None:
    """(the scores operand, the mask input) of an Add of the scores and a run-time key mask."""
    for i in (0, 1):
        mask = additive_key_mask(env, node.input[1 - i], sk)
        if mask is not None:
            return node.input[i], mask
    return None


def _runtime_where(env: Env, node: Any, sk: int) -> tuple[str, SSAValue] | None:
    """(the scores operand, the mask input) of Where(keep, scores, fill) / Where(pad, fill, scores)."""
    hit = keep_condition(env, node.input[0], sk)
    if hit is None:
        return None
    mask, keep_true = hit
    live, fill = (node.input[1], node.input[2]) if keep_true else (node.input[2], node.input[1])
    c = env.const(src(env, fill))
    if c is None or env.const(src(env, live)) is not None or np.any(c > _MASKED):
        return None
    return live, mask


def _scores(
    env: Env, name: str, sq: int, sk: int
) -> tuple[Any, float, bool, SSAValue | None] | None:
    """(the Q·Kᵀ MatMul node, scale, causal, key mask) for the Softmax input."""
    scale, causal = 1.0, False
    key_mask: SSAValue | None = None

    def one_mask(hit: tuple[str, SSAValue] | None) -> str | None:
        nonlocal key_mask
        if hit is None or (key_mask is not None and hit[1] is not key_mask):
            return None
        key_mask = hit[1]
        return hit[0]

    while True:
        name = src(env, name)
        node = env.producer(name)
        if node is None:
            return None
        if node.op_type == "MatMul":
            return node, scale, causal, key_mask
        if node.op_type in ("Mul", "Div"):
            name, s = _peel_scale(env, name)
            if s == 1.0 and name == src(env, node.output[0]):
                return None
            scale *= s
            continue
        if node.op_type == "Add":
            parts = split_const(env, node)
            if parts is None:  # a run-time key-padding mask
                nxt = one_mask(_runtime_add(env, node, sk))
                if nxt is None:
                    return None
                name = nxt
                continue
            other, mask, _ = parts
            if mask.dtype.kind != "f":
                return None
            keep = mask > _MASKED
            if np.any(np.abs(np.where(keep, mask, 0)) > 1e-6):
                return None
            c = _causal_keep(keep, sq, sk)
            if c is None:
                return None
            causal |= c
            name = other
            continue
        if node.op_type == "Where":
            cond = env.const(src(env, node.input[0]))
            a, b = env.const(src(env, node.input[1])), env.const(src(env, node.input[2]))
            if cond is None:
                nxt = one_mask(_runtime_where(env, node, sk))
                if nxt is None:
                    return None
                name = nxt
                continue
            if (a is None) == (b is None):
                return None
            fill = a if a is not None else b
            if fill is None or np.any(fill > _MASKED):
                return None
            keep = cond.astype(bool) if b is not None else ~cond.astype(bool)
            c = _causal_keep(keep, sq, sk)
            if c is None:
                return None
            causal |= c
            name = node.input[1] if b is not None else node.input[2]
            continue
        return None


def _scores_for(env: Env, name: str, sk: int) -> Any:
    """Q, K, their scales, the score scale and causality for the Softmax input (sq from Q)."""
    # find the Q·Kᵀ MatMul first (following the non-constant operand) to learn sq, then walk
    # again with the masks checked against [sq, sk]
    probe = src(env, name)
    for _ in range(8):
        node = env.producer(probe)
        if node is None or node.op_type not in ("MatMul", "Add", "Mul", "Div", "Where"):
            return None
        if node.op_type == "MatMul":
            break
        live = [i for i in node.input[node.op_type == "Where" :] if env.const(src(env, i)) is None]
        if node.op_type == "Add" and len(live) == 2:
            hit = _runtime_add(env, node, sk)
            live = [hit[0]] if hit is not None else live
        if len(live) != 1:
            return None
        probe = src(env, live[0])
    else:
        return None
    q_name, s_q = _peel_scale(env, node.input[0])
    q = _heads(env, q_name)
    k = _keys(env, node.input[1])
    if q is None or k is None:
        return None
    scores = _scores(env, name, q[0].shape[1], sk)
    if scores is None or scores[0] is not node:
        return None
    return q, k, s_q, scores[1], scores[2], scores[3]


def try_attention(env: Env, node: Any, flat: bool = False) -> list[Value] | None:
    """At the Reshape that merges heads back to [1, N, H·dv]; with `flat`, at one that merges them to
    [N, H·dv] without the batch (raise_linear.try_flat_linear asks, for the linear that follows)."""
    target = env.const(src(env, node.input[1]))
    if target is None:
        return None
    tr = node_of(env, node.input[0], "Transpose")
    if tr is None or _perm(tr) != [0, 2, 1, 3]:
        return None
    pv = node_of(env, tr.input[0], "MatMul")
    if pv is None:
        return None
    sm = node_of(env, pv.input[0], "Softmax")
    if sm is None:
        return None
    if _int_attr(sm, "axis", -1) not in (-1, 3):
        return None
    v = _heads(env, pv.input[1])
    if v is None:
        return None
    scores = _scores_for(env, sm.input[0], v[0].shape[1])
    if scores is None:
        return None
    (qx, h, dq), (kx, hk, dk, s_k), s_q, s_scores, causal, key_mask = scores
    vx, hv, dv = v
    merged = (qx.shape[1], h * dv) if flat else (1, qx.shape[1], h * dv)
    if (
        not (h == hk == hv and dq == dk)
        or reshape_target(target, (1, qx.shape[1], h, dv)) != merged
    ):
        return None
    shape = (1, qx.shape[1], h * dv)
    scale = s_scores * s_q * s_k
    ssa = env.emit(
        nn.AttentionOp,
        [qx.ssa, kx.ssa, vx.ssa] + ([key_mask] if key_mask is not None else []),
        heads=h,
        qk_dim=dq,
        v_dim=dv,
        scale=float(np.float32(scale)),
        causal=causal,
    )
    return [Run(ssa, shape, 0)]
