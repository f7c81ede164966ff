"""Where the time of a functional interpreter run (and of the reference executor) goes.

    PYTHONPATH=. python benchmarks/profile_interpreter.py [MODEL] [TARGET] [--rounds N]

Compiles a zoo model (default deit-tiny, spatten), then times whole runs and, in separate runs,
each instruction's semantic handler (by class and variant: MATMUL mode, VEC/ROW op, MOVE dtypes)
and each reference op, with ``time.process_time`` (CPU time of this process; the machine may be
shared). "outside handlers" is the run minus its handlers: issue loop, checks, report, I/O.
`profile_table` (used by scripts/refresh_docs.py for docs/performance.md) returns the tables.
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


VOLATILE = ("ms", "share", "x reference")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", nargs="?", default="deit-tiny")
    ap.add_argument("target", nargs="?", default="spatten")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for line in profile_table(args.model, args.target, args.rounds):
        print(line)


def profile_table(model: str, target: str, rounds: int = 5) -> list[str]:
    """Markdown tables: whole runs, then CPU time per instruction class and variant in the
    semantic handlers (the first run's path, and every run's path for instructions the prepared
    closures leave to their handler), in the prepared closures, and per reference op."""
    args = argparse.Namespace(model=model, target=target, rounds=rounds)
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

        per_run: dict[tuple[str, str], float] = {}
        tot_best = float("inf")
        for _ in range(args.rounds):
            acc.clear()
            cnt.clear()
            run(replace(prog), named, cfg)  # a first run: every instruction through its handler
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
    hs = sum(per_run.values())
    ps = sum(p_best.values())
    rs = sum(best_ops.values())
    lines = [
        f"{args.model} on {args.target}: {n:,} instructions; min CPU time of {args.rounds} runs",
        "",
        "| run | ms | x reference |",
        "|---|---|---|",
        f"| interpreter, functional | {t_run * 1e3:.1f} | {t_run / t_ref:.2f} |",
        f"| interpreter, timing-only | {t_timing * 1e3:.1f} | {t_timing / t_ref:.2f} |",
        f"| reference executor | {t_ref * 1e3:.1f} | 1.00 |",
        f"| first run's handlers (sum) | {hs * 1e3:.1f} | {hs / t_ref:.2f} |",
        f"| prepared closures (sum) | {ps * 1e3:.1f} | {ps / t_ref:.2f} |",
        "",
    ]

    def part(title: str, acc: dict[tuple[str, str], float], cnt: dict, total: float) -> None:
        lines.extend([f"| {title} | calls | ms | share |", "|---|---|---|---|"])
        for key, v in sorted(acc.items()):  # by name: the same rows on every machine
            label = " ".join(k for k in key if k)
            lines.append(f"| {label} | {cnt[key]} | {v * 1e3:.1f} | {v / total:.1%} |")
        lines.append("")

    if per_run:
        part("handler (first run)", per_run, counts, hs)
    if p_best:
        part("prepared closure (later runs)", p_best, dict(pcnt), ps)
    lines.extend(["| reference op | ms | share |", "|---|---|---|"])
    for k, v in sorted(best_ops.items()):
        lines.append(f"| {k} | {v * 1e3:.1f} | {v / rs:.1%} |")
    return lines


if __name__ == "__main__":
    main()
