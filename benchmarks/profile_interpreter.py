"""Where the time of a functional interpreter run (and of the reference executor) goes.

    PYTHONPATH=. python benchmarks/profile_interpreter.py [MODEL] [TARGET] [--rounds N]

Compiles a zoo model (default deit-tiny, spatten), then times whole runs and, in separate runs,
each instruction's semantic handler (by class and variant: MATMUL mode, VEC/ROW op, MOVE dtypes)
and each reference op, with ``time.process_time`` (CPU time of this process; the machine may be
shared). "outside handlers" is the run minus its handlers: issue loop, checks, report, I/O.
The figures of docs/performance.md come from this script.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import collections  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from backend.interpreter import plan as plan_mod  # noqa: E402
from backend.interpreter import run  # noqa: E402
from compiler import reference  # noqa: E402
from compiler.api import compile_model  # noqa: E402


def _variant(name: str, i: Any, o: Any) -> str:
    if name == "MATMUL":
        return i.cls.field("mode").choices[int(i.args["mode"])]
    if name in ("VEC", "ROW"):
        return i.cls.field("op").choices[int(i.args["op"])]
    if name == "MOVE":
        return f"{o['src'].dtype.name.lower()}->{o['dst'].dtype.name.lower()}" + (
            " T" if i.args["transpose"] else ""
        )
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", nargs="?", default="deit-tiny")
    ap.add_argument("target", nargs="?", default="spatten")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    cm = compile_model(args.model, "", args.target)
    prog, cfg = cm.compiled.program, cm.config
    rng = np.random.default_rng(0)
    x = {}
    for n, (shape, dt) in cm.model.input_specs().items():
        x[n] = (
            rng.standard_normal(shape).astype(dt)
            if np.dtype(dt).kind == "f"
            else rng.integers(0, 100, shape).astype(dt)
        )
    named = dict(zip(cm.compiled.input_names, x.values(), strict=True))

    def best(fn: Callable[[], object]) -> float:
        fn()
        b = float("inf")
        for _ in range(args.rounds):
            t0 = time.process_time()
            fn()
            b = min(b, time.process_time() - t0)
        return b

    t_run = best(lambda: run(prog, named, cfg))
    t_timing = best(lambda: run(prog, named, cfg, timing_only=True))
    t_ref = best(lambda: reference.run(cm.model, x))

    # per-handler CPU time (a fresh program object: the plan picks up the wrapped handlers)
    acc: collections.Counter[tuple[str, str]] = collections.Counter()
    cnt: collections.Counter[tuple[str, str]] = collections.Counter()

    def wrap(name: str, h: Callable[..., int]) -> Callable[..., int]:
        def f(m: Any, i: Any, o: Any) -> int:
            t0 = time.process_time()
            r = h(m, i, o)
            key = (name, _variant(name, i, o))
            acc[key] += time.process_time() - t0
            cnt[key] += 1
            return r

        return f

    saved = dict(plan_mod.HANDLERS)
    for k, h in saved.items():
        plan_mod.HANDLERS[k] = wrap(k, h)
    try:
        from dataclasses import replace

        p2 = replace(prog)
        per_run: dict[tuple[str, str], float] = {}
        tot_best = float("inf")
        for _ in range(args.rounds):
            acc.clear()
            cnt.clear()
            run(p2, named, cfg)
            s = sum(acc.values())
            if s < tot_best:
                tot_best, per_run = s, dict(acc)
    finally:
        plan_mod.HANDLERS.update(saved)
    counts = dict(cnt)

    # the prepared closures of the cached schedule (backend/interpreter/prepared.py): per
    # instruction class and variant, as the handlers above
    pacc: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
    pcnt: collections.Counter[tuple[str, str]] = collections.Counter()
    p_best: dict[tuple[str, str], float] = {}
    cached = getattr(prog, "_wisp_interp_schedule", None)
    sched = cached[1] if cached else None
    prep = sched.prepared if sched is not None else None
    if prep is not None and sched is not None and cached is not None:
        steps = cached[0]
        saved_fns = list(prep.fns)

        def pwrap(key: tuple[str, str], fn: Callable[[], object]) -> Callable[[], object]:
            def f() -> object:
                t0 = time.process_time()
                r = fn()
                pacc[key] += time.process_time() - t0
                pcnt[key] += 1
                return r

            return f

        for j, fn in enumerate(saved_fns):
            st = steps[sched.order[prep.pos[j]]]
            key = (st.name, _variant(st.name, st.ins, st.ops) if st.ops is not None else "")
            prep.fns[j] = pwrap(key, fn)
        try:
            tot = float("inf")
            for _ in range(args.rounds):
                pacc.clear()
                pcnt.clear()
                run(prog, named, cfg)
                if sum(pacc.values()) < tot:
                    tot, p_best = sum(pacc.values()), dict(pacc)
        finally:
            prep.fns[:] = saved_fns

    ops: collections.Counter[str] = collections.Counter()
    saved_impls = dict(reference.IMPLS)

    def rwrap(name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
        def f(op: Any, a: Any, c: Any) -> Any:
            t0 = time.process_time()
            r = impl(op, a, c)
            ops[name] += time.process_time() - t0
            return r

        return f

    for k, impl in saved_impls.items():
        reference.IMPLS[k] = rwrap(k.name, impl)
    try:
        best_ops: dict[str, float] = {}
        for _ in range(args.rounds):
            ops.clear()
            reference.run(cm.model, x)
            if not best_ops or sum(ops.values()) < sum(best_ops.values()):
                best_ops = dict(ops)
    finally:
        reference.IMPLS.clear()
        reference.IMPLS.update(saved_impls)

    n = len(prog.instrs)
    print(f"{args.model} on {args.target}: {n:,} instructions; min CPU time of {args.rounds} runs")
    print(f"  interpreter functional {t_run * 1e3:8.1f} ms   timing-only {t_timing * 1e3:6.1f} ms")
    print(f"  reference executor     {t_ref * 1e3:8.1f} ms   ratio {t_run / t_ref:.2f}x")
    hs = sum(per_run.values())
    print(
        f"  semantic handlers      {hs * 1e3:8.1f} ms   outside handlers ~{(t_run - hs) * 1e3:.1f} ms"
    )
    print(f"  {'handler':<28}{'calls':>7}{'ms':>9}{'share':>8}")
    for key, v in sorted(per_run.items(), key=lambda kv: -kv[1]):
        print(f"  {' '.join(k for k in key if k):<28}{counts[key]:>7}{v * 1e3:>9.1f}{v / hs:>8.1%}")
    if p_best:
        ps = sum(p_best.values())
        print(
            f"  prepared closures      {ps * 1e3:8.1f} ms   outside them ~{(t_run - ps) * 1e3:.1f} ms"
        )
        print(f"  {'closure':<28}{'calls':>7}{'ms':>9}{'share':>8}")
        for key, v in sorted(p_best.items(), key=lambda kv: -kv[1]):
            label = " ".join(k for k in key if k)
            print(f"  {label:<28}{pcnt[key]:>7}{v * 1e3:>9.1f}{v / ps:>8.1%}")
    rs = sum(best_ops.values())
    print(f"  {'reference op':<28}{'':>7}{'ms':>9}{'share':>8}")
    for k, v in sorted(best_ops.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {k:<28}{'':>7}{v * 1e3:>9.1f}{v / rs:>8.1%}")


if __name__ == "__main__":
    main()
