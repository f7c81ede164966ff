"""Chrome/Perfetto trace events: one track (tid) per queue, times in microseconds."""

from __future__ import annotations

from typing import Any

from backend.config import Config
from backend.interpreter.report import QUEUE_NAMES, tag_of
from backend.isa import Instr


def event(
    ins: Instr, idx: int, q: int, t: int, dur: int, mhz: float, skipped: bool, masked: int = 0
) -> dict[str, Any]:
    """One complete ("X") event for an executed or skipped instruction; ``masked``: MATMUL rows
    its precision mask sent to the int4 rate (recorded only when non-zero)."""
    ev: dict[str, Any] = {
        "name": ins.cls.mnemonic,
        "cat": tag_of(ins.comment) or QUEUE_NAMES[q],
        "ph": "X",
        "ts": t / mhz,
        "dur": dur / mhz,
        "pid": 1,
        "tid": q,
        "args": {
            "index": idx,
            "comment": ins.comment,
            "cycle": t,
            "cycles": dur,
            "skipped": skipped,
        },
    }
    if masked:
        ev["args"]["masked_rows"] = masked
    return ev


def metadata(cfg: Config) -> list[dict[str, Any]]:
    """Process and thread names, so tracks show as the queue names in order."""
    ev: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": f"npu ({cfg.name})"}}
    ]
    for q, name in enumerate(QUEUE_NAMES):
        ev.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": q, "args": {"name": name}})
        ev.append(
            {"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": q, "args": {"sort_index": q}}
        )
    return ev
