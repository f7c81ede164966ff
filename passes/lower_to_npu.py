"""lower-to-npu: lower `@main` of an nn module to npu ops, one per instruction (program order).

    lower-to-npu{target=fact}

The backend's lowering (`backend.lower.lower_module`, the same code `wisp compile` runs) on the
module and its weights, for the NPU config `target`. The module's body is replaced by the npu ops
(custom syntax: `backend/npu_syntax.py`); the module keeps the config and the end of the read-only
data section as attributes (`npu.target`, `npu.data_end`), which `npu-schedule` reads. The weights'
DRAM image itself is not part of the IR: `wisp compile` writes it (program.data / .npubin).

    builtin.module attributes {npu.data_end = 284480 : i64, npu.target = "spatten"} {
      npu.load dtype=fp16, dst=vec[0x0], dst_stride=16, src_addr=0x45740, src_stride=64, rows=8, cols=16 {comment = "embed nn.patch_embed#2"}
      ...
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.passes import ModulePass

from backend.config import load_config
from backend.errors import BackendError
from passes.context import PassError, weights_of

TARGET_ATTR = "npu.target"
DATA_END_ATTR = "npu.data_end"


@dataclass(frozen=True)
class LowerToNpuPass(ModulePass):
    """Lower the nn module to npu ops for an NPU config (the backend's lowering, program order)."""

    name = "lower-to-npu"

    target: str = field(
        default="spatten",
        metadata={"help": "NPU config: spatten, fact, edge or a .toml file"},
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from backend.lower import lower_module
        from backend.npu_dialect import to_op

        if TARGET_ATTR in op.attributes:
            raise PassError("the module is already lowered to npu ops")
        weights = weights_of(ctx, self.name)
        try:
            config = load_config(self.target)
            low = lower_module(op, weights, config)
        except BackendError as e:
            raise PassError(f"target={self.target}: {e}") from None
        for old in list(op.ops):
            old.detach()
            old.erase(safe_erase=False)
        op.body.block.add_ops(to_op(i) for i in low.instrs)
        op.attributes[TARGET_ATTR] = StringAttr(self.target)
        op.attributes[DATA_END_ATTR] = IntegerAttr(low.data_end, i64)
