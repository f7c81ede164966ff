"""Tiled fp16 GEMM: ``out[M,N] = act(A[M,K] · B + bias)``, B stored [K,N] (or [N,K] with tb).

The plan picks the tile sizes (mt, nt, kc) and the loop order that minimise an estimate of
max(DMA cycles, MATMUL cycles) from the shared cost model, subject to the SRAM budgets of the
config: A tiles in ``act``, B tiles in ``wgt``, fp32 accumulators in ``acc``, the fp16 output
tile (and the bias row) in ``vec``. Streamed operands get double buffering (half the ring);
an operand held across the inner loop (K in one step) may take the whole ring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from backend.config import Config
from backend.cost.formulas import dma_transfer_cycles, matmul_cycles, vector_cycles, vector_passes
from backend.isa import Buf, DType
from backend.lower.context import LowerCtx
from backend.lower.dma import load
from backend.lower.gemm_quant import (
    Int4Weight,
    QGemm,
    finish_chunk,
    load_residual,
    quantize_tile,
)
from backend.lower.values import DTensor

A, W, C, V = Buf.ACT, Buf.WGT, Buf.ACC, Buf.VEC
ALIGN = 64
TRAFFIC_WEIGHT = 3  # DRAM cycles also cost energy and bandwidth others could use: prefer reuse
SWAP = "auto"  # orientation of constant-weight GEMMs: "auto" (by estimate), "never", "always"
SPLIT = "auto"  # B tiles split between wgt and vec: "auto" (by estimate), "never", "only" (tests)


def _al(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class GemmPlan:
    """Tile sizes, loop order ('m': rows outer, 'n': columns outer) and the estimate."""

    mt: int
    nt: int
    kc: int
    order: str
    dram_bytes: int
    est_cycles: float
    c_buf: Buf = Buf.ACC
    c_depth: int = 2
    swap: bool = False  # computes outᵀ = W[N,K]·Xᵀ (tokens on the array's columns)
    b_split: bool = False  # B tiles' column halves in wgt and vec (C and output both in acc)

    @property
    def o_buf(self) -> Buf:
        """Where the fp16 output (and residual, bias) tiles go: the other of acc/vec (acc when
        vec holds half of B)."""
        if self.b_split:
            return Buf.ACC
        return Buf.VEC if self.c_buf == Buf.ACC else Buf.ACC

    def counts(self, m: int, n: int, k: int) -> tuple[int, int, int]:
        return math.ceil(m / self.mt), math.ceil(n / self.nt), math.ceil(k / self.kc)

    def walk(self, m: int, n: int) -> Iterator[tuple[bool, int, int, int, int]]:
        """Output tiles in loop order as (later, m0, ml, n0, nl). ``later`` marks every tile but the
        first of its inner loop: with a single K step, the held operand (A for order 'm', B for 'n')
        is still in SRAM there and is not reloaded."""
        nm, nn, _ = self.counts(m, n, 1)
        outer, inner = (nm, nn) if self.order == "m" else (nn, nm)
        for o in range(outer):
            for i in range(inner):
                mi, ni = (o, i) if self.order == "m" else (i, o)
                m0, n0 = mi * self.mt, ni * self.nt
                yield i > 0, m0, min(self.mt, m - m0), n0, min(self.nt, n - n0)


def hold_bias(ctx: LowerCtx, bias: DTensor | None, length: int) -> int:
    """Load the whole fp32 bias row into idx once when it fits half the ring and idx is unused;
    its offset, or -1 (the epilogue then loads it per tile)."""
    idx = ctx.sram[Buf.IDX]
    if bias is None or 4 * length > idx.ring // 2 or idx.took:
        return -1
    off = ctx.hold(Buf.IDX, 4 * length)
    load(ctx, bias, Buf.IDX, off)
    return off


def _cands(full: int, unit: int) -> list[int]:
    out = {full}
    t = unit
    while t < full:
        out.add(t)
        t *= 2
    for s in range(2, 9):
        v = math.ceil(full / s / unit) * unit
        if 0 < v < full:
            out.add(v)
    return sorted(out)


@dataclass(frozen=True)
class LoopFit:
    """Tile bytes and the SRAM room for them, and the bytes of A and B moved once."""

    a_tile: int
    b_tile: int
    a_room: int
    b_room: int
    a_bytes: int
    b_bytes: int


def loop_orders(
    f: LoopFit,
    m: int,
    n: int,
    nm: int,
    nn: int,
    nk: int,
    mm: float,
    dmas_per_k: int,
    config: Config,
) -> list[tuple[str, int, float]]:
    """(order, DRAM bytes, estimated cycles) for each loop order ("m": A tile held across the N loop,
    "n": B tile held across the M loop) whose double-buffered tiles fit. `mm` is the matrix time and
    `dmas_per_k` the loads per K step (2 dense; 3 with 2:4 metadata). Shared by every GEMM planner."""
    out: list[tuple[str, int, float]] = []
    for order in ("m", "n"):
        held_a = order == "m" and nk == 1
        held_b = order == "n" and nk == 1
        if f.a_tile * (1 if held_a else 2) > f.a_room or f.b_tile * (1 if held_b else 2) > f.b_room:
            continue
        if order == "m":
            traffic = (f.a_bytes if nk == 1 else f.a_bytes * nn) + f.b_bytes * nm
        else:
            traffic = (f.b_bytes if nk == 1 else f.b_bytes * nm) + f.a_bytes * nn
        traffic += 2 * m * n
        dma = dma_transfer_cycles(traffic, config)
        dma += config.dram.latency_cycles * (nm * nn * (nk * dmas_per_k + 1)) / 8
        out.append((order, traffic, max(dma, mm) + 0.1 * min(dma, mm) + TRAFFIC_WEIGHT * dma))
    return out


@lru_cache(maxsize=4096)
def plan_gemm(
    m: int,
    n: int,
    k: int,
    config: Config,
    rings: tuple[int, int, int, int],
    residual: bool = False,
    act: str | None = None,
    full_k: bool = False,
    swap: bool = False,
    tb: bool = False,
    split_b: str = "auto",
) -> GemmPlan | None:
    """Best plan for an M×K·K×N GEMM given the ring sizes of act, wgt, acc, vec (None: no fit);
    ``residual``: the epilogue also needs fp16 residual tiles; ``act``: its fused activation;
    ``full_k``: tiles must hold whole rows of K (a layer-norm prologue); ``swap``: the swapped
    orientation (M = weight rows, N = tokens, C tiles transposed back in the epilogue); ``tb``:
    B is stored [N, K]. A plan may split each B tile's N range in halves, one in wgt and one in
    vec (twice as much B resident, so A is re-read half as often), with the fp32 C and the
    whole-tile fp16 output sharing acc (``split_b``: "auto", "never" or "only")."""
    r_act, r_wgt, r_acc, r_vec = rings
    best: GemmPlan | None = None
    a_bytes, b_bytes = 2 * m * k, 2 * k * n
    epi_passes = sum(vector_passes(x) for x in ("add", "move", *((act,) if act else ())))
    cols = config.matrix.cols
    for mt in _cands(m, config.matrix.rows):
        for nt in _cands(n, cols):
            c_tile = _al(4 * mt * nt)
            splittable = nt % (2 * cols) == 0 and not (swap and full_k)
            options = [(Buf.ACC, r_acc, r_vec, False), (Buf.VEC, r_vec, r_acc, False)]
            if split_b == "only":
                options = []
            if splittable and split_b != "never":
                options.append((Buf.ACC, r_acc, r_acc, True))
            for c_buf, r_c, r_o, split in options:
                tok, feat = (nt, mt) if swap else (mt, nt)  # the fp16 output chunk is [tok, feat]
                if c_tile > r_c or epilogue_rows(tok, feat, r_o, residual) < 1:
                    continue
                c_depth = 2 if 2 * c_tile <= r_c else 1
                if split:  # C tiles and whole-tile output chunks share acc without wrapping
                    if epilogue_rows(tok, feat, r_acc, residual) < tok:
                        continue
                    side = 2 * (_al(4 * feat) + _al(2 * mt * nt) * (2 if residual else 1))
                    c_depth = 2 if 2 * c_tile + side <= r_acc else 1
                    if c_tile + side > r_acc:
                        continue
                for kc in [k] if full_k else _cands(k, 16):
                    nm, nn, nk = math.ceil(m / mt), math.ceil(n / nt), math.ceil(k / kc)
                    a_tile, b_tile = _al(2 * mt * kc), _al(2 * kc * nt)
                    if split:
                        b_tile = _al(kc * nt)  # one half, in wgt and again in vec
                    mm = _mm_total(m, n, k, mt, nt, kc, split, config)
                    if (
                        c_depth == 1
                    ):  # the epilogue of a tile cannot overlap the next tile's MATMULs
                        mm += vector_cycles(mt * nt, epi_passes, config) * nm * nn
                    b_room = min(r_wgt, r_vec) if split else r_wgt
                    fits = LoopFit(a_tile, b_tile, r_act, b_room, a_bytes, b_bytes)
                    for order, traffic, est in loop_orders(fits, m, n, nm, nn, nk, mm, 2, config):
                        if best is None or est < best.est_cycles:
                            best = GemmPlan(
                                mt, nt, kc, order, traffic, est, c_buf, c_depth, swap, split
                            )
    return best


def _tiles(total: int, t: int) -> list[tuple[int, int]]:
    """(size, count) of the tiles of ``total`` in steps of ``t`` (full ones, then the rest)."""
    full, rest = divmod(total, t)
    return [(t, full)] + ([(rest, 1)] if rest else [])


@lru_cache(maxsize=65536)
def _mm_total(
    m: int, n: int, k: int, mt: int, nt: int, kc: int, split: bool, config: Config
) -> int:
    """MATMUL cycles of the whole tiled GEMM, edge tiles at their real sizes (cost model)."""
    total = 0
    for ms, cm in _tiles(m, mt):
        for ns, cn in _tiles(n, nt):
            for ks, ck in _tiles(k, kc):
                halves = [min(nt // 2, ns), ns - min(nt // 2, ns)] if split else [ns]
                one = sum(matmul_cycles(ms, h, ks, "fp16", config) for h in halves if h > 0)
                total += cm * cn * ck * one
    return total


def epilogue_rows(mt: int, nt: int, ring: int, residual: bool) -> int:
    """Rows per fp16 output chunk so that two chunks (+ residual, bias) fit ``ring``."""
    per_row = 2 * nt * (2 if residual else 1)
    budget = ring // 2 - _al(4 * nt) - 2 * ALIGN
    return min(mt, budget // per_row) if budget > 0 else 0


@dataclass(frozen=True)
class LazyWeight:
    """A constant B[K, N] placed in the data section only once the plan has picked its layout:
    ``kn()`` gives [K, N] fp16 (the plain orientation's B), ``nk()`` [N, K] fp16 row-major (the
    swapped orientation's A). ``nk_placed()``: the [N, K] layout is already in the data section
    (a weight shared with a GATHER table, as GPT-2's tied embedding and LM head): the swapped
    plan then wins a tie of the estimates, so the bytes are stored once."""

    shape: tuple[int, int]
    kn: Callable[[], DTensor]
    nk: Callable[[], DTensor]
    nk_placed: Callable[[], bool] = lambda: False


def choose_plan(
    ctx: LowerCtx,
    m: int,
    n: int,
    k: int,
    *,
    residual: bool,
    act: str | None,
    full_k: bool,
    swappable: bool,
    tb: bool = False,
    split: str | None = None,
    prefer_swap: bool = False,
) -> GemmPlan | None:
    """The plain plan, or the swapped one (outᵀ = W·Xᵀ) when its estimate is lower (or equal,
    with ``prefer_swap``: the weight's [N, K] layout is already in the data section): with the
    tokens on the array's C columns, M pads to a multiple of C instead of R (197 tokens: 208
    instead of 224 rows of folds)."""
    rings = ctx.rings()
    cfg = ctx.config
    split = SPLIT if split is None else split
    plain = plan_gemm(m, n, k, cfg, rings, residual, act, full_k, False, tb, split)
    if plain is None and SPLIT == "only":
        plain = plan_gemm(m, n, k, cfg, rings, residual, act, full_k, False, tb)
    if not swappable or SWAP == "never":
        return plain
    swapped = plan_gemm(n, m, k, cfg, rings, residual, act, full_k, True, False, SPLIT)
    if swapped is None and SPLIT == "only":
        swapped = plan_gemm(n, m, k, cfg, rings, residual, act, full_k, True)
    if swapped is None:
        return plain
    if SWAP == "always" or plain is None or swapped.est_cycles < plain.est_cycles:
        return swapped
    if prefer_swap and swapped.est_cycles <= plain.est_cycles:
        return swapped
    return plain


def gemm(
    ctx: LowerCtx,
    a: DTensor,
    b: DTensor | LazyWeight | Int4Weight,
    out: DTensor,
    *,
    tb: bool = False,
    bias: DTensor | None = None,
    act: str | None = None,
    residual: DTensor | None = None,
    prologue: tuple[int, float] | None = None,
    quant: QGemm | None = None,
) -> bool:
    """Emit the tiled GEMM. ``a`` [M,K] fp16, ``b`` [K,N] (tb: [N,K]) fp16 or a `LazyWeight`,
    ``out`` [M,N] fp16, ``bias`` fp32 [1,N] or None, ``act`` a VEC op name applied in fp32
    (gelu, gelu_tanh, ...), ``residual`` an fp16 [M,N] tensor added to the output tiles,
    ``prologue`` (gamma/beta offset in idx, eps): layer-normalise each tile of ``a`` after loading
    it. Returns False, emitting nothing, if a prologue was asked for but no plan keeps whole rows
    of A. A 2:4-compressed ``b`` runs as ``sparse.gemm_sp24``. A `LazyWeight` may run swapped:
    MATMUL A = W [N,K], B = tiles of ``a`` (tb=1), C = outᵀ tiles, transposed by the epilogue's
    MOVE. ``quant`` makes it an integer GEMM (`gemm_quant.QGemm`: plain orientation, unsplit B).
    """
    from backend.lower.gemm_quant import epilogue_q, epilogue_qt, group_sum
    from backend.lower.sparse import Sp24Tensor, gemm_sp24

    if isinstance(b, Sp24Tensor):
        return gemm_sp24(
            ctx, a, b, out, tb=tb, bias=bias, act=act, residual=residual, prologue=prologue,
            quant=quant,
        )  # fmt: skip
    a, out = a.as2d(), out.as2d()
    m, k = a.shape
    lazy = isinstance(b, LazyWeight)
    b4 = b if isinstance(b, Int4Weight) else None
    n = b.shape[1] if isinstance(b, LazyWeight | Int4Weight) else b.as2d().shape[0 if tb else 1]
    plan = choose_plan(
        ctx, m, n, k, residual=residual is not None, act=act, full_k=prologue is not None,
        swappable=lazy and (quant is None or quant.swappable), tb=tb,
        split="never" if quant else None,
        prefer_swap=isinstance(b, LazyWeight) and b.nk_placed(),
    )  # fmt: skip
    if plan is not None and quant is not None and quant.group and plan.kc % quant.group:
        plan = replace(plan, kc=max(quant.group, plan.kc // quant.group * quant.group))
    if plan is None and prologue is not None:
        return False
    if plan is None:
        rings = ctx.rings()
        raise ctx.too_big(
            f"GEMM {m}x{k}·{k}x{n}: no tiling fits the SRAM rings (act {rings[0]} B, "
            f"wgt {rings[1]} B, acc {rings[2]} B, vec {rings[3]} B); the smallest tiles need "
            f"{4 * min(m, ctx.config.matrix.rows) * min(n, ctx.config.matrix.cols)} B of fp32 "
            "accumulators"
        )
    if isinstance(b, LazyWeight):
        b = b.nk() if plan.swap else b.kn()
    if isinstance(b, Int4Weight):  # loaded by b4.load_block; a stand-in for the shape only
        b = DTensor(b.addr, b.shape, (b.shape[1] // 2, 1), DType.INT4)
    b = b.as2d()
    if plan.swap:  # A-role: the weight [N, K]; B-role: the activation rows, read with tb=1
        a, b, tb = b, a, True
        m, n = n, m
    bias_off = hold_bias(ctx, bias, m if plan.swap else n)
    grouped = quant is not None and quant.group > 0
    deq_off = -1
    if quant is not None and not grouped:
        row = quant.requant[0] if quant.requant else quant.deq
        deq_off = hold_bias(ctx, row, m if plan.swap else n)
    mask_off = -1
    if quant is not None and quant.row_mask is not None:  # FACT: rows at INT4-MSB
        if grouped or plan.swap:
            raise ctx.too_big("a per-row precision mask on a grouped or swapped integer GEMM")
        mask_off = ctx.hold(Buf.IDX, m)
        load(ctx, quant.row_mask.as2d(), Buf.IDX, mask_off)
    _, _, nk = plan.counts(m, n, k)
    mt, nt, kc = plan.mt, plan.nt, plan.kc
    held: dict[int, int] = {}
    mode = quant.mode if quant is not None else "fp16"
    q_inv = quant.a_inv if quant is not None else None
    qa, qb = (None, q_inv) if plan.swap else (q_inv, None)  # the activation side is quantized
    src_deq = quant.a_deq if quant is not None else None  # an int8 stream under the prologue
    for later, m0, ml, n0, nl in plan.walk(m, n):
        c_off = ctx.take(plan.c_buf, 4 * mt * nt * (2 if grouped else 1))
        part_off = c_off + 4 * mt * nt  # grouped: each K group's int32 partial tile
        for ki in range(nk):
            k0 = ki * kc
            kl = min(kc, k - k0)
            chunks: list[tuple[int, int]] = []  # rows of a fresh prologue tile
            if plan.order == "m" and nk == 1 and later:
                a_off = held[0]
            else:
                a_off = ctx.take(A, 2 * mt * kc)
                if prologue is not None and not plan.swap:
                    a_blk = a.block(m0, ml, k0, kl)
                    split = not grouped and (quant is None or quant.row_mask is None)
                    chunks = _prologue(ctx, a_blk, A, a_off, prologue, nl, "m", qa, split, src_deq)
                else:
                    load(ctx, a.block(m0, ml, k0, kl), A, a_off)
                    if qa is not None:
                        quantize_tile(ctx, A, a_off, ml, kl, qa)
                held[0] = a_off
            if plan.order == "n" and nk == 1 and later:
                b_off = held[1]
            else:
                b_off = ctx.take(W, (1 if plan.b_split else 2) * kc * nt)
                if plan.b_split:  # N halves: [kc, nh] in wgt and [kc, nl - nh] in vec
                    nh = min(nt // 2, nl)
                    parts = [(W, b_off, n0, nh)]
                    if nl > nh:
                        held[2] = ctx.take(V, kc * nt)
                        parts.append((V, held[2], n0 + nh, nl - nh))
                    for h_buf, h_off, h0, hn in parts:
                        blk = b.block(h0, hn, k0, kl) if tb else b.block(k0, kl, h0, hn)
                        load(ctx, blk, h_buf, h_off)
                elif prologue is not None and plan.swap:
                    b_blk = b.block(n0, nl, k0, kl)
                    chunks = _prologue(ctx, b_blk, W, b_off, prologue, ml, "n", qb, True, src_deq)
                elif b4 is not None:
                    b4.load_block(ctx, k0, kl, n0, nl, W, b_off)
                elif tb:
                    load(ctx, b.block(n0, nl, k0, kl), W, b_off)
                    if qb is not None:
                        quantize_tile(ctx, W, b_off, nl, kl, qb)
                else:
                    load(ctx, b.block(k0, kl, n0, nl), W, b_off)
                held[1] = b_off
            for r0, rl in chunks or [(0, ml if plan.swap else nl)]:
                # per prologue chunk: rows of A (plain) or tokens = columns of C (swapped)
                sub_m, sub_n = (ml, rl) if plan.swap else (rl, nl)
                if not chunks:
                    sub_m, sub_n = ml, nl
                esz = 1 if quant is not None else 2  # int8 rows once quantized
                a_sub = a_off + (0 if plan.swap else esz * r0 * kl)
                b_sub = b_off + (esz * r0 * kl if plan.swap else 0)
                c_sub = c_off + (4 * r0 if plan.swap else 4 * r0 * nl)
                halves = [(W, b_sub, 0, sub_n)]
                if plan.b_split:
                    nh = min(nt // 2, nl)
                    halves = [(W, b_sub, 0, nh)]
                    if nl > nh:
                        halves.append((V, held[2], nh, nl - nh))
                if grouped:  # one MATMUL per K group of the chunk, each dequantized and summed
                    assert quant is not None and quant.deq is not None
                    gs = quant.group
                    for g0 in range(0, kl, gs):
                        gi = (k0 + g0) // gs
                        ctx.emit(
                            "MATMUL", mode=mode, a_buf=A, a_off=a_sub + g0, a_stride=kl,
                            b_buf=W, b_off=b_sub + g0 * nl // (2 if b4 else 1), b_stride=nl,
                            c_buf=plan.c_buf, c_off=c_off if gi == 0 else part_off,
                            c_stride=nl, m=ml, n=nl, k=gs,
                        )  # fmt: skip
                        scales = quant.deq.block(gi, 1, n0, nl)
                        group_sum(ctx, plan, c_off, part_off, gi, ml, nl, scales)
                    continue
                for b_buf, b_at, c0, cn in halves:
                    ctx.emit(
                            "MATMUL", mode=mode, acc=int(ki > 0), tb=int(tb),
                            a_buf=A, a_off=a_sub, a_stride=kl, b_buf=b_buf, b_off=b_at,
                            b_stride=kl if tb else cn, c_buf=plan.c_buf, c_off=c_sub + 4 * c0,
                            c_stride=nl, m=sub_m, n=cn, k=kl,
                            **(quant.mask_args(mask_off, m0 + r0) if quant is not None else {}),
                        )  # fmt: skip
        if plan.swap:
            res = residual.block(n0, nl, m0, ml) if residual is not None else None
            dst = out.block(n0, nl, m0, ml)
            if quant is not None:
                epilogue_qt(
                    ctx, plan, c_off, ml, nl, dst, bias, m0, act, bias_off, res, quant, deq_off
                )
            else:
                epilogue_t(ctx, plan, c_off, ml, nl, dst, bias, m0, act, bias_off, res)
        else:
            res = residual.block(m0, ml, n0, nl) if residual is not None else None
            dst = out.block(m0, ml, n0, nl)
            if quant is not None:
                epilogue_q(
                    ctx, plan, c_off, ml, nl, dst, bias, n0, act, bias_off, res, quant, deq_off
                )
            else:
                epilogue(ctx, plan, c_off, ml, nl, dst, bias, n0, act, bias_off, res)
    return True


PROLOGUE_CHUNKS = 8  # a layer-norm prologue tile is normalised in up to this many row chunks


def _prologue(
    ctx: LowerCtx,
    src: DTensor,
    buf: Buf,
    off: int,
    g: tuple[int, float],
    other: int,
    side: str,
    q_inv: float | None = None,
    may_split: bool = True,
    src_deq: float | None = None,
) -> list[tuple[int, int]]:
    """Load the whole-row activation block ``src`` to ``buf[off]`` and layer-normalise it. When
    splitting it into row chunks costs the MATMUL nothing (cost model: the per-chunk MATMULs
    take no more cycles than one), it is loaded and normalised chunk by chunk and the (r0, rows)
    chunks are returned, so the MATMUL that first uses the tile starts after the first chunk's
    LOAD and ROW instead of the whole tile's. ``side``: the tile's rows are the MATMUL's m ("m")
    or n ("n"); ``other`` is the other dimension."""
    rows, cols = src.shape
    cfg = ctx.config
    unit = cfg.matrix.rows if side == "m" else cfg.matrix.cols

    def mm(r: int) -> int:
        return matmul_cycles(*((r, other) if side == "m" else (other, r)), cols, "fp16", cfg)

    pieces: list[tuple[int, int]] = []
    step = max(unit, -(-rows // PROLOGUE_CHUNKS) // unit * unit)
    while (
        may_split and step < rows
    ):  # the smallest step (at least rows / PROLOGUE_CHUNKS) that costs nothing
        cand = [(r0, min(step, rows - r0)) for r0 in range(0, rows, step)]
        if sum(mm(r) for _, r in cand) <= mm(rows):
            pieces = cand
            break
        step += unit
    for r0, rl in pieces or [(0, rows)]:
        load_residual(ctx, src.block(r0, rl, 0, cols), buf, off + 2 * r0 * cols, src_deq)
        _layernorm(ctx, buf, off + 2 * r0 * cols, rl, cols, g)
        if q_inv is not None:  # an integer GEMM: the normalised rows → int8 rows of the tile
            quantize_tile(ctx, buf, off + 2 * r0 * cols, rl, cols, q_inv, off + r0 * cols)
    return pieces


def _layernorm(
    ctx: LowerCtx, buf: Buf, off: int, rows: int, cols: int, g: tuple[int, float]
) -> None:
    """In-place ROW layernorm of a whole-row fp16 tile (gamma/beta at idx[g[0]], eps g[1])."""
    ctx.emit(
        "ROW", op="layernorm", dtype=DType.FP16, dst_buf=buf, dst_off=off, dst_stride=cols,
        src_buf=buf, src_off=off, src_stride=cols, rows=rows, cols=cols, eps=g[1],
        g_buf=Buf.IDX, g_off=g[0],
    )  # fmt: skip


def epilogue_t(
    ctx: LowerCtx,
    plan: GemmPlan,
    c_off: int,
    rows: int,
    cols: int,
    dst: DTensor,
    bias: DTensor | None,
    w0: int,
    act: str | None,
    bias_off: int = -1,
    residual: DTensor | None = None,
) -> None:
    """The swapped orientation's epilogue: fp32 Cᵀ [rows = features, cols = tokens] (+bias as a
    column, activation) → chunks of tokens transposed to fp16 [tokens, features] by MOVE
    (+residual) → DRAM ``dst`` [cols, rows]."""
    cb, ob, ft = plan.c_buf, plan.o_buf, plan.mt
    if bias is not None:
        if bias_off < 0:
            b_buf, b_off = ob, ctx.take(ob, 4 * ft)
            load(ctx, bias.block(0, 1, w0, rows), ob, b_off)
        else:
            b_buf, b_off = Buf.IDX, bias_off + 4 * w0
        ctx.emit(
            "VEC", op="add", bcast="col", dtype=DType.FP32, dst_buf=cb, dst_off=c_off,
            dst_stride=cols, a_buf=cb, a_off=c_off, a_stride=cols, b_buf=b_buf, b_off=b_off,
            b_stride=1, rows=rows, cols=cols,
        )  # fmt: skip
    if act is not None:
        ctx.emit(
            "VEC", op=act, dtype=DType.FP32, dst_buf=cb, dst_off=c_off, dst_stride=cols,
            a_buf=cb, a_off=c_off, a_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    er = epilogue_rows(plan.nt, ft, ctx.sram[ob].ring, residual is not None)
    for t0 in range(0, cols, er):
        tl = min(er, cols - t0)
        o_bytes = _al(2 * er * ft)
        v_off = ctx.take(ob, o_bytes * (2 if residual is not None else 1))
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, transpose=1, dst_buf=ob,
            dst_off=v_off, dst_stride=rows, src_buf=cb, src_off=c_off + 4 * t0,
            src_stride=cols, rows=rows, cols=tl,
        )  # fmt: skip
        res = residual.block(t0, tl, 0, rows) if residual is not None else None
        finish_chunk(ctx, ob, v_off, o_bytes, res, dst.block(t0, tl, 0, rows))


def epilogue(
    ctx: LowerCtx,
    plan: GemmPlan,
    c_off: int,
    rows: int,
    cols: int,
    dst: DTensor,
    bias: DTensor | None,
    n0: int,
    act: str | None,
    bias_off: int = -1,
    residual: DTensor | None = None,
) -> None:
    """fp32 accumulators (in ``plan.c_buf``) → (+bias, activation) → fp16 chunks of rows in
    ``plan.o_buf`` (+residual) → DRAM. The bias row is held in idx at ``bias_off`` or loaded per
    tile."""
    cb, ob, nt = plan.c_buf, plan.o_buf, plan.nt
    if bias is not None:
        if bias_off < 0:
            b_buf, b_off = ob, ctx.take(ob, 4 * nt)
            load(ctx, bias.block(0, 1, n0, cols), ob, b_off)
        else:
            b_buf, b_off = Buf.IDX, bias_off + 4 * n0
        ctx.emit(
            "VEC", op="add", bcast="row", dtype=DType.FP32, dst_buf=cb, dst_off=c_off,
            dst_stride=cols, a_buf=cb, a_off=c_off, a_stride=cols, b_buf=b_buf, b_off=b_off,
            b_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    if act is not None:
        ctx.emit(
            "VEC", op=act, dtype=DType.FP32, dst_buf=cb, dst_off=c_off, dst_stride=cols,
            a_buf=cb, a_off=c_off, a_stride=cols, rows=rows, cols=cols,
        )  # fmt: skip
    er = epilogue_rows(plan.mt, nt, ctx.sram[ob].ring, residual is not None)
    for r0 in range(0, rows, er):
        rl = min(er, rows - r0)
        o_bytes = _al(2 * er * nt)
        v_off = ctx.take(ob, o_bytes * (2 if residual is not None else 1))
        ctx.emit(
            "MOVE", src_dtype=DType.FP32, dst_dtype=DType.FP16, dst_buf=ob, dst_off=v_off,
            dst_stride=cols, src_buf=cb, src_off=c_off + 4 * r0 * cols, src_stride=cols,
            rows=rl, cols=cols,
        )  # fmt: skip
        res = residual.block(r0, rl, 0, cols) if residual is not None else None
        finish_chunk(ctx, ob, v_off, o_bytes, res, dst.block(r0, rl, 0, cols))
