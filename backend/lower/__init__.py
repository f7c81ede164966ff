"""Lowering nn → npu instructions, table-driven: `RULES` maps each nn op class to its rule.

`lower_module(module, weights, config)` walks `@main` in order, gives every op a layer tag
(`tags.layer_tags`), runs its rule (which emits instructions through `LowerCtx`) and lays out the
DRAM image: the data section (weights in the layouts their consumers asked for) at address 0,
then inputs, activations and outputs. See docs/lowering.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from xdsl.dialects.builtin import IntegerType, ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import SSAValue

from backend.config import Config
from backend.errors import BackendError
from backend.isa import DType
from backend.lower import (  # noqa: F401  (register rules)
    rules_data,
    rules_dense,
    rules_heads,
    rules_kv_keep,
    rules_progressive,
    rules_progressive_kv,
    rules_qattention,
    rules_quant,
    rules_tokens,
    rules_vector,
)
from backend.lower.context import ACT_BASE, LowerCtx, Lowered
from backend.lower.env import Env
from backend.lower.fuse import plan_fusion, plan_ln_prologue, plan_merge
from backend.lower.fuse_quant import plan_quant
from backend.lower.registry import RULES
from backend.lower.resident import ResidentLayout, in_resident, resident_arg  # + nn.scatter
from backend.lower.rules_data import copy, plan_concat_dest
from backend.lower.tags import layer_tags
from backend.lower.values import DTensor
from backend.program import Symbol
from dialects import nn
from dialects.nn_base import element_of, shape_of

__all__ = ["RULES", "Lowered", "lower_module"]


def _main(module: ModuleOp) -> FuncOp:
    for op in module.ops:
        if isinstance(op, FuncOp) and op.sym_name.data == "main":
            return op
    raise BackendError("the module has no func.func @main")


def _appended_input(arg: SSAValue) -> nn.ConcatOp | None:
    """The row concat that appends to this input (a decode step's KV cache, `concat(cache, new)`),
    when that is the input's only use: the input is then placed at the start of the concat's
    result and only the appended rows are written (docs/generation.md)."""
    uses = list(arg.uses)
    if len(uses) != 1 or uses[0].index != 0:
        return None
    op = uses[0].operation
    if not isinstance(op, nn.ConcatOp) or len(shape_of(arg.type)) != 2:
        return None
    return op if op.int_prop("axis") % 2 == 0 else None


def lower_module(
    module: ModuleOp,
    weights: Mapping[str, np.ndarray],
    config: Config,
    resident: ResidentLayout | None = None,
) -> Lowered:
    """Lower ``@main`` of an nn module to instructions (program order, no tokens yet); the
    arguments ``resident`` names live in its fixed DRAM regions (backend/lower/resident.py)."""
    func = _main(module)
    ctx = LowerCtx(config, weights, resident)
    env = Env(ctx)
    input_names: list[str] = []
    for i, arg in enumerate(func.body.block.args):
        name = arg.name_hint or f"arg{i}"
        shape = tuple(shape_of(arg.type))
        elem = element_of(arg.type)
        dt = DType.FP16
        if isinstance(elem, IntegerType):  # token ids i32; quantized inputs i8 (i4 one per byte)
            dt = DType.INT8 if elem.width.data <= 8 else DType.INT32
        planes = (
            rules_progressive_kv.plane_region(ctx, arg, name) if elem == IntegerType(4) else None
        )
        if planes is not None:  # a KV cache's K plane: packed int4, room for the new rows
            ctx.planes[arg] = env[arg] = planes
            if len(planes.shape) == 3:  # in its resident region (head-major view): not an input
                continue
            ctx.symbols[name] = Symbol(name, planes.addr, shape, DType.INT4, "input")
            input_names.append(name)
            continue
        kept = resident_arg(ctx, name, shape, dt)
        if kept is not None:  # in a region kept across the session's runs: not a host input
            env[arg] = kept
            continue
        append = _appended_input(arg) if dt is DType.FP16 else None
        if append is not None:  # a KV cache: the input region has room for the concat's rows
            room = ctx.activation(tuple(shape_of(append.results[0].type)), dt)
            ctx.concat_out[append] = room
            t = DTensor.contiguous(room.addr, shape, dt)
        else:
            t = ctx.activation(shape, dt)
        ctx.symbols[name] = Symbol(name, t.addr, shape, dt, "input")
        env[arg] = t
        input_names.append(name)
    ops = list(func.body.block.ops)
    tags = layer_tags(ops)
    plan_fusion(ctx, ops)
    plan_merge(ctx, ops)
    plan_ln_prologue(ctx, ops)
    plan_quant(ctx, ops)
    plan_concat_dest(ctx, ops)
    ret: ReturnOp | None = None
    for n, op in enumerate(ops):
        if isinstance(op, ReturnOp):
            ret = op
            break
        if op in ctx.fused_away:
            env[op.results[0]] = env.raw(op.operands[ctx.fused_away[op]])
            continue
        rule = RULES.get(type(op))
        if rule is None:
            raise BackendError(
                f"{op.name}: no lowering rule (backend/lower has rules for "
                f"{', '.join(sorted(str(getattr(c, 'name', c.__name__)) for c in RULES))})"
            )
        ctx.begin_op(tags[n], f"{op.name}#{n}")
        env[op.results[0]] = rule(ctx, op, env)
    output_names: list[str] = []
    if ret is not None:
        for i, v in enumerate(ret.operands):
            name = f"out{i}"
            shape = tuple(shape_of(v.type))
            ctx.begin_op("head", f"output {name}")
            t = env.tensor(v)
            if not (t.is_contiguous and (t.addr >= ACT_BASE or in_resident(ctx, t))):
                # a byte copy: an fp32 output (e.g. kv-prune's scores) stays fp32
                dst = ctx.activation(shape, t.dtype)
                copy(ctx, t, dst, name)
                t = dst
            ctx.symbols[name] = Symbol(name, t.addr, shape, t.dtype, "output")
            output_names.append(name)
    instrs, data_end, dram_size = ctx.finish()
    return Lowered(
        instrs=instrs,
        layer_of=ctx.layer_of,
        data=bytes(ctx.data),
        dram_size=dram_size,
        symbols=ctx.symbols,
        input_names=input_names,
        output_names=output_names,
        data_end=data_end,
        data_dtypes=ctx.data_dtypes(),
    )
