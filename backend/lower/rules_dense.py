"""Lowering of the matrix ops: linear, matmul, patch_embed, attention."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from xdsl.ir import Operation

from backend.config import Config
from backend.cost.formulas import dma_transfer_cycles, matmul_cycles
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx, predicate_since
from backend.lower.dma import load, store
from backend.lower.env import Env, bias_row, linear_weight
from backend.lower.gemm import TRAFFIC_WEIGHT, LazyWeight, choose_plan, gemm
from backend.lower.gemm_quant import dequantize_rows
from backend.lower.head_sink import head_sink
from backend.lower.importance_sink import ScoreSink, score_sink
from backend.lower.key_mask import key_mask_bias
from backend.lower.registry import rule
from backend.lower.rules_vector import add_same_shape, row_op
from backend.lower.sparse import sp24_merged
from backend.lower.values import DTensor
from dialects import nn
from dialects.nn_base import shape_of

A, W, C, V = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC


def _out(ctx: LowerCtx, op: Operation) -> DTensor:
    """The op's result tensor: a fresh activation, or the block of a concat it was forwarded to."""
    return ctx.dest.get(op.results[0]) or ctx.activation(shape_of(op.results[0].type))


@rule(nn.LinearOp)
def lower_linear(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """x·wᵀ + b: w pre-transposed to [in, out] in the data section, bias added in fp32."""
    assert isinstance(op, nn.LinearOp)
    if op in ctx.merged_views:
        return ctx.merged_views[op]
    x = env.tensor(op.input)
    if op in ctx.merged:
        return _merged_linear(ctx, x, ctx.merged[op])
    out = _out(ctx, op)
    b: DTensor | LazyWeight
    if env.is_weight(op.weight):
        b = linear_weight(ctx, env.weight(op.weight, "nn.linear"))
        tb = False
    else:
        b, tb = env.tensor(op.weight), True
    bias = bias_row(ctx, env.weight(op.bias, "nn.linear bias")) if op.bias is not None else None
    res = ctx.fused_residual.get(op)
    residual = env.tensor(res).as2d() if res is not None else None
    act = ctx.fused_act.get(op)
    n = b.shape[0] if tb else b.shape[1]
    target = out
    if residual is not None and not residual_pays(ctx, x.rows, n, x.cols, not tb):
        target = ctx.activation(out.shape)
    kw = {"tb": tb, "bias": bias, "act": act, "residual": residual if target is out else None}
    _gemm_with_prologue(ctx, op, x, b, target, kw)
    if target is not out:
        assert residual is not None
        add_same_shape(ctx, target, residual, out, op.name)
    return out


def _gemm_with_prologue(
    ctx: LowerCtx, op: Operation, x: DTensor, b: DTensor | LazyWeight, out: DTensor, kw: dict
) -> None:
    """The GEMM, with the input's layer norm as its prologue when planned and possible (else the
    layer norm runs first, into a temporary)."""
    ln = ctx.ln_prologue.get(op)
    if ln is None:
        gemm(ctx, x.as2d(), b, out.as2d(), **kw)
        return
    owners = [v.owner for v in (ln.gamma, ln.beta)]
    assert all(isinstance(o, nn.WeightOp) for o in owners)
    names = [o.symbol for o in owners if isinstance(o, nn.WeightOp)]
    gb_arr = np.stack([np.asarray(ctx.weights[s]) for s in names]).astype(np.float32)
    gb = ctx.add_data(("|".join(names), "ln32"), gb_arr, DType.FP32)
    cols = x.cols
    g_off = ctx.hold(Buf.IDX, 8 * cols)
    load(ctx, gb, Buf.IDX, g_off)
    eps = to_f32(ln.float_prop("eps"))
    if gemm(ctx, x.as2d(), b, out.as2d(), prologue=(g_off, eps), **kw):
        return
    src = x.as2d()
    q = kw.get("quant")
    if q is not None and q.a_deq is not None:  # an int8 stream: dequantize it to fp16 first
        src = dequantize_rows(ctx, src, q.a_deq)
        kw = {**kw, "quant": replace(q, a_deq=None)}
    normed = ctx.activation(src.shape)
    row_op(ctx, src, normed, ln.name, op="layernorm", eps=eps, g_buf=Buf.IDX, g_off=g_off)
    gemm(ctx, normed, b, out.as2d(), **kw)


def _merged_linear(ctx: LowerCtx, x: DTensor, group: list[nn.LinearOp]) -> DTensor:
    """One GEMM for linears sharing input ``x``: weights concatenated along the output dim; each
    member's result is a column view of the joint result (the first member's is returned)."""
    ws, bs, syms = [], [], []
    for lin in group:
        w_op = lin.weight.owner
        assert isinstance(w_op, nn.WeightOp)
        w = np.asarray(ctx.weights[w_op.symbol])
        ws.append(w)
        syms.append(w_op.symbol)
        if lin.bias is not None:
            b_op = lin.bias.owner
            assert isinstance(b_op, nn.WeightOp)
            bs.append(np.asarray(ctx.weights[b_op.symbol]).reshape(-1))
            syms.append(b_op.symbol)
        else:
            bs.append(np.zeros(w.shape[0], np.float32))
    key = "|".join(syms)
    cat = np.concatenate(ws, axis=0)
    wt: DTensor | LazyWeight = sp24_merged(ctx, group, key, ws) or LazyWeight(
        (cat.shape[1], cat.shape[0]),
        lambda: ctx.add_data((key, "T16cat"), cat.T.astype(np.float16), DType.FP16),
        lambda: ctx.add_data((key, "16cat"), cat.astype(np.float16), DType.FP16),
    )
    any_bias = any(lin.bias is not None for lin in group)
    bias = (
        ctx.add_data((key, "bias32cat"), np.concatenate(bs).reshape(1, -1), DType.FP32)
        if any_bias
        else None
    )
    n_total = wt.shape[1]
    joint = ctx.activation((x.rows, n_total))
    _gemm_with_prologue(ctx, group[0], x, wt, joint, {"bias": bias})
    col = 0
    views: list[DTensor] = []
    for lin, w in zip(group, ws, strict=True):
        n = w.shape[0]
        v = joint.block(0, x.rows, col, n)
        shape = tuple(shape_of(lin.result.type))
        if len(shape) != 2:
            raise ctx.too_big(f"merged linear with a rank-{len(shape)} result")
        views.append(v)
        ctx.merged_views[lin] = v
        col += n
    return views[0]


OutHook = Callable[[int, int, int, int | None], None]  # (c_off, rows, stride, head)
# per query tile of attention_head: before(q0, rows) → a predicate p the tile's work runs under
# (None: unguarded), and after(q0, rows, p, v_buf, v_off) once the guarded instructions are
# emitted (V_h [sk, dv] fp16 is resident at v_buf[v_off])
TileGuard = tuple[Callable[[int, int], int | None], Callable[[int, int, int, Buf, int], None]]
BATCH_HEADS = True  # tests switch it off to cover the per-head path


def _attention_all_heads(
    ctx: LowerCtx,
    q: DTensor,
    k: DTensor,
    v: DTensor,
    out: DTensor,
    heads: int,
    d: int,
    dv: int,
    scale: float,
    causal: bool,
    sink: ScoreSink | None = None,
    out_hook: OutHook | None = None,
) -> bool:
    """All heads at once when K and V of every head fit SRAM: one LOAD each for K, V and each
    query tile, the heads' scores stacked as [heads·qt, Sk] so one ROW softmax (one per head if
    causal) and one MOVE serve every head, per-head MATMULs writing their column block of one
    [qt, heads·dv] output, one MOVE and one STORE. Returns False (nothing emitted) if it does
    not fit."""
    sq, sk = q.shape[0], k.shape[0]
    kd, vd = heads * d, heads * dv
    k_bytes, v_bytes = 2 * sk * kd, 2 * sk * vd
    if k_bytes + v_bytes <= ctx.cap(W, 1):
        v_buf = W
    elif k_bytes <= ctx.cap(W, 1) and v_bytes <= ctx.cap(V, 1):
        v_buf = V
    else:
        return False
    per_row = max(4 * (heads * sk + vd) / ctx.cap(C), 2 * (kd + heads * sk + vd) / ctx.cap(A))
    qt_max = min(sq, int(1 / per_row)) if per_row > 0 else sq
    if qt_max < 1:
        return False
    cfg = ctx.config
    qt = _query_tile(sq, qt_max, sk, d, dv, cfg)
    # only when its MATMULs cost no more than the per-head tiling's (small tiles waste folds)
    ph_row = max(4 * (sk + dv) / ctx.cap(C), 2 * (d + sk + dv) / ctx.cap(A))
    ph_qt = _query_tile(sq, max(1, min(sq, int(1 / ph_row))), sk, d, dv, cfg)
    if _attn_cycles(sq, qt, sk, d, dv, cfg) > _attn_cycles(sq, ph_qt, sk, d, dv, cfg):
        return False
    if v_buf == W:
        k_off = ctx.take(W, k_bytes + v_bytes)
        v_off = k_off + k_bytes
    else:
        k_off, v_off = ctx.take(W, k_bytes), ctx.take(V, v_bytes)
    load(ctx, k, W, k_off)
    load(ctx, v, v_buf, v_off)
    for q0 in range(0, sq, qt):
        ql = min(qt, sq - q0)
        a_off = ctx.take(A, 2 * qt * (kd + heads * sk + vd))
        p_off = a_off + 2 * qt * kd
        o16 = p_off + 2 * qt * heads * sk
        s_off = ctx.take(C, 4 * qt * (heads * sk + vd))
        o_off = s_off + 4 * qt * heads * sk
        load(ctx, q.block(q0, ql, 0, kd), A, a_off)
        for h in range(heads):
            ctx.emit(
                "MATMUL", mode="fp16", tb=1, a_buf=A, a_off=a_off + 2 * h * d, a_stride=kd,
                b_buf=W, b_off=k_off + 2 * h * d, b_stride=kd, c_buf=C,
                c_off=s_off + 4 * h * ql * sk, c_stride=sk, m=ql, n=sk, k=d,
            )  # fmt: skip
        row0 = q0 + (sk - sq)
        for h0, nh in [(h, 1) for h in range(heads)] if causal else [(0, heads)]:
            ctx.emit(
                "ROW", op="softmax", dtype=DType.FP32, dst_buf=C,
                dst_off=s_off + 4 * h0 * ql * sk, dst_stride=sk, src_buf=C,
                src_off=s_off + 4 * h0 * ql * sk, src_stride=sk, rows=nh * ql, cols=sk,
                scale=scale, causal=int(causal), row0=row0 if causal else 0,
            )  # fmt: skip
        if sink is not None:
            sink.stacked(ctx, s_off, ql, q0)
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=A, dst_off=p_off,
            dst_stride=sk, src_buf=C, src_off=s_off, src_stride=sk, rows=heads * ql, cols=sk,
        )  # fmt: skip
        for h in range(heads):
            ctx.emit(
                "MATMUL", mode="fp16", a_buf=A, a_off=p_off + 2 * h * ql * sk, a_stride=sk,
                b_buf=v_buf, b_off=v_off + 2 * h * dv, b_stride=vd, c_buf=C,
                c_off=o_off + 4 * h * dv, c_stride=vd, m=ql, n=dv, k=sk,
            )  # fmt: skip
        if out_hook is not None:
            out_hook(o_off, ql, vd, None)
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=A, dst_off=o16,
            dst_stride=vd, src_buf=C, src_off=o_off, src_stride=vd, rows=ql, cols=vd,
        )  # fmt: skip
        store(ctx, out.block(q0, ql, 0, vd), A, o16)
    return True


def _attn_cycles(sq: int, qt: int, sk: int, d: int, dv: int, config: Config) -> int:
    """MATMUL cycles of one head's Q·Kᵀ and P·V over query tiles of ``qt`` (cost model)."""
    full, rest = divmod(sq, qt)
    total = 0
    for rows, count in ((qt, full), (rest, 1)):
        if rows and count:
            one = matmul_cycles(rows, sk, d, "fp16", config)
            total += count * (one + matmul_cycles(rows, dv, sk, "fp16", config))
    return total


def _query_tile(sq: int, qt_max: int, sk: int, d: int, dv: int, config: Config) -> int:
    """Query rows per tile (≤ qt_max): fewest MATMUL cycles, then fewest tiles."""
    r = config.matrix.rows
    cands = {min(sq, q) for q in range(r, qt_max + 1, r)} | {min(sq, qt_max)}
    cands |= {math.ceil(sq / n) for n in range(1, sq + 1) if math.ceil(sq / n) <= qt_max}

    def score(q: int) -> tuple[int, int, int]:
        return _attn_cycles(sq, q, sk, d, dv, config), math.ceil(sq / q), -q

    return min(cands, key=score)


def residual_pays(ctx: LowerCtx, m: int, n: int, k: int, swappable: bool = False) -> bool:
    """Whether fusing a residual add into the GEMM epilogue beats a separate add: the fused plan
    (less vec space for output tiles) against the plain plan plus the add's DMA."""
    kw = {"act": None, "full_k": False, "swappable": swappable}
    fused = choose_plan(ctx, m, n, k, residual=True, **kw)
    plain = choose_plan(ctx, m, n, k, residual=False, **kw)
    if fused is None or plain is None:
        return fused is not None
    extra = dma_transfer_cycles(3 * 2 * m * n, ctx.config) * (1 + TRAFFIC_WEIGHT)
    return fused.est_cycles <= plain.est_cycles + extra


@rule(nn.MatmulOp)
def lower_matmul(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """a·b (or a·bᵀ), one GEMM per batch index."""
    assert isinstance(op, nn.MatmulOp)
    a, b = env.tensor(op.lhs), env.tensor(op.rhs)
    tb = op.bool_prop("transpose_b")
    out = _out(ctx, op)
    batch = a.shape[:-2]
    if not batch:
        gemm(ctx, a, b, out, tb=tb)
        return out
    for idx in itertools.product(*(range(d) for d in batch)):
        gemm(ctx, _sub(a, idx), _sub(b, idx), _sub(out, idx), tb=tb)
    return out


def _sub(t: DTensor, idx: tuple[int, ...]) -> DTensor:
    """The trailing 2-D matrix at batch index ``idx``."""
    addr = t.addr + sum(i * s for i, s in zip(idx, t.strides, strict=False))
    return DTensor(addr, t.shape[-2:], t.strides[-2:], t.dtype)


@rule(nn.PatchEmbedOp)
def lower_patch_embed(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """im2col then a GEMM. Per channel c and pixel row ph of the patch, one LOAD brings pixel row
    ph of every patch row (a [gh, W] strided block) into vec; seen with row stride p it is the
    [(gh, gw), p] slice of the patch matrix, which one MOVE puts at columns (c, ph, ·)."""
    assert isinstance(op, nn.PatchEmbedOp)
    img = env.tensor(op.input)
    p = op.int_prop("patch")
    c, h, w = img.shape
    gh, gw, cpp = h // p, w // p, c * p * p
    patches = ctx.activation((gh * gw, cpp))
    row_bytes = gw * cpp * 2  # one patch row of the patch matrix
    per = min(gh, ctx.cap(A, 1) // max(row_bytes, 1), ctx.cap(V) // max(2 * w, 1))
    if per < 1:
        raise ctx.too_big(f"patch_embed: one patch row of {row_bytes} B exceeds the tile budget")
    cs, hs = img.strides[0], img.strides[1]
    for g0 in range(0, gh, per):
        ng = min(per, gh - g0)
        off = ctx.take(A, ng * row_bytes)
        for ci in range(c):
            for ph in range(p):
                t = ctx.take(V, 2 * ng * w)
                ctx.emit(
                    "LOAD", dtype=DType.FP16, dst_buf=V, dst_off=t, dst_stride=w,
                    src_addr=img.addr + ci * cs + (g0 * p + ph) * hs, src_stride=p * hs,
                    rows=ng, cols=w,
                )  # fmt: skip
                ctx.emit(
                    "MOVE", src_dtype=DType.FP16, dst_dtype=DType.FP16, dst_buf=A,
                    dst_off=off + (ci * p + ph) * p * 2, dst_stride=cpp, src_buf=V, src_off=t,
                    src_stride=p, rows=ng * gw, cols=p,
                )  # fmt: skip
        store(ctx, patches.block(g0 * gw, ng * gw, 0, cpp), A, off)
    out = _out(ctx, op)
    wt = linear_weight(ctx, env.weight(op.weight, "nn.patch_embed"))
    gemm(ctx, patches, wt, out, bias=bias_row(ctx, env.weight(op.bias, "nn.patch_embed bias")))
    return out


@rule(nn.AttentionOp)
def lower_attention(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Per head: K_h, V_h resident; per query tile Q·K_hᵀ (tb=1), [+ key-mask bias row,]
    ROW softmax (scale, causal), fp16 P, P·V_h, fp16 out."""
    assert isinstance(op, nn.AttentionOp)
    q, k, v = (env.tensor(x).as2d() for x in (op.query, op.key, op.value))
    # a key-padding mask: a bias row held for the op (key_mask.py), per-head path only
    bias = key_mask_bias(ctx, env.tensor(op.mask), k.shape[0]) if op.mask is not None else None
    heads, d, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
    scale = to_f32(op.float_prop("scale"))
    causal = op.bool_prop("causal")
    sq, sk = q.shape[0], k.shape[0]
    out = _out(ctx, op).as2d()
    sink = score_sink(ctx, op, env)  # a tokens.importance fused into this attention
    hsink = head_sink(ctx, op, env)  # a tokens.head_importance of this attention's output
    hook = hsink.tile if hsink is not None else None
    if (
        bias is None
        and BATCH_HEADS
        and _attention_all_heads(ctx, q, k, v, out, heads, d, dv, scale, causal, sink, hook)
    ):
        pass
    else:
        qt, split = per_head_plan(ctx, sq, sk, d, dv)
        for h in range(heads):
            attention_head(
                ctx, h, q, k, v, out, (d, dv, qt), scale, causal, split, sink, bias, hook
            )
    if sink is not None:
        env[sink.op.results[0]] = sink.finish(ctx)
    if hsink is not None:
        env[hsink.op.results[0]] = hsink.finish(ctx)
    return out


def per_head_plan(ctx: LowerCtx, sq: int, sk: int, d: int, dv: int) -> tuple[int, bool]:
    """The per-head path's query tile and whether K_h (wgt) and V_h (vec) are split."""
    k_bytes, v_bytes = 2 * sk * d, 2 * sk * dv
    # K_h and V_h of a head together in wgt, or (long sequences) K_h in wgt and V_h in vec
    split = k_bytes + v_bytes > ctx.cap(W, 1)
    if split and (k_bytes > ctx.cap(W, 1) or v_bytes > ctx.cap(V, 1)):
        raise ctx.too_big(
            f"attention: K and V of one head ({sk} keys, {k_bytes} + {v_bytes} B) fit neither "
            f"the wgt buffer ({ctx.cap(W, 1)} B) nor wgt and vec apart ({ctx.cap(V, 1)} B)"
        )
    # query rows per tile: scores+out fp32 in acc; Q, P and the fp16 out in act; double-buffered
    per_row = max(4 * (sk + dv) / ctx.cap(C), 2 * (d + sk + dv) / ctx.cap(A))
    qt = min(sq, int(1 / per_row) if per_row > 0 else sq)
    if qt < 1:
        raise ctx.too_big(f"attention: one query row needs {4 * (sk + dv)} B of acc (keys {sk})")
    return _query_tile(sq, qt, sk, d, dv, ctx.config), split


def attention_head(
    ctx: LowerCtx,
    h: int,
    q: DTensor,
    k: DTensor,
    v: DTensor,
    out: DTensor,
    dims: tuple[int, int, int],
    scale: float,
    causal: bool,
    split: bool,
    sink: ScoreSink | None = None,
    bias: Callable[[int, int, int], None] | None = None,
    out_hook: OutHook | None = None,
    held: tuple[Buf, int] | None = None,
    guard: TileGuard | None = None,
) -> None:
    """One head: K_h, V_h resident; per query tile Q·K_hᵀ, ROW softmax, P·V_h, STORE (or, with
    ``held`` = (buf, off) of the whole fp16 output in SRAM, a MOVE into its columns there).
    ``bias(s_off, q0, rows)``, if given, edits the fp32 scores before the softmax; ``guard``
    puts each query tile's work under a predicate the caller computes (FACT's one-hot tiles)."""
    d, dv, qt = dims
    sq, sk = q.shape[0], k.shape[0]
    k_bytes, v_bytes = 2 * sk * d, 2 * sk * dv
    if split:
        k_off, v_buf = ctx.take(W, k_bytes), V
        v_off = ctx.take(V, v_bytes)
    else:
        k_off, v_buf = ctx.take(W, k_bytes + v_bytes), W
        v_off = k_off + k_bytes
    load(ctx, k.block(0, sk, h * d, d), W, k_off)
    load(ctx, v.block(0, sk, h * dv, dv), v_buf, v_off)
    for q0 in range(0, sq, qt):
        ql = min(qt, sq - q0)
        a_off = ctx.take(A, 2 * qt * (d + sk + dv))
        p_off = a_off + 2 * qt * d
        o16 = p_off + 2 * qt * sk
        s_off = ctx.take(C, 4 * qt * (sk + dv))
        o_off = s_off + 4 * qt * sk
        pred = guard[0](q0, ql) if guard is not None else None
        start = len(ctx.instrs)
        load(ctx, q.block(q0, ql, h * d, d), A, a_off)
        ctx.emit(
            "MATMUL", mode="fp16", tb=1, a_buf=A, a_off=a_off, a_stride=d, b_buf=W,
            b_off=k_off, b_stride=d, c_buf=C, c_off=s_off, c_stride=sk, m=ql, n=sk, k=d,
        )  # fmt: skip
        if bias is not None:
            bias(s_off, q0, ql)
        ctx.emit(
            "ROW", op="softmax", dtype=DType.FP32, dst_buf=C, dst_off=s_off, dst_stride=sk,
            src_buf=C, src_off=s_off, src_stride=sk, rows=ql, cols=sk, scale=scale,
            causal=int(causal), row0=q0 + (sk - sq) if causal else 0,
        )  # fmt: skip
        if sink is not None:
            sink.tile(ctx, s_off, ql, q0)
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=A, dst_off=p_off,
            dst_stride=sk, src_buf=C, src_off=s_off, src_stride=sk, rows=ql, cols=sk,
        )  # fmt: skip
        ctx.emit(
            "MATMUL", mode="fp16", a_buf=A, a_off=p_off, a_stride=sk, b_buf=v_buf,
            b_off=v_off, b_stride=dv, c_buf=C, c_off=o_off, c_stride=dv,
            m=ql, n=dv, k=sk,
        )  # fmt: skip
        if out_hook is not None:
            out_hook(o_off, ql, dv, h)
        vd = out.shape[1]
        dst_buf, dst_off, dst_stride = (
            (A, o16, dv) if held is None else (held[0], held[1] + 2 * (q0 * vd + h * dv), vd)
        )
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=dst_buf,
            dst_off=dst_off, dst_stride=dst_stride, src_buf=C, src_off=o_off, src_stride=dv,
            rows=ql, cols=dv,
        )  # fmt: skip
        if held is None:
            store(ctx, out.block(q0, ql, h * dv, dv), A, o16)
        if guard is not None and pred is not None:
            predicate_since(ctx, start, pred)
            guard[1](q0, ql, pred, v_buf, v_off)
