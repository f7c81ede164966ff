"""Progress on long work (pipelines, calibration runs, compile stages, evaluation, benchmarks), on
stderr with tqdm.

Shown only when stderr is a terminal, and only for work that lasts longer than `DELAY` seconds; never
with `--quiet` (`QUIET`) or `WISP_PROGRESS=0`. `WISP_PROGRESS=1` forces it on (tests, or a log that
wants it). It writes nothing to stdout and changes no result: it only observes loops.

    for image in track(images, "eval", unit="image"):
        ...
    with stages("compile", 3) as next_stage:
        next_stage("lower"); lower(...)
        next_stage("schedule"); schedule(...)
    tick("calibration run")  # counted on the innermost open display
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

QUIET: ContextVar[bool] = ContextVar("wisp_quiet", default=False)
DELAY = 1.0  # seconds before a display appears (short work shows none)

_open: list[Any] = []  # the open tqdm displays, innermost last
_ticks: dict[str, int] = {}
_notes: dict[int, str] = {}


def _forced() -> bool:
    return os.environ.get("WISP_PROGRESS") == "1"


def enabled() -> bool:
    """Whether progress is shown: stderr is a terminal (or WISP_PROGRESS=1), and not quiet."""
    if QUIET.get() or os.environ.get("WISP_PROGRESS") == "0":
        return False
    return _forced() or sys.stderr.isatty()


def _bar(desc: str, total: int | None, unit: str, iterable: Iterable[Any] | None = None) -> Any:
    from tqdm import tqdm

    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        leave=False,
        delay=0.0 if _forced() else DELAY,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def track(
    items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Iterate `items`, showing a progress bar (count, rate, time left when `total` is known)."""
    if not enabled():
        yield from items
        return
    if total is None and isinstance(items, Sequence):
        total = len(items)
    bar = _bar(desc, total, unit, items)
    _open.append(bar)
    try:
        yield from bar
    finally:
        _open.remove(bar)
        bar.close()


@contextmanager
def stages(desc: str, total: int) -> Iterator[Callable[[str], None]]:
    """A display over `total` named steps; call the yielded function with a step's name as it starts."""
    if not enabled():
        yield lambda _name: None
        return
    bar = _bar(desc, total, "step")
    _open.append(bar)
    started = False

    def next_stage(name: str) -> None:
        nonlocal started
        bar.set_postfix_str(name, refresh=not started)
        if started:
            bar.update(1)
        started = True

    try:
        yield next_stage
    finally:
        _open.remove(bar)
        bar.close()


@contextmanager
def output() -> Iterator[None]:
    """Write other output (e.g. a pass report on stdout) inside this: open displays step aside."""
    if not _open:
        yield
        return
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stderr):
        yield


def tick(what: str) -> None:
    """Count one unit of work (e.g. a calibration run) on the innermost open display."""
    if not _open:
        return
    _ticks[what] = _ticks.get(what, 0) + 1
    counts = ", ".join(f"{k} {v}" for k, v in _ticks.items())
    _open[-1].set_postfix_str(f"{_notes.get(id(_open[-1]), '')} ({counts})".lstrip(), refresh=True)


def note(text: str) -> None:
    """Show `text` (e.g. the pass now running) beside the innermost open display."""
    if _open:
        _ticks.clear()
        _notes[id(_open[-1])] = text
        _open[-1].set_postfix_str(text, refresh=True)
