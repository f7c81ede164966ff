"""Functional semantics, one handler per instruction class (dispatch built from the ISA table).

A handler gets the machine, the instruction and its decoded operand tiles (bounds already
checked) and returns the number of MATMUL rows run at the masked low precision (0 otherwise).

Exactness: integer MATMUL goes through float BLAS. |a·b| ≤ 128·128 = 2^14 for int8, so every
partial sum of K products is an integer below K·2^14; float32 holds those exactly while
K ≤ 1024 (2^24) and float64 while K < 2^39. We use float32 up to K = 1024 and float64 beyond.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backend.errors import SimError
from backend.interpreter.numerics import (
    f16_to_f32,
    gelu,
    gelu_tanh,
    int4_msb,
    leading_one,
    store_f16_t,
    unpack_int4,
    unpack_nibbles,
)
from backend.interpreter.operands import SPACE_NAMES, Ops, Tile
from backend.interpreter.state import NP_DTYPES, Machine
from backend.isa import DType, Instr, dispatch
from backend.topk import topk_indices

F32_EXACT_K = 1024  # int8·int8 sums are exact in float32 up to this K
INT_RANGE = {DType.INT8: (-128, 127), DType.INT4: (-8, 7), DType.INT32: (-(2**31), 2**31 - 1)}


def _choice(instr: Instr, name: str) -> str:
    return instr.cls.field(name).choices[int(instr.args[name])]


def _gather_rows(m: Machine, space: int, base: int, stride: int, width: int, idx: np.ndarray):
    """(len(idx), width) bytes of rows ``base + idx[i]·stride`` of a memory (bounds-checked)."""
    if idx.size == 0:
        return np.zeros((0, width), np.uint8)
    starts = base + idx.astype(np.int64) * stride
    lo, hi = int(starts.min()), int(starts.max()) + width
    if int(idx.min()) < 0 or hi > m.sizes[space]:
        raise SimError(
            f"index out of bounds: index range [{int(idx.min())}, {int(idx.max())}] reaches "
            f"bytes [{lo}, {hi}) of {SPACE_NAMES[space]} (size {m.sizes[space]} B)"
        )
    return m.mem[space][starts[:, None] + np.arange(width)]


def _scatter_rows(m: Machine, base: int, stride: int, rows: np.ndarray, idx: np.ndarray) -> None:
    """Write ``rows[i]`` (bytes) at DRAM ``base + idx[i]·stride`` in row order (bounds-checked)."""
    if idx.size == 0:
        return
    starts = base + idx.astype(np.int64) * stride
    lo, hi = int(starts.min()), int(starts.max()) + rows.shape[1]
    if int(idx.min()) < 0 or hi > m.sizes[5]:
        raise SimError(
            f"index out of bounds: index range [{int(idx.min())}, {int(idx.max())}] reaches "
            f"bytes [{lo}, {hi}) of dram (size {m.sizes[5]} B)"
        )
    if np.unique(idx).size == idx.size:
        m.mem[5][starts[:, None] + np.arange(rows.shape[1])] = rows
        return
    for r, s in enumerate(starts.tolist()):  # repeated indices: in row order, the last wins
        m.mem[5][s : s + rows.shape[1]] = rows[r]


# ---- DMA ----------------------------------------------------------------------------------------


def _load(m: Machine, i: Instr, o: Ops) -> int:
    m.raw(o["dst"])[...] = m.raw(o["src"])
    return 0


def _loadbp(m: Machine, i: Instr, o: Ops) -> int:
    raw = m.raw(o["src"])
    dst = m.view(o["dst"])
    if _choice(i, "plane") == "msb":
        dst[...] = unpack_int4(raw) << 4
    else:
        dst[...] = (dst.astype(np.int16) + unpack_nibbles(raw)).astype(np.int8)
    return 0


def _scatter(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    idx = m.flat(o["idx"]).view("<i4")
    _scatter_rows(m, int(a["dst_addr"]), int(a["dst_stride"]), m.raw(o["src"]), idx)
    return 0


def _gather(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    idx = m.flat(o["idx"]).view("<i4")
    dst = o["dst"]
    m.raw(dst)[...] = _gather_rows(m, 5, int(a["src_addr"]), int(a["src_stride"]), dst.width, idx)
    return 0


def _store(m: Machine, i: Instr, o: Ops) -> int:
    m.raw(o["dst"])[...] = m.raw(o["src"])
    return 0


# ---- matrix -------------------------------------------------------------------------------------


def _sp24_dense(vals: np.ndarray, pos: np.ndarray, k: int) -> np.ndarray:
    """Expand 2:4 values (rows, k/2) + position nibbles (rows, k/4) to dense (rows, k), values' dtype.

    Group g of a row holds values 2g, 2g+1 at positions ``pos & 3`` and ``pos >> 2``.
    """
    rows, g = pos.shape
    p0 = (pos & 3).astype(np.intp)
    p1 = (pos >> 2).astype(np.intp)
    if np.any(p0 == p1):
        r, c = np.argwhere(p0 == p1)[0]
        raise SimError(f"sp24 metadata names position {p0[r, c]} twice (row {r}, group {c})")
    dense = np.zeros((rows, g, 4), vals.dtype)
    v = vals.reshape(rows, g, 2)
    np.put_along_axis(dense, p0[:, :, None], v[:, :, 0:1], axis=2)
    np.put_along_axis(dense, p1[:, :, None], v[:, :, 1:2], axis=2)
    return dense.reshape(rows, k)


def _b_operand(m: Machine, i: Instr, o: Ops, mode: str, k: int, n: int) -> np.ndarray:
    """B as a (k, n) array (a transposed view when tb=1).

    sp24/sp24h: values are [K/2, N] int8/fp16 (tb: [N, K/2]); metadata is a dense packed-nibble
    array [K/4, N] (tb: [N, K/4]), one nibble per group of 4 along K: ``pos0 | pos1 << 2``.
    """
    tb = bool(i.args["tb"])
    bt = o["b"]
    if mode in ("sp24", "sp24h"):
        vals = np.asarray(m.read(bt))
        g = k // 4
        nib = unpack_nibbles(m.flat(o["meta"]).reshape(1, -1))[0, : g * n]
        if tb:
            pos = nib.reshape(n, g)
        else:
            vals, pos = vals.T, nib.reshape(g, n).T
        return _sp24_dense(np.ascontiguousarray(vals), np.ascontiguousarray(pos), k).T
    b = m.read(bt)
    return b.T if tb else b


def _matmul(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    mode = _choice(i, "mode")
    k, n = int(a["k"]), int(a["n"])
    half = mode in ("fp16", "sp24h")
    ft = np.float32 if half or k <= F32_EXACT_K else np.float64
    Af = m.read_as(o["a"], ft)
    if mode in ("sp24", "sp24h"):
        Bf = _b_operand(m, i, o, mode, k, n).astype(ft)
    else:
        Bf = m.read_as(o["b"], ft)
        if a["tb"]:
            Bf = Bf.T
    out = Af @ Bf
    c = m.view(o["c"])
    if half:
        if a["acc"]:
            c += out
        else:
            c[...] = out
        return 0
    masked = 0
    if "mask" in o:
        rows = np.flatnonzero(m.flat(o["mask"]))
        masked = int(rows.size)
        if masked:
            b = _b_operand(m, i, o, mode, k, n)
            out[rows] = Af[rows] @ int4_msb(b).astype(ft)
    if a["acc"] or ft is np.float64:
        res = out.astype(np.int64)
        if a["acc"]:
            res += c
        c[...] = res.astype(np.int32)  # two's complement wrap, as int32 hardware
    else:
        c[...] = out
    return masked


# ---- vector -------------------------------------------------------------------------------------

_FLOAT_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "tanh": np.tanh,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
}


def _store_int(m: Machine, t: Tile, v: np.ndarray) -> None:
    """Store integer results: int32 wraps (two's complement), int8 saturates."""
    if t.dtype is DType.INT32:
        m.write(t, v.astype(np.int64).astype(np.int32))
    else:
        lo, hi = INT_RANGE[t.dtype]
        m.write(t, np.clip(v, lo, hi))


# fp16 ⊕ fp16 by numpy's float16 loops: each computes float32(a) ⊕ float32(b) rounded to fp16
# (a single rounding of the exact result, since float32 has 24 ≥ 2·11 + 2 significand bits), the
# bits of converting both to float32, ⊕ in float32 and storing to fp16. When both operands are
# NaN, numpy's add and multiply loops return the second one's payload where float32 arithmetic
# returns the first's, so those two get their operands swapped (tests/backend/
# test_interp_fastpaths.py checks every fp16 bit pattern).
def _half_add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.add(b, a, out=out)


def _half_mul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.multiply(b, a, out=out)


def _half_sub(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.subtract(a, b, out=out)


def _half_div(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=out)


HALF_OPS: dict[str, Callable[..., np.ndarray]] = {
    "add": _half_add,
    "sub": _half_sub,
    "mul": _half_mul,
    "div": _half_div,
}
FLOAT_OPS2: dict[str, np.ufunc] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
}


def _vec(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    op = _choice(i, "op")
    dt = DType(int(a["dtype"]))
    if dt is DType.FP16 and op in HALF_OPS and "b" in o:
        HALF_OPS[op](m.view(o["a"]), m.view(o["b"]), out=m.view(o["dst"]))
        return 0
    is_float = dt in (DType.FP16, DType.FP32)
    wt = np.float32 if is_float else np.int64
    if not is_float:
        x = m.read(o["a"]).astype(wt)
    elif dt is DType.FP32 and op not in ("exp", "tanh"):
        x = m.view(o["a"])  # exactly rounded ops give the same bits on a view
    else:
        x = m.read_f32(o["a"])
    bc = _choice(i, "bcast")
    if op in ("exp", "tanh", "gelu", "gelu_tanh"):
        r = _FLOAT_OPS[op](x)
    elif op == "relu":
        r = np.maximum(x, 0)
    elif op == "copy":
        r = x
    else:
        if bc == "scalar":
            if is_float:
                y = np.asarray(a["imm"], dtype=np.float32)
            else:  # truncated toward zero, saturated to int64
                y = np.int64(int(max(-(2.0**62), min(2.0**62, float(a["imm"])))))
        else:
            if not is_float:
                y = m.read(o["b"]).astype(wt)
            else:
                y = m.view(o["b"]) if dt is DType.FP32 else m.read_f32(o["b"])
        if op == "add":
            r = x + y
        elif op == "sub":
            r = x - y
        elif op == "mul":
            r = x * y
        elif op == "div":  # IEEE results: run() executes under np.errstate(all="ignore")
            r = x / y
        elif op == "max":
            r = np.maximum(x, y)
        else:
            r = np.minimum(x, y)
    dst = o["dst"]
    if is_float:
        m.write(dst, r)
    else:
        _store_int(m, dst, r)
    return 0


def _round_shift(p: np.ndarray, s: int) -> np.ndarray:
    """(p + 2^(s−1)) >> s without overflow: (p >> s) + bit s−1 of p."""
    if s == 0:
        return p
    return (p >> s) + ((p >> (s - 1)) & 1)


def _requant(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    x = m.read(o["src"]).astype(np.int64)
    if a["per_col"]:
        mult = m.flat(o["mult"]).view("<i4").astype(np.int64)[None, :]
    else:
        mult = np.int64(int(a["mult"]))
    q = _round_shift(x * mult, int(a["shift"])) + int(a["zp"])
    dst = o["dst"]
    lo, hi = INT_RANGE[dst.dtype]
    m.write(dst, np.clip(q, lo, hi).astype(np.int8))
    return 0


def _mean_rows(x: np.ndarray) -> np.ndarray:
    """``x.mean(axis=1, keepdims=True)`` as numpy computes it, without its Python wrapper."""
    s = np.add.reduce(x, axis=1, keepdims=True)
    return np.true_divide(s, np.intp(x.shape[1]), out=s, casting="unsafe")


def _row(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    op = _choice(i, "op")
    src, dst = o["src"], o["dst"]
    if op in ("rowmax", "rowsum"):
        x = m.read(src)
        if src.dtype in (DType.FP16, DType.FP32):
            x = m.read_f32(src)
            r = x.max(axis=1) if op == "rowmax" else x.sum(axis=1, dtype=np.float32)
            with np.errstate(over="ignore"):
                m.write(dst, r[:, None])
        else:
            x = x.astype(np.int64)
            _store_int(m, dst, (x.max(axis=1) if op == "rowmax" else x.sum(axis=1))[:, None])
        return 0
    x = m.read_f32(src)
    if op == "softmax":
        r = softmax_rows(x, a["scale"], bool(a["causal"]), int(a["row0"]))
    else:
        r = layernorm_rows(x, m.flat(o["g"]).view("<f4"), a["eps"])
    m.write(dst, r)
    return 0


def softmax_rows(x: np.ndarray, scale: float, causal: bool, row0: int) -> np.ndarray:
    """ROW softmax of float32 rows ``x`` (scaled; causal: column c of row r hidden past row0 + r)."""
    x = x * np.float32(scale)
    if causal:
        rows, cols = x.shape
        lim = row0 + np.arange(rows)[:, None]
        x = np.where(np.arange(cols)[None, :] > lim, np.float32(-np.inf), x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm_rows(
    x: np.ndarray, g: np.ndarray, eps: float, scratch: tuple[np.ndarray, ...] | None = None
) -> np.ndarray:
    """ROW layernorm of float32 rows ``x``, computed in ``x`` (returned); ``g`` holds γ then β.
    ``scratch``: float32 arrays shaped like ``x``, ``(rows, 1)`` and ``(rows, 1)`` to use instead
    of new ones (the prepared closures share them)."""
    rows, cols = x.shape
    if scratch is None:
        scratch = (
            np.empty_like(x),
            np.empty((rows, 1), np.float32),
            np.empty((rows, 1), np.float32),
        )
    d2, mean, var = scratch
    n = np.intp(cols)
    np.add.reduce(x, axis=1, keepdims=True, out=mean)
    np.true_divide(mean, n, out=mean, casting="unsafe")
    np.subtract(x, mean, out=x)
    np.multiply(x, x, out=d2)
    np.add.reduce(d2, axis=1, keepdims=True, out=var)
    np.true_divide(var, n, out=var, casting="unsafe")
    np.add(var, np.float32(eps), out=var)
    np.sqrt(var, out=var)
    np.divide(x, var, out=x)
    np.multiply(x, g[:cols], out=x)
    np.add(x, g[cols:], out=x)
    return x


def _move(m: Machine, i: Instr, o: Ops) -> int:
    a = i.args
    src, dst = o["src"], o["dst"]
    tr = bool(a["transpose"])
    if src.dtype is DType.FP32 and dst.dtype is DType.FP16:  # convert, then transpose
        store_f16_t(m.view(dst), m.view(src), tr)
        return 0
    if src.dtype is DType.FP16 and dst.dtype is DType.FP32:
        v = f16_to_f32(m.view(src))
        m.view(dst)[...] = v.T if tr else v
        return 0
    x = m.read(src)
    if "cs" in o:  # int → float with per-column scales: f32(x) ⊗ s[c] (quant.dequantize)
        x = x.astype(np.float32) * m.flat(o["cs"]).view("<f4")[None, :]
        with np.errstate(over="ignore"):
            m.write(dst, (x.T if tr else x).astype(NP_DTYPES[dst.dtype]))
        return 0
    if tr:
        x = x.T
    s_float = src.dtype in (DType.FP16, DType.FP32)
    d_float = dst.dtype in (DType.FP16, DType.FP32)
    if d_float:
        if not s_float:
            x = x.astype(np.float64) * float(a["scale"])
        with np.errstate(over="ignore"):
            m.write(dst, x if src.dtype is dst.dtype else x.astype(NP_DTYPES[dst.dtype]))
    elif s_float:  # float → int: fp32 x·scale, round half to even, saturate (NaN → 0)
        lo, hi = INT_RANGE[dst.dtype]
        with np.errstate(over="ignore", invalid="ignore"):
            r = np.nan_to_num(np.rint(x.astype(np.float32) * np.float32(a["scale"])), nan=0.0)
        m.write(dst, np.clip(r, lo, hi).astype(np.int64).astype(NP_DTYPES[dst.dtype]))
    else:
        lo, hi = INT_RANGE[dst.dtype]
        m.write(dst, np.clip(x.astype(np.int64), lo, hi))
    return 0


def _vgather(m: Machine, i: Instr, o: Ops) -> int:
    idx = m.flat(o["idx"]).view("<i4")
    src, dst = o["src"], o["dst"]
    base = src.off - int(idx.min()) * src.stride  # o["src"] starts at the smallest index
    m.raw(dst)[...] = _gather_rows(m, src.space, base, src.stride, dst.width, idx)
    return 0


# ---- select -------------------------------------------------------------------------------------


def _topk(m: Machine, i: Instr, o: Ops) -> int:
    k = int(i.args["k"])
    order = topk_indices(m.read(o["src"]), k)
    if i.args["mask"]:  # FACT: the kept positions as an int8 0/1 row mask
        rows, n = order.shape[0], int(i.args["n"])
        mask = np.zeros((rows, n), np.int8)
        mask[np.arange(rows)[:, None], order] = 1
        m.flat(o["dst"]).view(np.int8)[...] = mask.reshape(-1)
        return 0
    m.flat(o["dst"]).view("<i4")[...] = order.reshape(-1)
    return 0


def _impacc(m: Machine, i: Instr, o: Ops) -> int:
    x = m.read(o["src"]).astype(np.float64)
    acc = m.flat(o["dst"]).view("<f4")
    if _choice(i, "mode") == "colsum":
        s = x.sum(axis=0)
    else:
        h = int(i.args["heads"])
        s = np.abs(x).reshape(x.shape[0], h, x.shape[1] // h).sum(axis=(0, 2))
    acc[...] = (acc.astype(np.float64) + s).astype(np.float32)
    return 0


def _predict(m: Machine, i: Instr, o: Ops) -> int:
    k = int(i.args["k"])
    ft = np.float32 if k <= F32_EXACT_K else np.float64
    A = leading_one(np.ascontiguousarray(m.read(o["a"]))).astype(ft)
    B = leading_one(np.ascontiguousarray(m.read(o["b"]))).astype(ft)
    if i.args["tb"]:
        B = B.T
    m.write(o["c"], (A @ B).astype(np.float32))
    return 0


_CMP = {
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "eq": np.equal,
    "ne": np.not_equal,
}


def _cmp(m: Machine, i: Instr, o: Ops) -> int:
    x = m.read(o["src"]).astype(np.float64)
    red = _choice(i, "reduce")
    v = x.max() if red == "max" else x.min() if red == "min" else x.sum()
    m.set_pred(int(i.args["pdst"]), bool(_CMP[_choice(i, "cmp")](v, float(i.args["imm"]))))
    return 0


def _setp(m: Machine, i: Instr, o: Ops) -> int:
    m.set_pred(int(i.args["pdst"]), bool(i.args["value"]))
    return 0


def _nop(m: Machine, i: Instr, o: Ops) -> int:
    return 0


_finish = _nop
HANDLERS = dispatch(globals(), "interpreter semantics")
