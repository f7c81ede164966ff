"""Mutation run: plant realistic bugs one at a time, run the tests that should catch each, report
which test kills it (docs/testing.md holds the last table).

    python benchmarks/mutants.py                 # all mutants
    python benchmarks/mutants.py --only fact-bw  # one, by name
    python benchmarks/mutants.py --markdown      # the table for docs/testing.md

Each mutant is an exact text replacement (it must match once) in one file of the working tree;
the file is restored afterwards, also on Ctrl-C. Deterministic: fixed mutant list, fixed test
lists, pytest -x (the first failing test is the killer). Not part of the default suite.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    nth: int = 0  # which occurrence of `old` when it is not unique


P = "tests/test_planted_bugs.py"
MUTANTS: tuple[Mutant, ...] = (
    # ---- the bugs issue 13 planted and the suite missed ----
    Mutant(
        "ref-softmax-no-max",
        "reference",
        "compiler/reference.py",
        "e = np.exp(x - x.max(axis=axis, keepdims=True))",
        "e = np.exp(x)",
        (P,),
    ),
    Mutant(
        "interp-softmax-no-max",
        "interpreter",
        "backend/interpreter/semantics.py",
        "e = np.exp(x - x.max(axis=1, keepdims=True))",
        "e = np.exp(x)",
        (P,),
    ),
    Mutant(
        "ref-layernorm-no-eps",
        "reference",
        "compiler/reference.py",
        "np.sqrt(var + np.asarray(eps, x.dtype))",
        "np.sqrt(var)",
        (P,),
    ),
    Mutant(
        "interp-layernorm-no-eps",
        "interpreter",
        "backend/interpreter/semantics.py",
        'var += np.float32(a["eps"])',
        "var += np.float32(0.0)",
        (P,),
    ),
    Mutant(
        "lower-gelu-tanh-for-erf",
        "lowering",
        "backend/lower/rules_vector.py",
        '"gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"',
        '"gelu_tanh"',
        (P,),
    ),
    Mutant(
        "fuse-gelu-tanh-for-erf",
        "lowering",
        "backend/lower/fuse.py",
        'return "gelu_tanh" if op.prop("approximate") == "tanh" else "gelu"',
        'return "gelu_tanh"',
        (P,),
    ),
    Mutant(
        "fact-dram-bandwidth-x2",
        "cost model",
        "backend/configs/fact.toml",
        "bytes_per_cycle = 51.2",
        "bytes_per_cycle = 102.4",
        (P,),
    ),
    Mutant(
        "depgraph-kv-token-link",
        "depgraph",
        "passes/depgraph_rules.py",
        "        c.link(k, 0, v, 0)\n",
        "        pass\n",
        (P,),
    ),
    Mutant(
        "encode-load-rows-cols-swap",
        "encoding",
        "backend/isa.py",
        '*_dram("src", "source"), _ROWS, _COLS),\n        "2-D strided DRAM',
        '*_dram("src", "source"), _COLS, _ROWS),\n        "2-D strided DRAM',
        (P,),
    ),
    Mutant(
        "encode-matmul-m-n-swap",
        "encoding",
        "backend/isa.py",
        '_dim("m", "rows of A and C"), _dim("n", "columns of C")',
        '_dim("n", "columns of C"), _dim("m", "rows of A and C")',
        (P,),
    ),
    Mutant(
        "wanda-ignores-activations",
        "passes",
        "passes/prune_importance.py",
        "return {g.id: acc[g.id] / n * wnorm[g.id] for g in groups}",
        "return {g.id: wnorm[g.id] for g in groups}",
        (P,),
    ),
    # ---- further mutants ----
    Mutant(
        "cost-fold-minus-1",
        "cost model",
        "backend/cost/formulas.py",
        'return (rows if flow == "os" else 2 * rows) + cols + t - 2',
        'return (rows if flow == "os" else 2 * rows) + cols + t - 1',
        ("tests/backend/test_cost_model.py",),
    ),
    Mutant(
        "cost-topk-passes",
        "cost model",
        "backend/cost/formulas.py",
        "p = inner * 2 / ((length + 1) * (length + 2)) + ends / (length + 1)",
        "p = inner * 2 / ((length + 1) * (length + 2)) + ends / (length + 2)",
        ("tests/backend/test_cost_model.py",),
    ),
    Mutant(
        "cost-dma-no-coalesce",
        "cost model",
        "backend/cost/formulas.py",
        "if stride == row_bytes:",
        "if False:",
        ("tests/backend/test_cost_model.py",),
    ),
    Mutant(
        "cost-vector-lanes",
        "cost model",
        "backend/cost/formulas.py",
        "max(1, passes * _cdiv(elements, config.vector_lanes))",
        "max(1, passes * _cdiv(elements, 2 * config.vector_lanes))",
        ("tests/backend/test_cost_model.py",),
    ),
    Mutant(
        "interp-rowmax-is-min",
        "interpreter",
        "backend/interpreter/semantics.py",
        'r = x.max(axis=1) if op == "rowmax"',
        'r = x.min(axis=1) if op == "rowmax"',
        ("tests/backend/test_interp_vector.py",),
    ),
    Mutant(
        "interp-causal-off-by-one",
        "interpreter",
        "backend/interpreter/semantics.py",
        "np.arange(cols)[None, :] > lim",
        "np.arange(cols)[None, :] >= lim",
        ("tests/backend/test_interp_vector.py",),
    ),
    Mutant(
        "interp-matmul-acc-ignored",
        "interpreter",
        "backend/interpreter/semantics.py",
        '        if a["acc"]:\n            res += c',
        "        if False:\n            res += c",
        ("tests/backend/test_interp_matmul.py",),
    ),
    Mutant(
        "interp-requant-truncates",
        "quant lowering",
        "backend/interpreter/semantics.py",
        "return (p >> s) + ((p >> (s - 1)) & 1)",
        "return p >> s",
        ("tests/backend/test_interp_vector.py", "tests/backend/test_interp_matmul.py"),
    ),
    Mutant(
        "numerics-gelu-tanh-const",
        "interpreter",
        "backend/interpreter/numerics.py",
        "(x + 0.044715 * x * x * x)",
        "(x + 0.04715 * x * x * x)",
        ("tests/backend/test_interp_vector.py",),
    ),
    Mutant(
        "sched-war-dropped",
        "scheduler",
        "backend/schedule/deps.py",
        "            if write:\n                deps.update(self.readers[s])",
        "            if False:\n                deps.update(self.readers[s])",
        (
            "tests/backend/test_schedule_tokens.py",
            "tests/backend/test_interp_checks.py",
            "tests/backend/test_compile_api.py",
        ),
    ),
    Mutant(
        "sched-dram-not-shared",
        "scheduler",
        "backend/schedule/listsched.py",
        "if q <= 1 and cand[0] < dram_free:",
        "if False and cand[0] < dram_free:",
        (P, "tests/backend/test_interp_timing.py", "tests/backend/test_schedule_tokens.py"),
    ),
    Mutant(
        "topk-keeps-smallest",
        "interpreter",
        "backend/topk.py",
        "order = np.argsort(-scores, axis=-1",
        "order = np.argsort(scores, axis=-1",
        ("tests/backend/test_interp_select.py", "tests/test_token_prune.py"),
    ),
    Mutant(
        "sparsify-keeps-smallest",
        "passes",
        "passes/sparsify_2_4.py",
        "keep = np.argsort(-groups, axis=2",
        "keep = np.argsort(groups, axis=2",
        ("tests/test_sparsify_2_4.py",),
    ),
    Mutant(
        "quant-rtn-floor",
        "passes",
        "passes/quant_math.py",
        "np.clip(np.rint(np.asarray(w, np.float64) / full), lo, hi)",
        "np.clip(np.floor(np.asarray(w, np.float64) / full), lo, hi)",
        ("tests/test_quant_ops.py", "tests/test_quantize_pass.py"),
    ),
    Mutant(
        "quant-fixed-point-shift",
        "quant lowering",
        "passes/quant_math.py",
        "shift = min(max_shift, 30 - int(np.floor(np.log2(top))))",
        "shift = min(max_shift, 31 - int(np.floor(np.log2(top))))",
        ("tests/test_quant_ops.py", "tests/test_quantize_pass.py"),
    ),
    Mutant(
        "depgraph-qk-link",
        "depgraph",
        "passes/depgraph_rules.py",
        "c.link(q, 1, k, 1)",
        "pass",
        ("tests/test_depgraph_cases.py",),
    ),
)


def _killer(out: str) -> str | None:
    m = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return m.group(1) if m else None


def run_one(mu: Mutant, timeout: float) -> tuple[str, str, float]:
    """(status, killing test or note, seconds); status is killed / survived / error."""
    f = ROOT / mu.path
    text = f.read_text()
    count = text.count(mu.old)
    if count == 0 or (count > 1 and mu.nth >= count):
        return "error", f"pattern not found ({count} matches)", 0.0
    at = -1
    for _ in range(mu.nth + 1):
        at = text.index(mu.old, at + 1)
    line = text.count("\n", 0, at) + 1
    mutated = text[:at] + mu.new + text[at + len(mu.old) :]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "--tb=no", "-rfE", "-p", "no:cacheprovider",
           "-p", "no:randomly", *mu.tests]  # fmt: skip
    t0 = time.perf_counter()
    try:
        f.write_text(mutated)
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out = p.stdout + p.stderr
        dt = time.perf_counter() - t0
        if p.returncode == 0:
            return "survived", f"{mu.path}:{line}", dt
        k = _killer(out)
        return "killed", f"{mu.path}:{line} | {k or out.strip().splitlines()[-1][:80]}", dt
    except subprocess.TimeoutExpired:
        return "killed", f"{mu.path}:{line} | timeout ({timeout:.0f} s)", time.perf_counter() - t0
    finally:
        f.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="run only these mutants (by name)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--markdown", action="store_true", help="print the docs/testing.md table")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    rows = []
    killed = 0
    for mu in chosen:
        status, where, dt = run_one(mu, args.timeout)
        killed += status == "killed"
        rows.append((mu, status, where, dt))
        print(f"{mu.name:30s} {status:8s} {dt:6.1f}s  {where}", flush=True)
    print(f"killed {killed}/{len(chosen)} ({100.0 * killed / max(1, len(chosen)):.0f}%)")
    if args.markdown:
        print("\n| mutant | area | file:line | killing test |\n|---|---|---|---|")
        for mu, status, where, _ in rows:
            loc, _, test = where.partition(" | ")
            print(
                f"| {mu.name} | {mu.area} | {loc} | {test if status == 'killed' else '**survived**'} |"
            )
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
