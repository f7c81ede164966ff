"""Where candidates are evaluated: in-process, a local process pool (default), or a Ray cluster.

Every executor returns the results in task order and the evaluation is deterministic, so the
search's results for a fixed seed do not depend on the executor or the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol

from compiler.errors import WispError
from compiler.search.evaluate import Task, evaluate_task

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
    """A pool of `workers` spawned processes on this machine."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))

    def map(self, tasks: Sequence[Task]) -> list[dict[str, Any]]:
        return list(self._pool.map(evaluate_task, tasks))

    def close(self, abort: bool = False) -> None:
        """Shut the pool down; `abort` (an interrupt): stop the workers now, without waiting."""
        if abort:
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
        self._pool.shutdown(wait=not abort, cancel_futures=True)


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
