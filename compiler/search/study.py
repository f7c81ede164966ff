"""The search loop: an Optuna multi-objective study (TPE or NSGA-II) over the derived space.

    from compiler.search import search
    result = search("digits-vit", target="spatten", objectives="accuracy,cycles", trials=50,
                    max_drop=1.0, study_dir="out/study")
    result.best["pipeline"]        # paste into `wisp compile -p`

Trials are asked in fixed-size batches, evaluated by an executor (results in trial order) and told
back in trial order, so a fixed seed gives the same study whatever the executor or worker count.
With a study directory the study lives in an SQLite file (Optuna's RDB storage): every finished
trial is committed, and a rerun resumes (trials interrupted mid-evaluation are re-queued). Identical
candidates (the same pipeline string) are evaluated once.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.errors import WispError
from compiler.search.evaluate import Task
from compiler.search.executors import Executor, make_executor
from compiler.search.objectives import Objective, parse_budgets, parse_objectives
from compiler.search.pareto import pareto_front
from compiler.search.space import Dim, Space, derive_space, format_value

STUDY_FILE = "study.db"
STUDY_NAME = "wisp-search"
SAMPLERS = ("tpe", "nsga2")
# Hand-tuned pipelines from docs/tokens.md and docs/quantization.md, marked on the plot.
HAND_TUNED = (
    "quantize{weights=int8}",
    "token-prune{method=topk keep=0.5 schedule=step start=1}",
    "structured-prune{target=macs ratio=0.3 criterion=fisher refit=true hw=TARGET},"
    "sparsify-2-4{refit=true},quantize{weights=int8},"
    "token-prune{method=topk keep=0.4 schedule=step start=1}",
)


@dataclass
class SearchSettings:
    """Everything that defines a study (a resumed study must match) and how it is run."""

    model: str
    target: str = "spatten"
    objectives: list[Objective] = field(default_factory=lambda: parse_objectives("accuracy,cycles"))
    max_drop: float = 1.0  # accuracy points below dense
    budgets: dict[str, float] = field(default_factory=dict)  # cost → fraction of dense
    trials: int = 50
    seed: int = 0
    sampler: str = "tpe"
    batch: int = 8
    groups: list[str] | None = None
    pin: dict[str, str] = field(default_factory=dict)
    proxy: int = 32
    hand_tuned: Sequence[str] = HAND_TUNED

    def identity(self, space: Space) -> dict[str, Any]:
        """What a resumed study must agree on."""
        return {
            "model": self.model,
            "target": self.target,
            "objectives": [o.name for o in self.objectives],
            "max_drop": self.max_drop,
            "budgets": dict(sorted(self.budgets.items())),
            "seed": self.seed,
            "sampler": self.sampler,
            "batch": self.batch,
            "space": space.signature(),
        }


@dataclass
class SearchResult:
    """The study, the dense and hand-tuned reference points, every trial, the front and the pick."""

    study: Any  # optuna.Study
    settings: SearchSettings
    space: Space
    dense: dict[str, Any]
    hand: list[dict[str, Any]]
    trials: list[dict[str, Any]]
    front: list[dict[str, Any]]
    best: dict[str, Any] | None
    closest: dict[str, Any] | None
    evaluated: int  # candidates evaluated in this run (cache misses)
    cached: int  # trials answered from the cache in this run


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise WispError(
            "wisp search needs Optuna: pip install 'wisp[search]' (or: pip install optuna)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # multivariate TPE and trial constraints are marked experimental; the search relies on them
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _sampler(optuna: Any, s: SearchSettings) -> Any:
    if s.sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=s.seed, multivariate=True, n_startup_trials=2 * s.batch
        )
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=s.seed, population_size=max(2 * s.batch, 8))
    raise WispError(f"--sampler {s.sampler}: unknown (known: {', '.join(SAMPLERS)})")


def _open_study(optuna: Any, s: SearchSettings, space: Space, study_dir: Path | None) -> Any:
    directions = [o.direction for o in s.objectives]
    if study_dir is None:
        study = optuna.create_study(directions=directions, sampler=_sampler(optuna, s))
        study.set_user_attr("wisp", s.identity(space))
        return study
    study_dir.mkdir(parents=True, exist_ok=True)
    db = study_dir / STUDY_FILE
    url = f"sqlite:///{db.resolve()}"
    exists = db.exists()
    try:
        storage = optuna.storages.RDBStorage(url)
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage,
            directions=directions,
            sampler=_sampler(optuna, s),
            load_if_exists=True,
        )
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign file: name it
        raise WispError(f"{db}: not a readable wisp study ({str(e).splitlines()[0]})") from None
    mine = s.identity(space)
    theirs = study.user_attrs.get("wisp")
    if theirs is None:
        if exists and study.trials:
            raise WispError(f"{db}: an Optuna study not made by wisp search; use another --study")
        study.set_user_attr("wisp", mine)
    elif theirs != mine:
        diff = [k for k in mine if theirs.get(k) != mine[k]]
        k = diff[0]
        raise WispError(
            f"--study {study_dir}: made for {k} {theirs.get(k)!r}, not {mine[k]!r} "
            f"(model {theirs.get('model')}, target {theirs.get('target')}); use another --study"
        )
    return study


def _requeue_interrupted(optuna: Any, study: Any) -> int:
    """Trials left RUNNING by an interrupted run: marked failed and asked again (same params)."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in running:
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"requeued_from": t.number})
    return len(running)


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """A point of the space from an Optuna trial: ordinal dims as an index (keeps the order for
    the sampler), others as categorical over their printed values."""
    point: dict[str, Any] = {}
    for d in space.dims:
        if d.ordinal:
            point[d.name] = d.values[trial.suggest_int(d.name, 0, len(d.values) - 1)]
        else:
            texts = [format_value(v) for v in d.values]
            point[d.name] = d.values[texts.index(trial.suggest_categorical(d.name, texts))]
    return point


def _limits(s: SearchSettings, dense: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    from compiler.search.objectives import OBJECTIVES

    return tuple((OBJECTIVES[k].key, f * dense[OBJECTIVES[k].key]) for k, f in s.budgets.items())


def _max_misses(s: SearchSettings, dense: Mapping[str, Any]) -> int:
    total = dense["total"]
    floor = dense["accuracy"] - s.max_drop / 100.0
    return total - max(0, math.ceil(floor * total - 1e-9))


def judge(
    r: dict[str, Any], s: SearchSettings, dense: Mapping[str, Any]
) -> tuple[list[float], bool]:
    """Constraint values (<= 0: met) of a result, and whether it is feasible: accuracy within
    max_drop of dense (scored on every validation image) and every budget met."""
    misses = r["evaluated"] - r["correct"]
    allowed = _max_misses(s, dense)
    c = [float(misses - allowed) if r["complete"] or misses > allowed else 0.0]
    c += [r[key] / limit - 1.0 for key, limit in _limits(s, dense)]
    return c, bool(r["complete"]) and all(v <= 0 for v in c)


def _constraint_names(s: SearchSettings) -> list[str]:
    return ["accuracy", *(f"budget.{k}" for k in s.budgets)]


def _values(r: Mapping[str, Any], s: SearchSettings, dense: Mapping[str, Any]) -> list[float]:
    return [
        100.0 * r["accuracy"] if o.name == "accuracy" else r[o.key] / dense[o.key]
        for o in s.objectives
    ]


def search(
    model: str,
    *,
    target: str = "spatten",
    objectives: str | Sequence[str] = "accuracy,cycles",
    max_drop: float = 1.0,
    budget: Sequence[str] | Mapping[str, float] = (),
    trials: int = 50,
    executor: str = "local",
    workers: int | None = None,
    study_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    sampler: str = "tpe",
    batch: int = 8,
    groups: Sequence[str] | None = None,
    pin: Mapping[str, str] | None = None,
    hand_tuned: Sequence[str] = HAND_TUNED,
    on_batch: Callable[[int, int, dict[str, Any] | None], None] | None = None,
) -> SearchResult:
    """Run (or resume) a search; see the module docstring. `on_batch(done, total, best)` reports
    progress after every batch."""
    from backend.config import load_config

    load_config(target)  # an unknown target fails before anything runs
    if trials < 1:
        raise WispError(f"--trials {trials}: must be >= 1")
    if batch < 1:
        raise WispError(f"--batch {batch}: must be >= 1")
    if not max_drop >= 0:
        raise WispError(f"--max-drop {max_drop}: must be >= 0 (accuracy points)")
    settings = SearchSettings(
        model,
        target,
        parse_objectives(objectives),
        max_drop,
        parse_budgets(budget),
        trials,
        seed,
        sampler,
        batch,
        list(groups) if groups is not None else None,
        dict(pin or {}),
        hand_tuned=tuple(hand_tuned),
    )
    if sampler not in SAMPLERS:
        raise WispError(f"--sampler {sampler}: unknown (known: {', '.join(SAMPLERS)})")
    space = derive_space(settings.groups).pin(settings.pin)
    if not space.dims:
        raise WispError("the search space is empty (every knob is pinned)")
    optuna = _optuna()
    from compiler.search.evaluate import validation_set

    validation_set(model)  # a model without a dataset fails here, before a study is made
    study = _open_study(optuna, settings, space, Path(study_dir) if study_dir else None)
    ex = make_executor(executor, workers or min(2, os.cpu_count() or 1))
    try:
        result = _run(optuna, study, settings, space, ex, on_batch)
    except BaseException:
        ex.close(abort=True)  # an interrupt: the study keeps what was told; a rerun resumes
        raise
    ex.close()
    return result


def _references(
    study: Any, s: SearchSettings, ex: Executor
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The dense model and the hand-tuned pipelines, evaluated once per study (kept in it)."""
    refs = study.user_attrs.get("references")
    if refs is None:
        pipelines = ["", *(p.replace("TARGET", s.target) for p in s.hand_tuned)]
        results = ex.map([Task(s.model, s.target, p) for p in pipelines])
        for r in results:
            r.pop("seconds", None)
        if results[0]["error"]:
            raise WispError(f"the dense model does not compile: {results[0]['error']}")
        refs = {"dense": results[0], "hand": results[1:]}
        study.set_user_attr("references", refs)
    return refs["dense"], refs["hand"]


def _run(
    optuna: Any,
    study: Any,
    s: SearchSettings,
    space: Space,
    ex: Executor,
    on_batch: Callable[[int, int, dict[str, Any] | None], None] | None,
) -> SearchResult:
    TrialState = optuna.trial.TrialState
    dense, hand = _references(study, s, ex)
    _requeue_interrupted(optuna, study)
    limits, max_misses = _limits(s, dense), _max_misses(s, dense)
    cache: dict[str, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if "result" in t.user_attrs:
            cache.setdefault(t.user_attrs["pipeline"], t.user_attrs["result"])

    def done() -> int:
        states = (TrialState.COMPLETE, TrialState.FAIL)
        return sum("result" in t.user_attrs for t in study.get_trials(False, states=states))

    evaluated = cached = 0
    while (n := done()) < s.trials:
        asked = [study.ask() for _ in range(min(s.batch, s.trials - n))]
        pipelines = [space.pipeline(suggest(t, space), s.target) for t in asked]
        todo = sorted({p for p in pipelines if p not in cache})
        tasks = [Task(s.model, s.target, p, max_misses, limits, s.proxy) for p in todo]
        for r in ex.map(tasks):
            r.pop("seconds", None)
            cache[r["pipeline"]] = r
        evaluated += len(todo)
        cached += len(pipelines) - len(todo)
        for trial, p in zip(asked, pipelines, strict=True):
            r = cache[p]
            trial.set_user_attr("pipeline", p)
            trial.set_user_attr("result", r)
            if r["error"]:
                study.tell(trial, state=TrialState.FAIL)
                continue
            constraints, feasible = judge(r, s, dense)
            trial.set_user_attr("constraints", constraints)
            for name, value in zip(_constraint_names(s), constraints, strict=True):
                trial.set_constraint(name, value)  # read by the samplers
            trial.set_user_attr("feasible", feasible)
            study.tell(trial, _values(r, s, dense))
        if on_batch is not None:
            rows = _rows(optuna, study, s, dense)
            on_batch(done(), s.trials, _best([r for r in rows if r["feasible"]], s))
    rows = _rows(optuna, study, s, dense)
    feasible = [r for r in rows if r["feasible"]]
    keys = [o.key for o in s.objectives]
    ups = [o.direction == "maximize" for o in s.objectives]
    front: list[dict[str, Any]] = []
    for i in pareto_front([[r[k] for k in keys] for r in feasible], ups):
        # a candidate asked again is on the front once
        if all(f["pipeline"] != feasible[i]["pipeline"] for f in front):
            front.append(feasible[i])
    front.sort(key=lambda r: [r[k] if not up else -r[k] for k, up in zip(keys, ups, strict=True)])
    best = _best(front, s)
    closest = None if best is not None else _closest(rows)
    return SearchResult(study, s, space, dense, hand, rows, front, best, closest, evaluated, cached)


def _rows(
    optuna: Any, study: Any, s: SearchSettings, dense: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every evaluated trial as a flat record, in trial order."""
    rows = []
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    for t in study.get_trials(deepcopy=False, states=states):
        if "result" not in t.user_attrs:
            continue
        r = dict(t.user_attrs["result"])
        r["trial"] = t.number
        r["feasible"] = bool(t.user_attrs.get("feasible", False))
        r["constraints"] = t.user_attrs.get("constraints")
        if not r["error"]:
            for o in s.objectives:
                if o.name != "accuracy":
                    r[f"{o.name}_ratio"] = r[o.key] / dense[o.key]
            r["drop_points"] = 100.0 * (dense["accuracy"] - r["accuracy"])
        rows.append(r)
    return rows


def _best(front: Sequence[dict[str, Any]], s: SearchSettings) -> dict[str, Any] | None:
    """The feasible candidate with the lowest first cost objective (ties: higher accuracy)."""
    cost = next((o.key for o in s.objectives if o.name != "accuracy"), None)
    if not front or cost is None:
        return None
    return min(front, key=lambda r: (r[cost], -r.get("accuracy", 0.0), r["trial"]))


def _closest(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The candidate violating the constraints least (sum of positive violations)."""
    ok = [r for r in rows if not r["error"] and r["constraints"]]
    if not ok:
        return None
    return min(ok, key=lambda r: (sum(max(0.0, c) for c in r["constraints"]), r["trial"]))


def dims_table(dims: Sequence[Dim]) -> list[str]:
    """The searched dimensions, one line each."""
    return [f"  {d.name:<34} {', '.join(format_value(v) for v in d.values)}" for d in dims]
