"""wisp search: space derived from the passes' declarations, Pareto extraction, determinism, resume,
bad input. The study machinery tests use a cheap synthetic evaluator (a pure function of the
pipeline) so many trials run in seconds; the real evaluator is checked against the reference
executor and the cost model directly."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
from xdsl.passes import ModulePass, PassPipeline

from compiler.errors import WispError
from compiler.pipeline import parse_pipeline
from compiler.registry import PASSES
from compiler.search import executors, study
from compiler.search.evaluate import Task, apply_pipeline, evaluate_task, validation_set
from compiler.search.pareto import pareto_front
from compiler.search.space import NONE, derive_space, format_value
from passes.search_decl import Knob, Stage
from passes.token_prune import TokenPrunePass

optuna = pytest.importorskip("optuna")


# ---- space ------------------------------------------------------------------------------------


def _options(p: ModulePass) -> dict[str, Any]:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}


def test_space_comes_from_the_declarations() -> None:
    space = derive_space()
    dims = {d.name: d.values for d in space.dims}
    keep = next(f for f in dataclasses.fields(TokenPrunePass) if f.name == "keep")
    assert dims["token-prune.keep"] == keep.metadata["search"].values
    assert dims["bits"] == (NONE, "mixed-precision", "quantize")  # one stage group, two passes
    assert "structured-prune[ffn].ratio" in dims  # one instance per `per` value
    assert "tokens" in dims and "sparsity" in dims  # groups whose pass cannot switch itself off
    assert not any(n.endswith(".hw") for n in dims)  # one-value knobs are fixed options


def test_every_point_is_a_pipeline_the_parser_accepts_with_the_chosen_values() -> None:
    space = derive_space()
    rng = random.Random(0)
    for _ in range(60):
        point = {d.name: rng.choice(d.values) for d in space.dims}
        spec = space.pipeline(point, "edge")
        passes = parse_pipeline(spec)  # what `wisp compile -p` does first
        names = [p.name for p in passes]
        for group in ("bits", "tokens", "heads", "sparsity"):
            assert (point[group] in names) == (point[group] != NONE)
        for p in passes:
            opts = _options(p)
            if p.name in ("structured-prune", "mixed-precision"):  # hw= declared as the target
                assert opts["hw"] == "edge"
            if p.name == "token-prune":
                for k in ("method", "keep", "schedule", "start"):
                    assert opts[k] == point[f"token-prune.{k}"]
            if p.name == "structured-prune":
                assert opts["kinds"] == ("ffn",)
                assert opts["ratio"] == point["structured-prune[ffn].ratio"] != 0.0


@dataclass(frozen=True)
class _NewPass(ModulePass):
    """A pass that is not in the registry: a declaration is all the search needs."""

    name = "new-pass"
    search_stage: ClassVar[Stage] = Stage(5, "new")

    alpha: float = field(default=0.5, metadata={"search": Knob((0.0, 0.25, 0.5), off=0.0)})
    mode: str = field(default="a", metadata={"help": "a mode", "search": Knob(("a", "b"))})
    plain: int = 3

    def apply(self, ctx: Any, op: Any) -> None:  # pragma: no cover - never run
        pass


@dataclass(frozen=True)
class _TokenPruneMore(TokenPrunePass):
    """token-prune with one more searchable option."""

    extra: int = field(default=1, metadata={"search": Knob((1, 2, 4))})


def test_a_new_declaration_appears_without_touching_search_code() -> None:
    registry = {
        **PASSES,
        "new-pass": lambda: _NewPass,
        "token-prune": lambda: _TokenPruneMore,
    }
    space = derive_space(registry=registry)
    dims = {d.name: d.values for d in space.dims}
    assert dims["new-pass.alpha"] == (0.0, 0.25, 0.5)
    assert dims["new-pass.mode"] == ("a", "b")
    assert dims["token-prune.extra"] == (1, 2, 4)
    assert "new-pass.plain" not in dims and "new" not in dims  # alpha=0 switches it off
    point = {"new-pass.alpha": 0.25, "new-pass.mode": "b", "tokens": "token-prune"}
    point["token-prune.extra"] = 4
    spec = space.pipeline(point, "spatten")
    assert spec.startswith("new-pass{alpha=0.25 mode=b},")  # its stage order comes first
    passes = PassPipeline.parse_spec(registry, spec).passes
    assert _options(passes[0])["alpha"] == 0.25 and _options(passes[-1])["extra"] == 4
    assert "new-pass" not in space.pipeline({**point, "new-pass.alpha": 0.0}, "spatten")


def test_pinning_and_groups_and_their_errors() -> None:
    space = derive_space(["tokens"]).pin({"token-prune.method": "topk"})
    assert [d.name for d in space.dims] == [
        "tokens",
        "token-prune.keep",
        "token-prune.schedule",
        "token-prune.start",
    ]
    assert "method=topk" in space.pipeline({"tokens": "token-prune"}, "spatten")
    with pytest.raises(WispError, match="unknown search knob 'token-prune.foo'"):
        derive_space().pin({"token-prune.foo": "1"})
    with pytest.raises(WispError, match=r"knob token-prune.method=best: not one of spatten"):
        derive_space().pin({"token-prune.method": "best"})
    with pytest.raises(WispError, match="unknown search group 'quant'"):
        derive_space(["quant"])


def test_format_value_round_trips_through_the_parser() -> None:
    assert format_value((0.5,)) == "0.5" and format_value(True) == "true"
    assert format_value("configs/my npu.toml") == '"configs/my npu.toml"'


# ---- Pareto ----------------------------------------------------------------------------------


def _front_by_sweep(points: list[tuple[float, float]]) -> set[int]:
    """2-D front (maximize x0, minimize x1) by a sort and sweep: an independent algorithm."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front: set[int] = set()
    best, last = -np.inf, None
    for i in order:
        if points[i][0] > best:
            front.add(i)
            best, last = points[i][0], points[i]
        elif points[i] == last:  # a copy of a front point is on the front too
            front.add(i)
    return front


def test_pareto_front_against_brute_force_on_grids() -> None:
    rng = random.Random(1)
    for _ in range(200):
        n = rng.randint(1, 25)
        pts = [(float(rng.randint(0, 6)), float(rng.randint(0, 6))) for _ in range(n)]
        got = set(pareto_front(pts, [True, False]))
        brute = {
            i
            for i, p in enumerate(pts)
            if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in pts)
        }
        assert got == brute == _front_by_sweep(pts)
    # three objectives, against the definition
    pts3 = list(itertools.product([0.0, 1.0, 2.0], repeat=3))
    got3 = pareto_front(pts3, [True, False, False])
    assert [pts3[i] for i in got3] == [(2.0, 0.0, 0.0)]


# ---- the study machinery, with a synthetic evaluator ------------------------------------------


def _synthetic(task: Task) -> dict[str, Any]:
    """Accuracy falls and cost falls with fewer kept tokens; a pure function of the pipeline."""
    _synthetic.calls.append(task.pipeline)  # type: ignore[attr-defined]
    m = re.search(r"keep=([\d.]+)", task.pipeline)
    keep = float(m.group(1)) if m else 1.0
    method = re.search(r"method=(\w+)", task.pipeline)
    bonus = {"spatten": 2, "tps": 1, "evit": 0, "topk": 3}[method.group(1)] if method else 4
    correct = 100 - int(round(40 * (1 - keep))) + (bonus if keep < 1 else 0)
    cycles = int(1000 * (0.2 + keep)) + 10 * (4 - bonus)
    return {
        "pipeline": task.pipeline,
        "error": None,
        "cycles": cycles,
        "dram_bytes": 2 * cycles,
        "energy_pj": 3.0 * cycles,
        "weight_bytes": 100,
        "correct": min(correct, 104),
        "evaluated": 104,
        "total": 104,
        "complete": True,
        "accuracy": min(correct, 104) / 104,
    }


_synthetic.calls = []  # type: ignore[attr-defined]


@pytest.fixture
def synthetic(monkeypatch: pytest.MonkeyPatch) -> Any:
    _synthetic.calls.clear()  # type: ignore[attr-defined]
    monkeypatch.setattr(executors, "evaluate_task", _synthetic)
    monkeypatch.setattr("compiler.search.evaluate.validation_set", lambda name: None)
    return _synthetic


def _search(**kw: Any) -> study.SearchResult:
    args: dict[str, Any] = dict(
        target="spatten",
        objectives="accuracy,cycles",
        max_drop=10.0,
        trials=24,
        workers=1,
        groups=["tokens"],
        pin={"token-prune.schedule": "ramp", "token-prune.start": "1"},
        hand_tuned=(),
        batch=4,
    )
    args.update(kw)
    return study.search("digits-vit", **args)


def test_front_equals_brute_force_over_the_grid(synthetic: Any) -> None:
    res = _search(trials=40, pin={"token-prune.method": "topk", "token-prune.schedule": "ramp"})
    space = res.space
    grid = [dict(zip([d.name for d in space.dims], vals, strict=True))
            for vals in itertools.product(*[d.values for d in space.dims])]  # fmt: skip
    everything = {space.pipeline(p, "spatten") for p in grid}
    seen = {r["pipeline"] for r in res.trials}
    assert seen <= everything and len(everything) == 17  # none, or 8 keeps x 2 starts
    assert len(res.trials) == 40 and len(synthetic.calls) == len(seen) + 1  # once each (+ dense)
    rows = [_synthetic(Task("digits-vit", "spatten", p)) for p in sorted(everything)]
    dense = _synthetic(Task("digits-vit", "spatten", ""))
    floor = dense["correct"] - 10.0 * 104 / 100
    ok = [r for r in rows if r["correct"] >= floor]
    brute = {
        r["pipeline"]
        for r in ok
        if not any(
            q["accuracy"] >= r["accuracy"] and q["cycles"] <= r["cycles"] and q is not r
            and (q["accuracy"], q["cycles"]) != (r["accuracy"], r["cycles"])
            for q in ok
        )
    }  # fmt: skip
    assert {r["pipeline"] for r in res.front} == brute  # the grid's front, though not all visited
    assert len(res.front) == len(brute)  # a candidate asked again appears once
    assert res.best is not None and res.best["cycles"] == min(r["cycles"] for r in ok)


def test_same_seed_same_study_and_another_seed_differs(synthetic: Any) -> None:
    a = [r["pipeline"] for r in _search(seed=3).trials]
    b = [r["pipeline"] for r in _search(seed=3).trials]
    c = [r["pipeline"] for r in _search(seed=4).trials]
    assert a == b and a != c


def test_results_do_not_depend_on_the_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real evaluator on 3 candidates (cost + a 4-image proxy): in-process, 2 spawned
    processes, and Ray when installed give identical results."""
    pipes = [
        "",
        "token-prune{method=topk keep=0.5}",
        "head-prune{keep=2}",
        "token-prune{method=topk keep=0.5},head-prune{keep=2}",
    ]
    tasks = [Task("digits-vit", "spatten", p, limits=(("cycles", 0.0),), proxy=4) for p in pipes]

    def strip(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rs]

    inline = strip(executors.InlineExecutor().map(tasks))
    pool = executors.LocalExecutor(2)
    try:
        assert strip(pool.map(tasks)) == inline
    finally:
        pool.close()
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'wisp[ray]')")
    ray_ex = executors.RayExecutor(2)
    try:
        assert strip(ray_ex.map(tasks)) == inline
    finally:
        ray_ex.close()


def test_affinity_bins_keep_first_passes_together_and_balance() -> None:
    """Every task once; tasks sharing their first pass on one worker, on its home worker in the
    next batch while balanced; a group larger than a worker's share is split over idle workers."""
    a, b, c = "structured-prune{ratio=0.3}", "sparsify-2-4", "quantize"

    def tasks(specs: list[str]) -> list[Task]:
        return [Task("m", "t", s) for s in specs]

    home: dict[str, int] = {}
    batch = tasks([f"{a},x", b, f"{a},y", c, f"{b},z", f"{a},w"])
    bins = executors.affinity_bins(batch, 2, home)
    assert sorted(i for bn in bins for i in bn) == list(range(6))
    firsts = [{batch[i].pipeline.split(",")[0] for i in bn} for bn in bins]
    assert all(not (f & g) for f, g in [(firsts[0], firsts[1])])  # no first pass on both
    assert max(len(bn) for bn in bins) == 3
    again = tasks([c, f"{a},v"])
    bins2 = executors.affinity_bins(again, 2, home)
    assert bins2[home[a]] == [1] and bins2[home[c]] == [0]
    big = executors.affinity_bins(tasks([f"{a},{i}" for i in range(8)]), 2, {})
    assert sorted(len(bn) for bn in big) == [4, 4]


def test_resume_after_an_interrupt(synthetic: Any, tmp_path: Any) -> None:
    calls = synthetic.calls
    real = executors.evaluate_task
    batches = {"n": 0}

    def interrupted(task: Task) -> dict[str, Any]:
        if len(calls) >= 9:  # dense + 8 candidates done, then Ctrl-C mid-batch
            batches["n"] += 1
            raise KeyboardInterrupt
        return real(task)

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(executors, "evaluate_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _search(trials=20, study_dir=tmp_path, seed=5)
    monkeypatch.undo()
    done_before = {r["pipeline"] for r in _rows(tmp_path)}
    assert 0 < len(done_before) <= 8
    calls.clear()
    res = _search(trials=20, study_dir=tmp_path, seed=5)
    assert len(res.trials) == 20
    assert not done_before & set(calls)  # finished trials are not evaluated again
    requeued = [t for t in res.study.trials if "requeued_from" in t.user_attrs]
    assert requeued, "the trials interrupted mid-batch are asked again"
    for t in requeued:
        old = res.study.trials[t.user_attrs["requeued_from"]]
        assert old.params == t.params and old.user_attrs.get("interrupted")
    # the same study directory for another target is refused
    with pytest.raises(WispError, match=r"--study .*: made for target 'spatten', not 'edge'"):
        _search(trials=20, study_dir=tmp_path, seed=5, target="edge")


def _rows(path: Any) -> list[dict[str, Any]]:
    st = optuna.load_study(study_name=study.STUDY_NAME, storage=f"sqlite:///{path}/study.db")
    return [t.user_attrs["result"] for t in st.trials if "result" in t.user_attrs]


def test_unreachable_budget_reports_the_closest(synthetic: Any, tmp_path: Any, capsys: Any) -> None:
    from compiler.cli.wisp import main

    out = tmp_path / "o"
    code = main(["search", "digits-vit", "--trials", "8", "--workers", "1", "--groups", "tokens",
                 "--budget", "cycles=0.05", "--no-confirm", "-o", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and [e for e in err if "error" in e] == err[-1:]  # progress lines before it
    assert re.match(r"wisp: error: no candidate meets --max-drop 1 --budget cycles=0.05; the "
                    r"closest: trial \d+ \(cycles 0\.\d+ of dense", err[-1])  # fmt: skip
    data = json.loads((out / "search.json").read_text())
    assert data["best"] is None and data["closest"]["pipeline"].startswith("token-prune")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--objectives", "accuracy,latency"], "--objectives: unknown objective 'latency'"),
        (["--set", "token-prune.depth=3"], "unknown search knob 'token-prune.depth'"),
        (["--budget", "flops=0.5"], "--budget flops=0.5: unknown cost 'flops'"),
        (["--target", "nosuch"], "nosuch"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], message: str, capsys: Any) -> None:
    from compiler.cli.wisp import main

    code = main(["search", "digits-vit", "--trials", "2", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0]


def test_ray_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(WispError, match=r"Ray is not installed; pip install 'wisp\[ray\]'"):
        executors.make_executor("ray", 2)


# ---- the real evaluator -----------------------------------------------------------------------


def test_evaluator_against_the_reference_and_the_interpreter() -> None:
    """Accuracy: an independent loop over the validation images with the reference executor;
    costs: the interpreter's measured run of the same program (static shapes: one image)."""
    from compiler import reference
    from compiler.api import compile_model

    spec = "token-prune{method=topk keep=0.5 schedule=step start=1}"
    r = evaluate_task(Task("digits-vit", "spatten", spec))
    compiled = compile_model("digits-vit", spec, "spatten")
    images, labels = validation_set("digits-vit")
    preds = [int(np.argmax(reference.run(compiled.model, {"image": x})["out0"])) for x in images]
    assert r["correct"] == sum(p == int(y) for p, y in zip(preds, labels, strict=True))
    assert r["evaluated"] == r["total"] == len(labels) == 192 and r["complete"]
    rep = compiled.run({"image": images[0]}, timing_only=True).report
    assert abs(r["cycles"] - rep.cycles) / rep.cycles < 0.01
    assert r["dram_bytes"] == rep.dram_read + rep.dram_write
    assert abs(r["energy_pj"] - rep.energy_total_pj) / rep.energy_total_pj < 1e-9
    # early rejection: stops right after the allowed misses are exceeded
    rej = evaluate_task(Task("digits-vit", "spatten", "head-prune{keep=1 start=1}", max_misses=0))
    assert rej["evaluated"] - rej["correct"] == 1 and not rej["complete"]


def test_prefix_cache_gives_the_model_a_fresh_run_gives() -> None:
    from compiler.ir import print_module
    from compiler.models import build
    from compiler.pipeline import run_pipeline

    first = "structured-prune{ratio=0.3 kinds=ffn hw=spatten}"
    for spec in (
        f"{first},token-prune{{method=topk keep=0.5}}",
        f"{first},quantize{{weights=int4}}",
    ):
        cached = apply_pipeline("digits-vit", spec)  # the second reuses the pruned prefix
        fresh = build("digits-vit")
        run_pipeline(fresh, spec, quiet=True)
        assert print_module(cached.module) == print_module(fresh.module)
        assert sorted(cached.weights.keys()) == sorted(fresh.weights.keys())
        for k in fresh.weights.keys():
            assert np.array_equal(cached.weights[k], fresh.weights[k]), k


def test_pareto_png_shows_every_trial_and_is_deterministic(synthetic: Any, tmp_path: Any) -> None:
    """pareto.png is a real PNG of the study (one panel per cost objective), byte-identical for the
    same result, and differs when the trials differ (the plot is of the data, not a fixed picture)."""
    pytest.importorskip("matplotlib")
    from compiler.search.output import plot

    res = _search(seed=3)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert plot(res, a) and plot(res, b)
    head = a.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(head[16:20], "big")
    assert a.read_bytes() == b.read_bytes()
    other = tmp_path / "c.png"
    assert plot(_search(seed=4), other) and other.read_bytes() != a.read_bytes()
    two = _search(seed=3, objectives="accuracy,cycles,energy")
    wide = tmp_path / "d.png"
    assert plot(two, wide) and int.from_bytes(wide.read_bytes()[16:20], "big") > 1.8 * width
