"""Lowering of FACT eager prediction: `tokens.predict` and `tokens.masked_attention`.

- `tokens.predict` (int8 x, Wq, Wk): PREDICT x·Wqᵀ and x·Wkᵀ (leading-one products, exact fp32
  integer sums) into acc, MOVE fp32 → int8 with scale 2^-shift (Q₈, K₈ in vec); per head PREDICT
  Q₈_h·K₈_hᵀ, VEC mul by f32(scale·unit) (+ a constant 0/−inf table when causal), TOPK mask=1
  (row-wise top-k as an int8 0/1 mask; ties to the lower index, backend/topk.py). One-hot rows
  (only when margin >= 0):
  TOPK k=1 mask, ROW rowmax of S and of S − 2^100·top1 (the max of the rest), d − margin clamped
  to {0, 1} (·2^100 twice, max 0, min 1), then mask += onehot·(top1 − mask) in int8. The mask
  leaves as int8 [heads, n, n] (0/1), bit-identical to the reference's.
- `tokens.masked_attention`: the per-head attention (rules_dense.attention_head) with a score
  bias: per query tile the int8 mask rows are loaded, VEC −1 gives {−1, 0}, MOVE int8→fp32 ×2^100
  gives {−2^100, 0}, VEC add onto the fp32 scores before the softmax: exp underflows to exactly
  0 where the reference has −inf, and kept scores are unchanged.

K/V rows no query selects and one-hot Q rows are not skipped (the mask is known only after the
k/v GEMMs are scheduled; docs/tokens.md).
"""

from __future__ import annotations

import itertools

import numpy as np
from xdsl.ir import Operation

from backend.errors import BackendError
from backend.isa import Buf, DType, to_f32
from backend.lower.context import LowerCtx, predicate_since
from backend.lower.dma import load, store
from backend.lower.env import Env
from backend.lower.registry import rule
from backend.lower.rules_dense import attention_head, per_head_plan
from backend.lower.rules_heads import N_PRED
from backend.lower.rules_mixed import finish, fused_row_precision
from backend.lower.values import DTensor
from dialects import tokens
from dialects.nn_base import shape_of

A, W, C, V, IX = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC, Buf.IDX
F32, I8 = DType.FP32, DType.INT8
HUGE = 2.0**100  # −HUGE·scale underflows exp to exactly 0; (d − margin)·HUGE² ≥ 1 when > 0


def _vec(ctx: LowerCtx, op: str, dt: DType, dst: tuple[Buf, int, int], a: tuple[Buf, int, int],
         rows: int, cols: int, b: tuple[Buf, int, int] | None = None, bcast: str = "none",
         imm: float = 0.0) -> None:  # fmt: skip
    """One VEC; operands are (buf, byte offset, stride in elements)."""
    f: dict[str, object] = {"dst_buf": dst[0], "dst_off": dst[1], "dst_stride": dst[2]}
    f |= {"a_buf": a[0], "a_off": a[1], "a_stride": a[2]}
    if b is not None:
        f |= {"b_buf": b[0], "b_off": b[1], "b_stride": b[2]}
    ctx.emit("VEC", op=op, bcast=bcast, dtype=dt, rows=rows, cols=cols, imm=imm, **f)


def _int8_weight(ctx: LowerCtx, env: Env, v: object, what: str) -> DTensor:
    w = env.weight(v, f"tokens.predict {what}")  # type: ignore[arg-type]
    if w.array.dtype != np.int8:
        raise BackendError(f"tokens.predict: {what} must be an int8 weight")
    return ctx.add_data((w.sym, "i8"), w.array, I8)


def _al(n: int) -> int:
    return -(-n // 64) * 64  # SRAM holds are 64-byte aligned (backend/lower/sram.py)


def _query_tile(ctx: LowerCtx, n: int, hd: int, d: int, one_hot: bool, causal: bool) -> int:
    """Query rows per score tile: all n when the per-head tables fit, else the most that fit
    (acc: Q̃/K̃ + S [+ T] [+ causal] fp32 tiles; idx: masks; vec: Q₈, K₈ [+ tril])."""
    for buf, need, name, fix in (
        (A, n * d, f"x ({n}×{d} int8)", "fewer tokens"),
        (W, 2 * hd * d, f"Wq and Wk (2×{hd}×{d} int8)", "a narrower model"),
        (C, 4 * n * hd, f"Q̃ ({n}×{hd} fp32)", "fewer tokens or a narrower model"),
        (V, 2 * n * hd, f"Q₈ and K₈ (2×{n}×{hd} int8)", "fewer tokens or a narrower model"),
    ):
        if _al(need) > ctx.sram[buf].ring:
            raise ctx.too_big(
                f"eager-predict's {name} = {need} B does not fit SRAM '{buf.asm_name}'"
                f" ({ctx.sram[buf].ring} B free; the prediction is not tiled over them: use {fix})"
            )

    def fits(rt: int) -> bool:
        acc = _al(4 * n * hd) + _al(4 * rt * n) * (1 + one_hot + causal)
        ix = _al(rt * n) * (1 + one_hot) + (_al(12 * rt) if one_hot else 0) + 3 * _al(4 * n)
        vec = _al(2 * n * hd) + (_al(rt * n) if causal else 0)
        rings = ctx.sram
        return acc <= rings[C].ring and ix <= rings[IX].ring and vec <= rings[V].ring

    rt = n
    while rt > 0 and not fits(rt):
        rt -= 1
    if rt == 0:
        raise ctx.too_big(
            f"eager-predict: not one query row of {n} fp32 scores fits beside Q̃"
            f" ({4 * n * hd} B) in 'acc'; use fewer tokens"
        )
    return rt


@rule(tokens.PredictOp)
def lower_predict(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """int8 PREDICT → requantize → per-head PREDICT → scale → TOPK masks → int8 [heads, n, n]
    (per query tile of `_query_tile` rows when the n × n tables do not fit)."""
    assert isinstance(op, tokens.PredictOp)
    x = env.tensor(op.input).as2d()
    if x.dtype is not I8:
        raise BackendError(f"{op.name}: the input must be int8 (quant.quantize)")
    wq, wk = _int8_weight(ctx, env, op.wq, "wq"), _int8_weight(ctx, env, op.wk, "wk")
    heads, dqk, topk = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("topk")
    n, d = x.shape
    hd = heads * dqk
    causal = op.bool_prop("causal")
    one_hot = n >= 2 and topk >= 2 and op.float_prop("margin") >= 0
    qt = _query_tile(ctx, n, hd, d, one_hot, causal)
    x_off = ctx.hold(A, n * d)
    w_off = ctx.hold(W, 2 * hd * d)
    qk_off = ctx.hold(C, 4 * n * hd)  # Q̃ then K̃ (fp32), reused
    s_off = ctx.hold(C, 4 * qt * n)
    t_off = ctx.hold(C, 4 * qt * n) if one_hot else 0
    c_off = ctx.hold(C, 4 * qt * n) if causal else 0
    q8 = ctx.hold(V, 2 * n * hd)
    k8 = q8 + n * hd
    mk = ctx.hold(IX, qt * n)
    m1 = ctx.hold(IX, qt * n) if one_hot else 0
    rv = ctx.hold(IX, 12 * qt) if one_hot else 0  # rowmax, rest max, one-hot (fp32 [qt, 1] each)
    tril = ctx.hold(V, qt * n) if causal else 0
    load(ctx, x, A, x_off)
    load(ctx, wq, W, w_off)
    load(ctx, wk, W, w_off + hd * d)
    neg = keep = None
    if causal:
        lower = np.tril(np.ones((n, n), bool))
        neg = ctx.add_data(("fact.causal", str(n)), np.where(lower, 0, -np.inf), F32)
        keep = ctx.add_data(("fact.tril8", str(n)), lower.astype(np.int8), I8)
        load(ctx, neg.block(0, qt, 0, n), C, c_off)
        load(ctx, keep.block(0, qt, 0, n), V, tril)
    for i, dst in enumerate((q8, k8)):
        ctx.emit(
            "PREDICT", a_buf=A, a_off=x_off, a_stride=d, b_buf=W, b_off=w_off + i * hd * d,
            b_stride=d, tb=1, m=n, n=hd, k=d, c_buf=C, c_off=qk_off, c_stride=hd,
        )  # fmt: skip
        shift = op.int_prop("q_shift" if i == 0 else "k_shift")
        ctx.emit(
            "MOVE", src_dtype=F32, dst_dtype=I8, dst_buf=V, dst_off=dst, dst_stride=hd,
            src_buf=C, src_off=qk_off, src_stride=hd, rows=n, cols=hd, scale=2.0**-shift,
        )  # fmt: skip
    rp = fused_row_precision(ctx, op, env, n)  # FACT mixed FFN: counts while masks are in idx
    out = ctx.activation((heads, n, n), I8)
    c = to_f32(op.float_prop("scale") * op.float_prop("unit"))
    S, T = (C, s_off, n), (C, t_off, n)
    for r0 in range(0, n, qt):
        rl = min(qt, n - r0)
        if causal and r0 > 0:
            assert neg is not None and keep is not None
            load(ctx, neg.block(r0, rl, 0, n), C, c_off)
            load(ctx, keep.block(r0, rl, 0, n), V, tril)
        for h in range(heads):
            ctx.emit(
                "PREDICT", a_buf=V, a_off=q8 + r0 * hd + h * dqk, a_stride=hd, b_buf=V,
                b_off=k8 + h * dqk, b_stride=hd, tb=1, m=rl, n=n, k=dqk, c_buf=C, c_off=s_off,
                c_stride=n,
            )  # fmt: skip
            _vec(ctx, "mul", F32, S, S, rl, n, bcast="scalar", imm=c)
            if causal:
                _vec(ctx, "add", F32, S, S, rl, n, b=(C, c_off, n))
            ctx.emit(
                "TOPK", src_buf=C, src_off=s_off, src_stride=n, rows=rl, n=n, k=topk,
                dst_buf=IX, dst_off=mk, mask=1,
            )  # fmt: skip
            if one_hot:
                _one_hot(ctx, S, T, mk, m1, rv, rl, n, op.float_prop("margin"))
            if causal:
                _vec(ctx, "mul", I8, (IX, mk, n), (IX, mk, n), rl, n, b=(V, tril, n))
            if rp is not None:
                ctx.emit(
                    "IMPACC", mode="colsum", src_dtype=I8, src_buf=IX, src_off=mk, src_stride=n,
                    rows=rl, cols=n, dst_buf=IX, dst_off=rp[1],
                )  # fmt: skip
            store(ctx, out.as2d().block(h * n + r0, rl, 0, n), IX, mk)
    if rp is not None:
        env[rp[0].results[0]] = finish(ctx, rp[0], rp[1], n)
    return out


def _one_hot(ctx: LowerCtx, S: tuple[Buf, int, int], T: tuple[Buf, int, int], mk: int, m1: int,
             rv: int, rows: int, n: int, margin: float) -> None:  # fmt: skip
    """mask ← top-1 mask on rows whose max beats the max of the rest by more than margin."""
    ctx.emit(
        "TOPK", src_buf=S[0], src_off=S[1], src_stride=n, rows=rows, n=n, k=1,
        dst_buf=IX, dst_off=m1, mask=1,
    )  # fmt: skip
    r1, r2, oh = (IX, rv, 1), (IX, rv + 4 * rows, 1), (IX, rv + 8 * rows, 1)
    for src, dst in ((S, r1), (T, r2)):
        if src is T:
            ctx.emit(
                "MOVE", src_dtype=I8, dst_dtype=F32, dst_buf=T[0], dst_off=T[1], dst_stride=n,
                src_buf=IX, src_off=m1, src_stride=n, rows=rows, cols=n, scale=-HUGE,
            )  # fmt: skip
            _vec(ctx, "add", F32, T, T, rows, n, b=S)
        ctx.emit(
            "ROW", op="rowmax", dtype=F32, dst_buf=dst[0], dst_off=dst[1], dst_stride=1,
            src_buf=src[0], src_off=src[1], src_stride=n, rows=rows, cols=n,
        )  # fmt: skip
    _vec(ctx, "sub", F32, oh, r1, rows, 1, b=r2)
    _vec(ctx, "sub", F32, oh, oh, rows, 1, bcast="scalar", imm=to_f32(margin))
    for _ in range(2):
        _vec(ctx, "mul", F32, oh, oh, rows, 1, bcast="scalar", imm=HUGE)
    _vec(ctx, "max", F32, oh, oh, rows, 1, bcast="scalar", imm=0.0)
    _vec(ctx, "min", F32, oh, oh, rows, 1, bcast="scalar", imm=1.0)
    ctx.emit(
        "MOVE", src_dtype=F32, dst_dtype=I8, dst_buf=IX, dst_off=rv, dst_stride=1,
        src_buf=IX, src_off=oh[1], src_stride=1, rows=rows, cols=1, scale=1.0,
    )  # fmt: skip
    M1, MK = (IX, m1, n), (IX, mk, n)
    _vec(ctx, "sub", I8, M1, M1, rows, n, b=MK)
    _vec(ctx, "mul", I8, M1, M1, rows, n, b=(IX, rv, 1), bcast="col")
    _vec(ctx, "add", I8, MK, MK, rows, n, b=M1)


def _one_hot_rows(op: Operation) -> bool:
    """Whether the mask can have one-hot rows worth a copy: it comes from a tokens.predict with
    the one-hot rule on (margin ≥ 0) or top-1."""
    pred = op.operands[3].owner
    if not isinstance(pred, tokens.PredictOp):
        return False
    return pred.float_prop("margin") >= 0 or pred.int_prop("topk") == 1


@rule(tokens.MaskedAttentionOp)
def lower_masked_attention(ctx: LowerCtx, op: Operation, env: Env) -> DTensor:
    """Per-head attention; masked scores get −2^100 before the softmax (exactly 0 after it).
    With one-hot rows possible (FACT), a query tile whose mask rows each keep one key skips
    Q·Kᵀ and the softmax: its rows are V's selected rows, the one-hot mask (fp16) · V_h (exact:
    1.0·v + 0)."""
    assert isinstance(op, tokens.MaskedAttentionOp)
    q, k, v = (env.tensor(x).as2d() for x in op.operands[:3])
    mask = env.tensor(op.operands[3])
    if mask.dtype is not I8 or not mask.is_contiguous:
        raise BackendError(f"{op.name}: the mask must come from tokens.predict (int8)")
    if any(t.dtype is not DType.FP16 for t in (q, k, v)):
        raise BackendError(f"{op.name}: only fp16 q, k, v are lowered")
    heads, d, dv = op.int_prop("heads"), op.int_prop("qk_dim"), op.int_prop("v_dim")
    scale, causal = to_f32(op.float_prop("scale")), op.bool_prop("causal")
    sq, sk = q.shape[0], k.shape[0]
    m2 = mask.as2d()
    out = ctx.activation(tuple(shape_of(op.results[0].type))).as2d()
    qt, split = per_head_plan(ctx, sq, sk, d, dv)
    mo = ctx.hold(V, qt * sk)  # op-lifetime scratch: the ring holds V_h when K/V are split
    t = ctx.hold(V, 4 * qt * sk)
    copy = _one_hot_rows(op)
    g_off = ctx.hold(V, 2 * qt * dv) if copy else 0
    c_off = ctx.hold(C, 4 * qt * dv) if copy else 0
    tiles = itertools.count()
    for h in range(heads):

        def bias(s_off: int, q0: int, rows: int, h: int = h) -> None:
            if not copy:  # else the guard loaded these rows
                load(ctx, m2.block(h * sq + q0, rows, 0, sk), V, mo)
            _vec(ctx, "sub", I8, (V, mo, sk), (V, mo, sk), rows, sk, bcast="scalar", imm=1.0)
            ctx.emit(
                "MOVE", src_dtype=I8, dst_dtype=F32, dst_buf=V, dst_off=t, dst_stride=sk,
                src_buf=V, src_off=mo, src_stride=sk, rows=rows, cols=sk, scale=HUGE,
            )  # fmt: skip
            _vec(ctx, "add", F32, (C, s_off, sk), (C, s_off, sk), rows, sk, b=(V, t, sk))

        def before(q0: int, rows: int, h: int = h) -> int:
            """p = some row of the tile keeps ≥ 2 keys (mask sum > rows): compute the tile."""
            p = 1 + next(tiles) % N_PRED
            load(ctx, m2.block(h * sq + q0, rows, 0, sk), V, mo)
            ctx.emit(
                "CMP", reduce="sum", cmp="gt", dtype=I8, src_buf=V, src_off=mo, src_stride=sk,
                rows=rows, cols=sk, imm=rows + 0.5, pdst=p,
            )  # fmt: skip
            return p

        def after(q0: int, rows: int, p: int, v_buf: Buf, v_off: int, h: int = h) -> None:
            """Under ¬p: the rows are V_h's selected rows, as the one-hot mask (fp16) · V_h."""
            start = len(ctx.instrs)
            ctx.emit(
                "MOVE", src_dtype=I8, dst_dtype=DType.FP16, dst_buf=V, dst_off=t, dst_stride=sk,
                src_buf=V, src_off=mo, src_stride=sk, rows=rows, cols=sk,
            )  # fmt: skip
            ctx.emit(
                "MATMUL", mode="fp16", a_buf=V, a_off=t, a_stride=sk, b_buf=v_buf, b_off=v_off,
                b_stride=dv, c_buf=C, c_off=c_off, c_stride=dv, m=rows, n=dv, k=sk,
            )  # fmt: skip
            ctx.emit(
                "MOVE", src_dtype=F32, dst_dtype=DType.FP16, dst_buf=V, dst_off=g_off,
                dst_stride=dv, src_buf=C, src_off=c_off, src_stride=dv, rows=rows, cols=dv,
            )  # fmt: skip
            store(ctx, out.block(q0, rows, h * dv, dv), V, g_off)
            predicate_since(ctx, start, p, neg=True)

        guard = (before, after) if copy else None
        attention_head(
            ctx, h, q, k, v, out, (d, dv, qt), scale, causal, split, bias=bias, guard=guard
        )
    return out


from backend.lower import rules_fact as _rules_fact  # noqa: E402, F401  (tokens.key_linear)
