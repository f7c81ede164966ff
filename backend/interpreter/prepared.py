"""A cached schedule compiled into prepared closures over one reused machine's memory.

`fast.execute` runs the handlers of `semantics.py` down a cached issue order; each call decodes
its fields again, builds numpy views of its tiles and goes through the conversion cache. Once a
program has run, its machine memory is kept (`Pool`, reset between runs to the state a new
machine would have) and the schedule is compiled once into a list of argument-free closures whose
views into that memory are built in advance:

- LOAD/STORE: one byte copy between two prepared views.
- MATMUL fp16 (no 2:4, no mask): the float32 copies of A and B come from slots filled by the
  first reader and reused by later readers of the same tile while no write meets it (decided
  here, once, from the static write sets); slots of constant operands (`fast.constant_operands`)
  keep their arrays across runs. The product and its store are the handler's own expressions.
- VEC, ROW (softmax, layernorm), MOVE fp32↔fp16: the handler's kernels (`semantics.HALF_OPS`,
  `softmax_rows`, `layernorm_rows`, `numerics`) on prepared views.
- Every other instruction, field combination and every data-dependent step calls its handler
  (or `fast`'s checked step) as before.

The closures compute what the handlers compute, in the same order, with the same numpy calls on
the same values; tests/backend/test_interp_fast.py compares outputs and reports with the event
loop bit for bit on the zoo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from backend.errors import SimError
from backend.interpreter.numerics import f16_to_f32, gelu, gelu_tanh, store_f16, store_f16_t
from backend.interpreter.operands import DRAM, Tile, decode, tiles_overlap
from backend.interpreter.semantics import FLOAT_OPS2, HALF_OPS, layernorm_rows, softmax_rows
from backend.interpreter.state import NP_DTYPES, Machine
from backend.isa import DType, Instr
from backend.program import HOST_WRITTEN

if TYPE_CHECKING:
    from backend.interpreter.fast import Schedule
    from backend.interpreter.plan import Step
    from backend.program import Program

Fn = Callable[[], object]


@dataclass
class Pool:
    """The machine of a finished run, kept (memory and all) for the next run of the program."""

    key: tuple
    m: Machine
    dirty: list[tuple[int, int]]  # DRAM byte ranges a run may change (stores, inputs)
    data: bytes
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while a run uses it

    def __reduce__(self) -> tuple:
        """A copied or pickled program does not carry its kept machine (it gets a new one)."""
        return (_no_pool, ())


def _no_pool() -> None:
    return None


_POOL_ATTR = "_wisp_interp_pool"


def _pool_key(program: Program, sizes: tuple[int, ...], canonical: object) -> tuple:
    ins = tuple((s.addr, s.nbytes) for s in program.symbols.values() if s.kind in HOST_WRITTEN)
    return (canonical, sizes, tuple(id(i) for i in program.instrs), ins)


def dirty_ranges(program: Program, steps: list[Step]) -> list[tuple[int, int]]:
    """DRAM byte ranges any instruction of ``steps`` may write, and the input symbols'."""
    spans = [
        (s.addr, s.addr + s.nbytes) for s in program.symbols.values() if s.kind in HOST_WRITTEN
    ]
    for st in steps:
        ops = st.ops
        if ops is None:
            try:
                ops = decode(st.ins, None, conservative=True)
            except SimError:  # raised again if it executes, before writing anything
                continue
        spans += [
            (t.off, t.end) for t in ops.values() if t.write and not t.empty and t.space == DRAM
        ]
    return spans


def take(program: Program, canonical: object, sizes: tuple[int, ...]) -> Machine | None:
    """The kept machine of ``program``'s last run, reset to a new machine's state (zero SRAM,
    the DRAM image then zeros, initial predicates, no cached conversions); None when there is
    none for this (program, config, sizes, image) or it is in use."""
    pool: Pool | None = getattr(program, _POOL_ATTR, None)
    if (
        pool is None
        or pool.data is not program.data
        or pool.key != _pool_key(program, sizes, canonical)
        or not pool.lock.acquire(blocking=False)
    ):
        return None
    m = pool.m
    for sp in m.mem[:DRAM]:
        sp.fill(0)
    dram = m.mem[DRAM]
    img = np.frombuffer(program.data, np.uint8)
    for lo, hi in pool.dirty:
        hi = min(hi, dram.size)
        mid = min(max(lo, img.size), hi)
        if lo < mid:
            dram[lo:mid] = img[lo:mid]
        if mid < hi:
            dram[mid:hi] = 0
    m.reset_state()
    return m


def release(program: Program, m: Machine, steps: list[Step] | None, canonical: object) -> None:
    """After a functional run on ``m``: unlock the pool it came from, or (``steps`` given, a
    run of the cached schedule) keep ``m`` as the program's pool."""
    pool: Pool | None = getattr(program, _POOL_ATTR, None)
    if pool is not None and pool.m is m:
        if pool.lock.locked():
            pool.lock.release()
        return
    if steps is None or type(program.data) is not bytes:
        return
    try:
        setattr(
            program,
            _POOL_ATTR,
            Pool(
                _pool_key(program, m.sizes, canonical),
                m,
                dirty_ranges(program, steps),
                program.data,
            ),
        )
    except AttributeError:  # pragma: no cover - a slotted Program subclass
        pass


def forget(program: Program) -> None:
    """Drop ``program``'s kept machine."""
    if getattr(program, _POOL_ATTR, None) is not None:
        delattr(program, _POOL_ATTR)


def pooled(program: Program, m: Machine) -> bool:
    """Whether ``m`` is ``program``'s kept machine."""
    pool: Pool | None = getattr(program, _POOL_ATTR, None)
    return pool is not None and pool.m is m


# ---- compiling a schedule -----------------------------------------------------------------------


@dataclass
class Prepared:
    """A schedule compiled for one kept machine."""

    m: Machine
    fns: list[Fn]  # one per executed position (control instructions and no-ops left out)
    pos: list[int]  # position in the schedule's order of each fn
    written: list[list[Tile]]  # tiles each fn writes (conversion-cache invalidation)
    slots: list[np.ndarray | None] = field(default_factory=list)
    drop: list[int] = field(default_factory=list)  # slots emptied after each run
    dyn: dict = field(default_factory=dict)  # run state of the data-dependent steps


def _view(mem: list[np.ndarray], t: Tile) -> np.ndarray:
    dt = NP_DTYPES[t.dtype]
    return np.ndarray((t.rows, t.cols), dt, mem[t.space], t.off, (t.stride, dt.itemsize))


def _raw(mem: list[np.ndarray], t: Tile) -> np.ndarray:
    return np.ndarray((t.rows, t.width), np.uint8, mem[t.space], t.off, (t.stride, 1))


def _choice(i: Instr, name: str) -> str:
    return i.cls.field(name).choices[int(i.args[name])]


READ, MAKE, KEEP = 0, 1, 2  # slot use: read it; convert into it; convert into it once (constant)


class _Slots:
    """Static reuse of float32 operand conversions along the schedule: a tile read again while
    no write meets it reuses the first reader's conversion."""

    def __init__(self, const_budget: int) -> None:
        self.n = 0
        self.live: dict[tuple, tuple[int, Tile]] = {}
        self.budget = const_budget
        self.last: dict[int, int] = {}  # slot → index of its last reader
        self.keep: set[int] = set()  # slots of constant tiles, kept across runs

    def get(self, t: Tile, constant: bool, at: int) -> tuple[int, int]:
        """(slot, use) for reading ``t`` as float32 at fn index ``at``."""
        key = tuple(t[:6])
        hit = self.live.get(key)
        if hit is not None:
            self.last[hit[0]] = at
            return hit[0], READ
        slot = self.n
        self.n += 1
        self.last[slot] = at
        use = MAKE
        if constant and t.rows * t.cols * 4 <= self.budget:
            self.budget -= t.rows * t.cols * 4
            use = KEEP
            self.keep.add(slot)
        self.live[key] = (slot, t)
        return slot, use

    def written(self, tiles: list[Tile]) -> None:
        for w in tiles:
            for k in [k for k, (_, t) in self.live.items() if tiles_overlap(t, w)]:
                del self.live[k]


def _matmul_fp16(
    mem: list[np.ndarray], i: Instr, o: dict[str, Tile], slots: list, a_use, b_use
) -> Fn:
    """MATMUL mode fp16 (the handler: ``Af @ Bf`` in float32, stored or accumulated)."""
    (sa, ua, fa), (sb, ub, fb) = a_use, b_use
    av, bv, c = _view(mem, o["a"]), _view(mem, o["b"]), _view(mem, o["c"])
    tb, acc = bool(i.args["tb"]), bool(i.args["acc"])

    def fn() -> None:
        Af = slots[sa]
        if ua == MAKE or (ua == KEEP and Af is None):
            Af = slots[sa] = f16_to_f32(av)
        Bf = slots[sb]
        if ub == MAKE or (ub == KEEP and Bf is None):
            Bf = slots[sb] = f16_to_f32(bv)
        if tb:
            Bf = Bf.T
        if acc:
            np.add(c, Af @ Bf, out=c)
        else:
            c[...] = Af @ Bf
        if fa:
            slots[sa] = None
        if fb:
            slots[sb] = None

    return fn


_GELU = {"gelu": gelu, "gelu_tanh": gelu_tanh}


def _vec(mem: list[np.ndarray], i: Instr, o: dict[str, Tile]) -> Fn | None:
    a = i.args
    op, bc = _choice(i, "op"), _choice(i, "bcast")
    dt = DType(int(a["dtype"]))
    av, dv = _view(mem, o["a"]), _view(mem, o["dst"])
    bv = _view(mem, o["b"]) if "b" in o else None
    if dt is DType.FP16 and op in HALF_OPS and bv is not None:
        uf = HALF_OPS[op]
        return lambda: uf(av, bv, out=dv)
    if dt is DType.FP32:
        if op in _GELU:
            g = _GELU[op]

            def fgelu() -> None:
                dv[...] = g(av)

            return fgelu
        if op in FLOAT_OPS2 and bc != "scalar" and bv is not None:
            uf = FLOAT_OPS2[op]

            def fbin() -> None:  # the handler's x ⊕ y, then the float32 store
                dv[...] = uf(av, bv)

            return fbin
    if dt is DType.FP16 and op in _GELU:
        g = _GELU[op]

        def hgelu() -> None:
            dv[...] = g(f16_to_f32(av))

        return hgelu
    return None


def _row(mem: list[np.ndarray], i: Instr, o: dict[str, Tile], bufs: dict) -> Fn | None:
    a = i.args
    op = _choice(i, "op")
    src, dst = o["src"], o["dst"]
    if src.dtype not in (DType.FP16, DType.FP32) or op not in ("softmax", "layernorm"):
        return None
    sv, dv = _view(mem, src), _view(mem, dst)
    half = dst.dtype is DType.FP16

    def read() -> np.ndarray:  # Machine.read_f32
        return f16_to_f32(sv) if src.dtype is DType.FP16 else sv.astype(np.float32)

    if op == "softmax":
        scale, causal, row0 = a["scale"], bool(a["causal"]), int(a["row0"])

        def fsm() -> None:
            r = softmax_rows(read(), scale, causal, row0)
            if half:
                store_f16(dv, r)
            else:
                dv[...] = r

        return fsm
    gt = o["g"]
    g = mem[gt.space][gt.off : gt.off + gt.width].view("<f4")
    eps = a["eps"]
    key = ("layernorm", src.rows, src.cols)  # shared by every layernorm of this shape (the
    if key not in bufs:  # closures run one at a time)
        rc, r1 = (src.rows, src.cols), (src.rows, 1)
        bufs[key] = tuple(np.empty(sh, np.float32) for sh in (rc, rc, r1, r1))
    x, *scratch = bufs[key]
    sc = tuple(scratch)

    def fln() -> None:
        np.copyto(x, sv)  # the exact values read_f32 gives (fp16 → float32 is exact)
        layernorm_rows(x, g, eps, sc)
        if half:
            store_f16(dv, x)
        else:
            dv[...] = x

    return fln


def _move(mem: list[np.ndarray], i: Instr, o: dict[str, Tile]) -> Fn | None:
    src, dst = o["src"], o["dst"]
    tr = bool(i.args["transpose"])
    sv, dv = _view(mem, src), _view(mem, dst)
    if src.dtype is DType.FP32 and dst.dtype is DType.FP16:
        return lambda: store_f16_t(dv, sv, tr)
    if src.dtype is DType.FP16 and dst.dtype is DType.FP32:

        def f2() -> None:
            v = f16_to_f32(sv)
            dv[...] = v.T if tr else v

        return f2
    if src.dtype is dst.dtype and src.dtype in (DType.FP16, DType.FP32) and "cs" not in o:
        x = sv.T if tr else sv

        def f3() -> None:
            dv[...] = x

        return f3
    return None


def _copy(mem: list[np.ndarray], o: dict[str, Tile]) -> Fn:
    s, d = _raw(mem, o["src"]), _raw(mem, o["dst"])

    def fn() -> None:
        d[...] = s

    return fn


def compile_schedule(
    sched: Schedule,
    steps: list[Step],
    m: Machine,
    dynamic: Callable[[int], Fn],
    generic: Callable[[int], Fn],
    const_budget: int,
) -> Prepared:
    """Closures for ``sched.order`` on ``m``; ``dynamic(pos)`` makes the checked step of a
    data-dependent or race-recorded position, ``generic(pos)`` the handler call of any other."""
    from backend.interpreter.fast import CONTROL

    mem = m.mem
    prep = Prepared(m, [], [], [])
    sl = _Slots(const_budget)
    bufs: dict[tuple, tuple[np.ndarray, ...]] = {}  # scratch arrays shared by closures
    mm: list[tuple[int, Step, tuple[int, int], tuple[int, int]]] = []  # fp16 MATMULs
    for pos, idx in enumerate(sched.order):
        st = steps[idx]
        ops = st.ops
        fn: Fn | None = None
        if ops is None or pos in sched.record:
            fn = dynamic(pos)
            try:
                w = [t for t in decode(st.ins, None, conservative=True).values() if t.write]
            except SimError:
                w = []
        elif st.noop or st.name in CONTROL:
            continue
        else:
            w = st.written
            name = st.name
            if name in ("LOAD", "STORE"):
                fn = _copy(mem, ops)
            elif name == "MATMUL" and _choice(st.ins, "mode") == "fp16" and not st.ins.args["mask"]:
                const = sched.const.get(pos, [])
                at = len(prep.fns)
                ua = sl.get(ops["a"], ops["a"] in const, at)
                ub = sl.get(ops["b"], ops["b"] in const, at)
                mm.append((at, st, ua, ub))
                fn = _pending
            elif name == "VEC":
                fn = _vec(mem, st.ins, ops)
            elif name == "ROW":
                fn = _row(mem, st.ins, ops, bufs)
            elif name == "MOVE":
                fn = _move(mem, st.ins, ops)
            if fn is None:
                fn = generic(pos)
        sl.written(w)
        prep.fns.append(fn)
        prep.pos.append(pos)
        prep.written.append(w)
    prep.slots = [None] * sl.n
    prep.drop = [j for j in range(sl.n) if j not in sl.keep]
    for at, st, (sa, ua), (sb, ub) in mm:  # a MAKE slot is dropped after its last reader
        fa = sa not in sl.keep and sl.last[sa] == at
        fb = sb not in sl.keep and sl.last[sb] == at
        assert st.ops is not None
        prep.fns[at] = _matmul_fp16(mem, st.ins, st.ops, prep.slots, (sa, ua, fa), (sb, ub, fb))
    return prep


def _pending() -> None:  # pragma: no cover - replaced before the closures run
    raise AssertionError("unprepared MATMUL")
