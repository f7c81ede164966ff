"""Lowering of the tokens dialect: importance (IMPACC) and selection (TOPK) on the select unit.

- `tokens.importance`: per head, K_h resident in wgt; per query tile Q·K_hᵀ (MATMUL tb=1, fp32 in
  acc), ROW softmax (scale, causal), IMPACC colsum into fp32 accumulators in idx (zeroed by a LOAD
  of a zero row); "cls" accumulates only query row 0 and scales by 1/heads. The scores leave as
  one fp32 row. This standalone form runs only when the op could not be fused into the
  attention it scores (backend/lower/importance_sink.py: IMPACC on the attention's own softmax
  tiles, no extra MATMUL or softmax).
- `tokens.select`: the fp32 scores into idx, VEC add of a constant row holding +inf at the
  protected positions, TOPK (SpAtten's engine: ⌈n/16⌉+3 cycles per pass), int32 indices stored.
  The kept rows are then `nn.gather` (GATHER by DMA), so later layers run on fewer rows.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.importance_sink import sunk_scores, zeros_row
from backend.lower.registry import rule
from backend.lower.values import DTensor
from dialects import tokens

A, W, C, V, IX = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC, Buf.IDX
F32 = DType.FP32


@rule(tokens.MaskedImportanceOp)
def lower_masked_importance(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Only as IMPACC inside the masked nn.attention it scores (importance_sink.py)."""
    return sunk_scores(op, env, "nn.attention with the same q, k and mask")


@rule(tokens.QuantImportanceOp)
def lower_quant_importance(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Only as IMPACC inside the quant.attention it scores (importance_sink.py)."""
    return sunk_scores(op, env, "quant.attention with the same q, k and scales")


@rule(tokens.ImportanceOp)
def lower_importance(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    assert isinstance(op, tokens.ImportanceOp)
    if op.results[0] in env.vals:  # computed by the attention it scores (importance_sink.py)
        done = env.raw(op.results[0])
        assert isinstance(done, DTensor)  # the sink's fp32 score row, never a weight
        return done
    q, k = env.tensor(op.query).as2d(), env.tensor(op.key).as2d()
    heads, d = op.int_prop("heads"), op.int_prop("qk_dim")
    scale, causal = to_f32(op.float_prop("scale")), op.bool_prop("causal")
    cls = op.prop("kind") == "cls"
    sq, sk = q.shape[0], k.shape[0]
    if 2 * sk * d > ctx.cap(W, 1) or 4 * sk > ctx.cap(IX, 1):
        raise ctx.too_big(f"importance: {sk} keys of one head do not fit wgt/idx")
    qt = 1 if cls else min(sq, ctx.cap(C) // (4 * sk), ctx.cap(A) // (2 * d))
    if qt < 1:
        raise ctx.too_big(f"importance: one query row needs {4 * sk} B of acc")
    acc = ctx.hold(IX, 4 * sk)
    prior = env.tensor(op.prior) if op.prior is not None else zeros_row(ctx, sk)
    if prior.dtype is not F32 or not prior.is_contiguous:
        raise BackendError(f"{op.name}: prior must be a contiguous fp32 vector")
    load(ctx, DTensor.contiguous(prior.addr, (1, sk), F32), IX, acc)
    rows = range(0, 1) if cls else range(0, sq, qt)
    for h in range(heads):
        k_off = ctx.take(W, 2 * sk * d)
        load(ctx, k.block(0, sk, h * d, d), W, k_off)
        for q0 in rows:
            ql = min(qt, sq - q0)
            a_off = ctx.take(A, 2 * qt * d)
            s_off = ctx.take(C, 4 * qt * sk)
            load(ctx, q.block(q0, ql, h * d, d), A, a_off)
            ctx.emit(
                "MATMUL", mode="fp16", tb=1, a_buf=A, a_off=a_off, a_stride=d, b_buf=W,
                b_off=k_off, b_stride=d, c_buf=C, c_off=s_off, c_stride=sk, m=ql, n=sk, k=d,
            )  # fmt: skip
            ctx.emit(
                "ROW", op="softmax", dtype=F32, dst_buf=C, dst_off=s_off, dst_stride=sk,
                src_buf=C, src_off=s_off, src_stride=sk, rows=ql, cols=sk, scale=scale,
                causal=int(causal), row0=q0 + (sk - sq) if causal else 0,
            )  # fmt: skip
            ctx.emit(
                "IMPACC", mode="colsum", src_dtype=F32, src_buf=C, src_off=s_off, src_stride=sk,
                rows=ql, cols=sk, dst_buf=IX, dst_off=acc,
            )  # fmt: skip
    if cls and op.prior is not None:
        raise BackendError(f'{op.name}: kind "cls" with a prior is not lowered')
    if cls:
        ctx.emit(
            "VEC", op="mul", bcast="scalar", dtype=F32, dst_buf=IX, dst_off=acc, dst_stride=sk,
            a_buf=IX, a_off=acc, a_stride=sk, rows=1, cols=sk, imm=to_f32(1.0 / heads),
        )  # fmt: skip
    out = ctx.activation((sk,), F32)
    store(ctx, DTensor.contiguous(out.addr, (1, sk), F32), IX, acc)
    return out


def protect_scores(ctx: LowerCtx, s_off: int, n: int, protect: list[int]) -> None:
    """+inf onto the protected positions of the fp32 score row [n] at idx[s_off] (VEC add of a
    constant row), so TOPK always keeps them."""
    if not protect:
        return
    bias = np.zeros((1, n), np.float32)
    bias[0, protect] = np.inf
    b = ctx.add_data(("tokens.protect", f"{n}:{protect}"), bias, F32)
    b_off = ctx.take(IX, 4 * n)
    load(ctx, b, IX, b_off)
    ctx.emit(
        "VEC", op="add", dtype=F32, dst_buf=IX, dst_off=s_off, dst_stride=n, a_buf=IX,
        a_off=s_off, a_stride=n, b_buf=IX, b_off=b_off, b_stride=n, rows=1, cols=n,
    )  # fmt: skip


@rule(tokens.SelectOp)
def lower_select(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    assert isinstance(op, tokens.SelectOp)
    s = env.tensor(op.scores)
    if s.dtype is not F32 or not s.is_contiguous:
        raise BackendError(f"{op.name}: scores must be a contiguous fp32 vector")
    n, k = s.shape[0], op.int_prop("k")
    if 4 * (2 * n + k) > ctx.cap(IX, 1):
        raise ctx.too_big(f"select: {n} scores do not fit idx")
    s_off = ctx.take(IX, 4 * n)
    load(ctx, DTensor.contiguous(s.addr, (1, n), F32), IX, s_off)
    protect_scores(ctx, s_off, n, [p % n for p in op.ints_prop("protect")])
    i_off = ctx.take(IX, 4 * k)
    ctx.emit(
        "TOPK", src_buf=IX, src_off=s_off, src_stride=n, rows=1, n=n, k=k, dst_buf=IX,
        dst_off=i_off,
    )  # fmt: skip
    out = ctx.activation((k,), DType.INT32)
    store(ctx, DTensor.contiguous(out.addr, (1, k), DType.INT32), IX, i_off)
    return out


def _gather_rows(ctx: LowerCtx, table: DTensor, i_off: int, k: int, buf: Buf, off: int) -> None:
    """GATHER k rows of a DRAM table (row-major 2-D) by the int32 indices at idx[i_off]."""
    ctx.emit(
        "GATHER", dtype=table.dtype, dst_buf=buf, dst_off=off, dst_stride=table.shape[1],
        src_addr=table.addr, src_stride=table.strides[0], idx_buf=IX, idx_off=i_off, rows=k,
        cols=table.shape[1],
    )  # fmt: skip


@rule(tokens.FuseOp)
def lower_fuse(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """EViT: kept rows by GATHER; the fused row Σ_pruned a_i x_i / Σ_pruned a_i as (Σ_all − Σ_kept)
    of fp32 a-weighted rows, both sums by IMPACC colsum (float64 inside the unit)."""
    assert isinstance(op, tokens.FuseOp)
    x, idx, att = env.tensor(op.input), env.tensor(op.indices), env.tensor(op.attention)
    if not (x.is_contiguous and idx.is_contiguous and att.is_contiguous and att.dtype is F32):
        raise BackendError(f"{op.name}: expected contiguous rows, indices and fp32 attention")
    n, d = x.shape
    k = idx.shape[0]
    if (
        4 * n * d > ctx.cap(C, 1)
        or 2 * n * d > ctx.cap(V, 1)
        or 4 * (2 * n + 2 * k + d + 1) > ctx.cap(IX, 1)
    ):
        raise ctx.too_big(f"fuse: {n} rows of {d} do not fit one tile")
    out = ctx.activation((k + 1, d))
    col = lambda t, m: DTensor.contiguous(t.addr, (m, 1), t.dtype)  # noqa: E731
    # accumulators: numerator [1, d] and denominator [1, 1], zeroed
    num = ctx.hold(IX, 4 * (d + 1))
    den = num + 4 * d
    load(ctx, zeros_row(ctx, d + 1), IX, num)
    a_off = ctx.take(IX, 4 * n)
    load(ctx, DTensor.contiguous(att.addr, (1, n), F32), IX, a_off)  # = the [n, 1] column
    i_off = ctx.take(IX, 4 * k)
    load(ctx, DTensor.contiguous(idx.addr, (1, k), DType.INT32), IX, i_off)
    ak_off = ctx.take(IX, 4 * k)
    _gather_rows(ctx, col(att, n), i_off, k, IX, ak_off)
    x_off = ctx.take(V, 2 * n * d)
    load(ctx, x, V, x_off)
    xk_off = ctx.take(V, 2 * k * d)
    _gather_rows(ctx, x, i_off, k, V, xk_off)
    store(ctx, out.block(0, k, 0, d), V, xk_off)
    ctx.emit(
        "VEC", op="mul", bcast="scalar", dtype=F32, dst_buf=IX, dst_off=ak_off, dst_stride=1,
        a_buf=IX, a_off=ak_off, a_stride=1, rows=k, cols=1, imm=-1.0,
    )  # fmt: skip
    for rows, src, w in ((n, x_off, a_off), (k, xk_off, ak_off)):
        f_off = ctx.take(C, 4 * rows * d)
        ctx.emit(
            "MOVE", src_dtype=DType.FP16, dst_dtype=F32, dst_buf=C, dst_off=f_off, dst_stride=d,
            src_buf=V, src_off=src, src_stride=d, rows=rows, cols=d,
        )  # fmt: skip
        ctx.emit(
            "VEC", op="mul", bcast="col", dtype=F32, dst_buf=C, dst_off=f_off, dst_stride=d,
            a_buf=C, a_off=f_off, a_stride=d, b_buf=IX, b_off=w, b_stride=1, rows=rows, cols=d,
        )  # fmt: skip
        for buf, off, cols, dst in ((C, f_off, d, num), (IX, w, 1, den)):
            ctx.emit(
                "IMPACC", mode="colsum", src_dtype=F32, src_buf=buf, src_off=off,
                src_stride=cols, rows=rows, cols=cols, dst_buf=IX, dst_off=dst,
            )  # fmt: skip
    ctx.emit(
        "VEC", op="div", bcast="col", dtype=F32, dst_buf=IX, dst_off=num, dst_stride=d,
        a_buf=IX, a_off=num, a_stride=d, b_buf=IX, b_off=den, b_stride=1, rows=1, cols=d,
    )  # fmt: skip
    o_off = ctx.take(V, 2 * d)
    ctx.emit(
        "MOVE", src_dtype=F32, dst_dtype=DType.FP16, dst_buf=V, dst_off=o_off, dst_stride=d,
        src_buf=IX, src_off=num, src_stride=d, rows=1, cols=d,
    )  # fmt: skip
    store(ctx, out.block(k, 1, 0, d), V, o_off)
    return out


BIG = 1.0e30  # exp(BIG·(s − max s)) is 1 at a row's maximum and 0 elsewhere


@rule(tokens.SqueezeOp)
def lower_squeeze(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """TPS squeeze as dense tile algebra over all n rows (each kept host is its own best match,
    cos = 1, weight e¹, exactly TPS's self weight):

    x̂ = √D·x/|x| by ROW layernorm of [x, −x] (mean 0, no sqrt instruction needed); S = x̂·x̂_keptᵀ
    (MATMUL) = D·cos, protected host columns −∞; one-hot host matrix exp(BIG·(S − rowmax S)) times
    w_i = exp(rowmax_i / D) (protected rows 0); host rows = (Wᵀ·x) / colsum(W) (MOVE transpose,
    MATMUL, IMPACC colsum, VEC div); protected kept rows copied unchanged. Exact ties between two
    hosts give both the row (the reference picks the lower index)."""
    assert isinstance(op, tokens.SqueezeOp)
    x, idx = env.tensor(op.input), env.tensor(op.indices)
    if not (x.is_contiguous and idx.is_contiguous and x.dtype is DType.FP16):
        raise BackendError(f"{op.name}: expected contiguous fp16 rows and int32 indices")
    n, d = x.shape
    k = idx.shape[0]
    prot = sorted({p % n for p in op.ints_prop("protect")})
    pos = {0: 0, n - 1: k - 1}
    if any(p not in pos for p in prot):
        raise BackendError(f"{op.name}: only the first and the last token can be protected here")
    if (
        2 * n * 3 * d > ctx.cap(V, 1)
        or 4 * n * k + 4 * k * d > ctx.cap(C, 1)
        or 2 * k * n > ctx.cap(A, 1)
        or 2 * k * d > ctx.cap(W, 1)
        or 4 * (4 * d + 3 * n + 3 * k) > ctx.cap(IX, 1)
    ):
        raise ctx.too_big(f"squeeze: {n} rows of {d} ({k} kept) do not fit one tile")
    out = ctx.activation((k, d))
    f16 = DType.FP16
    x_off, x2 = ctx.take(V, 2 * n * d), ctx.take(V, 4 * n * d)
    load(ctx, x, V, x_off)
    ctx.emit(
        "VEC", op="copy", dtype=f16, dst_buf=V, dst_off=x2, dst_stride=2 * d, a_buf=V,
        a_off=x_off, a_stride=d, rows=n, cols=d,
    )  # fmt: skip
    ctx.emit(
        "VEC", op="mul", bcast="scalar", dtype=f16, dst_buf=V, dst_off=x2 + 2 * d,
        dst_stride=2 * d, a_buf=V, a_off=x_off, a_stride=d, rows=n, cols=d, imm=-1.0,
    )  # fmt: skip
    gb = np.concatenate([np.ones((1, 2 * d)), np.zeros((1, 2 * d))]).astype(np.float32)
    g_off = ctx.hold(IX, gb.nbytes)
    load(ctx, ctx.add_data(("tokens.ln_unit", str(2 * d)), gb, F32), IX, g_off)
    ctx.emit(
        "ROW", op="layernorm", dtype=f16, dst_buf=V, dst_off=x2, dst_stride=2 * d, src_buf=V,
        src_off=x2, src_stride=2 * d, rows=n, cols=2 * d, eps=to_f32(1e-12), g_buf=IX, g_off=g_off,
    )  # fmt: skip
    i_off = ctx.take(IX, 4 * k)
    load(ctx, DTensor.contiguous(idx.addr, (1, k), DType.INT32), IX, i_off)
    kh = ctx.take(W, 2 * k * d)
    ctx.emit(
        "VGATHER", dtype=f16, dst_buf=W, dst_off=kh, dst_stride=d, src_buf=V, src_off=x2,
        src_stride=2 * d, idx_buf=IX, idx_off=i_off, rows=k, cols=d,
    )  # fmt: skip
    s_off = ctx.take(C, 4 * n * k)
    ctx.emit(
        "MATMUL", mode="fp16", tb=1, a_buf=V, a_off=x2, a_stride=2 * d, b_buf=W, b_off=kh,
        b_stride=d, c_buf=C, c_off=s_off, c_stride=k, m=n, n=k, k=d,
    )  # fmt: skip
    if prot:
        bias = np.zeros((1, k), np.float32)
        bias[0, [pos[p] for p in prot]] = -np.inf
        b_off = ctx.take(IX, 4 * k)
        load(ctx, ctx.add_data(("tokens.hosts", f"{k}:{prot}:{n}"), bias, F32), IX, b_off)
        ctx.emit(
            "VEC", op="add", bcast="row", dtype=F32, dst_buf=C, dst_off=s_off, dst_stride=k,
            a_buf=C, a_off=s_off, a_stride=k, b_buf=IX, b_off=b_off, b_stride=k, rows=n, cols=k,
        )  # fmt: skip
    mx = ctx.take(IX, 4 * n)
    ctx.emit(
        "ROW", op="rowmax", dtype=F32, dst_buf=IX, dst_off=mx, dst_stride=1, src_buf=C,
        src_off=s_off, src_stride=k, rows=n, cols=k,
    )  # fmt: skip
    vec = lambda o, **kw: ctx.emit("VEC", dtype=F32, **o, **kw)  # noqa: E731
    s_t = {
        "dst_buf": C,
        "dst_off": s_off,
        "dst_stride": k,
        "a_buf": C,
        "a_off": s_off,
        "a_stride": k,
    }
    m_t = {"dst_buf": IX, "dst_off": mx, "dst_stride": 1, "a_buf": IX, "a_off": mx, "a_stride": 1}
    vec(s_t, op="sub", bcast="col", b_buf=IX, b_off=mx, b_stride=1, rows=n, cols=k)
    vec(s_t, op="mul", bcast="scalar", rows=n, cols=k, imm=to_f32(BIG))
    vec(s_t, op="exp", rows=n, cols=k)
    vec(m_t, op="mul", bcast="scalar", rows=n, cols=1, imm=to_f32(1.0 / d))
    vec(m_t, op="exp", rows=n, cols=1)
    if prot:
        keep_rows = np.ones((1, n), np.float32)
        keep_rows[0, prot] = 0.0
        r_off = ctx.take(IX, 4 * n)
        load(ctx, ctx.add_data(("tokens.rows", f"{n}:{prot}"), keep_rows, F32), IX, r_off)
        vec(m_t, op="mul", b_buf=IX, b_off=r_off, b_stride=1, rows=n, cols=1)
    vec(s_t, op="mul", bcast="col", b_buf=IX, b_off=mx, b_stride=1, rows=n, cols=k)
    den = ctx.take(IX, 4 * k)
    load(ctx, zeros_row(ctx, k), IX, den)
    ctx.emit(
        "IMPACC", mode="colsum", src_dtype=F32, src_buf=C, src_off=s_off, src_stride=k, rows=n,
        cols=k, dst_buf=IX, dst_off=den,
    )  # fmt: skip
    wt = ctx.take(A, 2 * k * n)
    ctx.emit(
        "MOVE", src_dtype=F32, dst_dtype=f16, transpose=1, dst_buf=A, dst_off=wt, dst_stride=n,
        src_buf=C, src_off=s_off, src_stride=k, rows=n, cols=k,
    )  # fmt: skip
    num = ctx.take(C, 4 * k * d)
    ctx.emit(
        "MATMUL", mode="fp16", a_buf=A, a_off=wt, a_stride=n, b_buf=V, b_off=x_off, b_stride=d,
        c_buf=C, c_off=num, c_stride=d, m=k, n=d, k=n,
    )  # fmt: skip
    ctx.emit(
        "VEC", op="div", bcast="col", dtype=F32, dst_buf=C, dst_off=num, dst_stride=d, a_buf=C,
        a_off=num, a_stride=d, b_buf=IX, b_off=den, b_stride=1, rows=k, cols=d,
    )  # fmt: skip
    for p in prot:  # protected rows: the token itself, unchanged
        ctx.emit(
            "MOVE", src_dtype=f16, dst_dtype=F32, dst_buf=C, dst_off=num + 4 * pos[p] * d,
            dst_stride=d, src_buf=V, src_off=x_off + 2 * p * d, src_stride=d, rows=1, cols=d,
        )  # fmt: skip
    o_off = ctx.take(V, 2 * k * d)
    ctx.emit(
        "MOVE", src_dtype=F32, dst_dtype=f16, dst_buf=V, dst_off=o_off, dst_stride=d,
        src_buf=C, src_off=num, src_stride=d, rows=k, cols=d,
    )  # fmt: skip
    store(ctx, out, V, o_off)
    return out


from backend.lower import rules_predict as _rules_predict  # noqa: E402, F401  (FACT rules)
