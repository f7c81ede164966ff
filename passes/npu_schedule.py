"""npu-schedule: list-schedule lowered npu ops over the NPU's queues and add dependency tokens.

    lower-to-npu{target=fact},npu-schedule

The backend's scheduler (`backend.schedule.schedule`, the same code `wisp compile` runs) on the
ops `lower-to-npu` produced: it reorders them, sets each op's `wait`/`signal` queue tokens and ends
the program with `npu.finish`. Its report gives the cycles the list scheduler estimates with the
static cost model (`wisp run`/`wisp eval` measure them on the interpreter).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr
from xdsl.passes import ModulePass

from backend.config import load_config
from backend.errors import BackendError
from passes.context import PassError, add_report
from passes.lower_to_npu import DATA_END_ATTR, TARGET_ATTR

SCHEDULED_ATTR = "npu.scheduled"


@dataclass(frozen=True)
class NpuSchedulePass(ModulePass):
    """Schedule lowered npu ops over the queues, insert dependency tokens, end with finish."""

    name = "npu-schedule"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from backend.npu_dialect import from_module, to_op
        from backend.schedule import schedule

        target, data_end = op.attributes.get(TARGET_ATTR), op.attributes.get(DATA_END_ATTR)
        if not isinstance(target, StringAttr) or not isinstance(data_end, IntegerAttr):
            raise PassError("the module is not lowered to npu ops: run lower-to-npu first")
        if SCHEDULED_ATTR in op.attributes:
            raise PassError("the module is already scheduled")
        try:
            config = load_config(target.data)
            instrs, est, _ = schedule(from_module(op), config, int(data_end.value.data))
        except BackendError as e:
            raise PassError(str(e)) from None
        for old in list(op.ops):
            old.detach()
            old.erase(safe_erase=False)
        op.body.block.add_ops(to_op(i) for i in instrs)
        op.attributes[SCHEDULED_ATTR] = StringAttr("list")
        add_report(
            ctx,
            self.name,
            {
                "notes": [
                    f"{len(instrs):,} instructions, {est.cycles:,} cycles (estimated: static cost"
                    f" model on {target.data}; wisp run/eval measure them on the interpreter)"
                ]
            },
        )
