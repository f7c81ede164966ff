"""Where candidates are evaluated: in-process, a local process pool (default), or a Ray cluster.

Every executor returns the results in task order and the evaluation is deterministic, so the
search's results for a fixed seed do not depend on the executor or the number of workers.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Protocol

from compiler.errors import WispError
from compiler.search.evaluate import Task, evaluate_task, split_pipeline

EXECUTORS = ("local", "ray")
RAY_INSTALL = "pip install 'wisp[ray]' (or: pip install ray)"


class Executor(Protocol):
    name: str

    def map(self, tasks: Sequence[Task]) -> list[dict[str, Any]]: ...

    def close(self, abort: bool = False) -> None: ...


class InlineExecutor:
    """Evaluate in this process (one worker)."""

    name = "local"

    def map(self, tasks: Sequence[Task]) -> list[dict[str, Any]]:
        return [evaluate_task(t) for t in tasks]

    def close(self, abort: bool = False) -> None:
        pass


class LocalExecutor:
    """`workers` spawned processes on this machine, one pool each, so a candidate can be sent to
    the worker that already applied its first pass (the prefix cache of compiler.search.evaluate)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        ctx = get_context("spawn")
        self._pools = [ProcessPoolExecutor(1, mp_context=ctx) for _ in range(workers)]
        self._home: dict[str, int] = {}  # first pass → the worker that applied it last

    def map(self, tasks: Sequence[Task]) -> list[dict[str, Any]]:
        """Candidates sharing their first pass go to one worker (its home, if it has one and the
        batch stays balanced), one group at a time; a worker whose own groups are done takes the
        last group queued for another (the results do not depend on who evaluates what)."""
        n = len(self._pools)
        queues = [deque(_by_first_pass(b, tasks)) for b in affinity_bins(tasks, n, self._home)]
        out: list[dict[str, Any] | None] = [None] * len(tasks)
        running: dict[Future[list[dict[str, Any]]], tuple[int, list[int]]] = {}

        def feed(w: int) -> None:
            if not queues[w]:
                donor = max(range(n), key=lambda o: (sum(len(g) for g in queues[o]), -o))
                if not queues[donor]:
                    return
                group = queues[donor].pop()
                self._home[_first_pass(tasks[group[0]])] = w
            else:
                group = queues[w].popleft()
            fut = self._pools[w].submit(evaluate_tasks, [tasks[i] for i in group])
            running[fut] = (w, group)

        for w in range(n):
            feed(w)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                w, group = running.pop(fut)
                for i, r in zip(group, fut.result(), strict=True):
                    out[i] = r
                feed(w)
        return [r for r in out if r is not None]

    def close(self, abort: bool = False) -> None:
        """Shut the pools down; `abort` (an interrupt): stop the workers now, without waiting."""
        for pool in self._pools:
            if abort:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
            pool.shutdown(wait=not abort, cancel_futures=True)


class RayExecutor:
    """Ray tasks: on the cluster at `address` (or RAY_ADDRESS), else a local Ray instance with
    `workers` CPUs started here and stopped by close()."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise WispError(f"--executor ray: Ray is not installed; {RAY_INSTALL}") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            address = address or os.environ.get("RAY_ADDRESS")
            env = {
                "env_vars": {"PYTHONPATH": os.pathsep.join(_paths()), "OPENBLAS_NUM_THREADS": "1"}
            }
            if address:
                ray.init(address=address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env=env,
                )
        self._remote = ray.remote(evaluate_task)

    def map(self, tasks: Sequence[Task]) -> list[dict[str, Any]]:
        return list(self._ray.get([self._remote.remote(t) for t in tasks]))

    def close(self, abort: bool = False) -> None:
        if self._started:
            self._ray.shutdown()


def evaluate_tasks(tasks: Sequence[Task]) -> list[dict[str, Any]]:
    """Evaluate tasks in order in this process (one worker's share of a batch)."""
    return [evaluate_task(t) for t in tasks]


def _first_pass(task: Task) -> str:
    return next(iter(split_pipeline(task.pipeline)), "")


def _by_first_pass(indices: Sequence[int], tasks: Sequence[Task]) -> list[list[int]]:
    """The indices grouped by their task's first pass, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i in indices:
        groups.setdefault(_first_pass(tasks[i]), []).append(i)
    return list(groups.values())


def affinity_bins(
    tasks: Sequence[Task], workers: int, home: dict[str, int] | None = None
) -> list[list[int]]:
    """Task indices per worker: tasks with the same first pass together, a group on its `home`
    worker while that keeps the batch balanced, else on the emptiest (largest groups first); a
    worker with more than its share gives the rest to an idle one. `home` is updated."""
    home = {} if home is None else home
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        groups.setdefault(_first_pass(t), []).append(i)
    bins: list[list[int]] = [[] for _ in range(workers)]
    share = -(-len(tasks) // workers)
    for key, g in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0])):
        w = home.get(key)
        if w is None or w >= workers or len(bins[w]) + len(g) > share:
            w = min(range(workers), key=lambda n: (len(bins[n]), n))
        bins[w].extend(g)
        home[key] = w
    for b in bins:
        while len(b) > share and any(not o for o in bins):
            next(o for o in bins if not o).extend(b[share:])
            del b[share:]
    return [sorted(b) for b in bins]


def _paths() -> list[str]:
    """The wisp source root (so Ray workers import this checkout) and the caller's PYTHONPATH."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [root, *(p for p in extra if p != root)]


def make_executor(name: str, workers: int) -> Executor:
    """The executor named `name` with `workers` parallel evaluations."""
    if name not in EXECUTORS:
        raise WispError(f"--executor {name}: unknown (known: {', '.join(EXECUTORS)})")
    if workers < 1:
        raise WispError(f"--workers {workers}: must be >= 1")
    if name == "ray":
        return RayExecutor(workers)
    return InlineExecutor() if workers == 1 else LocalExecutor(workers)
