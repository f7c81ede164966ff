"""Scheduling: dependency DAG from memory ranges, list scheduling, dependency tokens.

`schedule(instrs, config, readonly_end)` returns the instructions in their final order with
wait/signal masks set, ending with FINISH, plus the static estimate (`Estimate.to_dict`).
"""

from __future__ import annotations

from backend.config import Config
from backend.cost import cost
from backend.isa import Instr, make
from backend.schedule.deps import dependencies
from backend.schedule.listsched import Estimate, list_schedule
from backend.schedule.tokens import insert_tokens

__all__ = ["Estimate", "dependencies", "insert_tokens", "list_schedule", "schedule"]


def schedule(
    instrs: list[Instr], config: Config, readonly_end: int = 0, layer_of: list[str] | None = None
) -> tuple[list[Instr], Estimate, list[str]]:
    """(scheduled instructions ending in FINISH, estimate, layer tag per scheduled instruction)."""
    preds = dependencies(instrs, readonly_end)
    order, est = list_schedule(instrs, preds, config)
    out = insert_tokens(instrs, order, preds)
    tags = [layer_of[v] for v in order] if layer_of is not None else [""] * len(order)
    fin = make("FINISH")
    out.append(fin)
    tags.append("")
    # FINISH starts once every queue has drained and takes its own cycles, as in the interpreter
    c = cost(fin, config).cycles
    est.cycles += c
    est.busy[int(fin.cls.queue)] += c
    return out, est, tags
