"""The reference executor over a batch of inputs (accuracy of search candidates, many images).

    logits = run_batch_fast(model, {"image": images})["out0"]     # [B, *out0's shape]

The same semantics as `reference.run` on each input: ops whose numpy implementation works on a
leading batch dim unchanged (elementwise, last-axis, a linear's x·wᵀ) run once on the whole
batch; nn.attention without a mask or causality runs batched with the same per-head operations;
every other op runs its `reference` implementation once per input and the results are stacked.
numpy evaluates a stacked matmul as one matrix product per 2-D slice and reductions per row, so
the results are the per-input results (tested bit for bit against `reference.run`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Operation, SSAValue

from compiler import reference
from compiler.errors import WispError
from compiler.model import Model
from dialects import nn, quant
from dialects.nn_base import element_of, shape_of
from dialects.types import numpy_dtype

Array = np.ndarray

# ops whose reference implementation is unchanged on a leading batch dim of their batched operands
_AS_IS: tuple[type[Operation], ...] = (
    nn.AddOp,
    nn.SubOp,
    nn.MulOp,
    nn.DivOp,
    nn.LayerNormOp,
    nn.GeluOp,
    nn.TanhOp,
    nn.ReluOp,
    quant.QuantizeOp,
    quant.RequantizeOp,
)


def _batchable(op: Operation, batched: list[bool]) -> bool:
    if isinstance(op, _AS_IS):
        return True
    if isinstance(op, nn.LinearOp | quant.LinearOp):  # only x batched; groups stack on axis 0
        ok = not any(batched[1:])
        return ok and (not isinstance(op, quant.LinearOp) or op.int_prop("groups") == 1)
    if isinstance(op, quant.DequantizeOp):  # per-tensor or per-column scales, not grouped
        return not batched[1] and len(shape_of(op.scale.type)) == 1
    return False


def _attention(op: nn.AttentionOp, a: list[Array], dtype: np.dtype) -> Array:
    """nn.attention (no mask, not causal) on [B, S, H·d] with reference.attention's operations."""
    q, k, v = a
    b, sq, sk = q.shape[0], q.shape[1], k.shape[1]
    heads = op.int_prop("heads")
    qh = q.reshape(b, sq, heads, -1).transpose(0, 2, 1, 3)
    kh = k.reshape(b, sk, heads, -1).transpose(0, 2, 1, 3)
    vh = v.reshape(b, sk, heads, -1).transpose(0, 2, 1, 3)
    s = (qh @ kh.transpose(0, 1, 3, 2)) * np.asarray(op.float_prop("scale"), q.dtype)
    p = reference.softmax(s)
    return (p @ vh).transpose(0, 2, 1, 3).reshape(b, sq, -1)


def run_batch_fast(
    model: Model, batch: Mapping[str, Array], *, dtype: type | np.dtype = np.float32
) -> dict[str, Array]:
    """Run @main on every input of `batch` (a leading batch dim on each named input); outputs
    out0, out1, … stacked along a leading batch dim."""
    out, _, _ = run_batch_values(model, batch, dtype=dtype)
    return out


def values_per_input(
    model: Model, inputs: list[Mapping[str, Array]], *, dtype: type | np.dtype = np.float32
) -> list[dict[SSAValue, Array]]:
    """Every SSA value's array for each input (as `reference.run(..., values=)` gives it)."""
    if not inputs:
        return []
    batch = {k: np.stack([np.asarray(x[k]) for x in inputs]) for k in inputs[0]}
    _, env, batched = run_batch_values(model, batch, dtype=dtype)
    return [{v: a[i] if batched[v] else a for v, a in env.items()} for i in range(len(inputs))]


def run_batch_values(
    model: Model, batch: Mapping[str, Array], *, dtype: type | np.dtype = np.float32
) -> tuple[dict[str, Array], dict[SSAValue, Array], dict[SSAValue, bool]]:
    """The stacked outputs, every SSA value's array and whether it has the leading batch dim."""
    dt = np.dtype(dtype)
    func = model.main
    n = len(next(iter(batch.values())))
    env: dict[SSAValue, Array] = {}
    batched: dict[SSAValue, bool] = {}
    for (name, (shape, in_dtype)), arg in zip(
        model.input_specs().items(), func.body.block.args, strict=True
    ):
        if name not in batch:
            raise WispError(
                f"missing input '{name}' (the model takes {', '.join(model.input_specs())})"
            )
        x = np.asarray(batch[name])
        if tuple(x.shape[1:]) != shape or len(x) != n:
            raise WispError(
                f"input '{name}' has shape {list(x.shape)}, expected [{n}, {', '.join(map(str, shape))}]"
            )
        env[arg] = x.astype(dt) if in_dtype.kind == "f" else x.astype(in_dtype)
        batched[arg] = True
    ctx = reference.Context(model.weights, dt)
    for op in func.body.block.ops:
        if isinstance(op, ReturnOp):
            out = {
                f"out{i}": env[v] if batched[v] else np.broadcast_to(env[v], (n, *env[v].shape))
                for i, v in enumerate(op.operands)
            }
            return out, env, batched
        impl = reference.IMPLS.get(type(op))
        if impl is None:
            raise WispError(f"reference executor: no implementation for {op.name}")
        args = [env[o] for o in op.operands]
        flags = [batched[o] for o in op.operands]
        want = shape_of(op.results[0].type)
        if not any(flags):
            result, is_b = impl(op, args, ctx), False
        elif _batchable(op, flags):
            result, is_b = impl(op, args, ctx), True
        elif (
            isinstance(op, nn.AttentionOp)
            and op.mask is None
            and not op.bool_prop("causal")
            and all(flags)
        ):
            result, is_b = _attention(op, args, dt), True
        else:  # one input at a time (a fresh context: reference's caches key on array ids)
            result = np.stack(
                [
                    impl(
                        op,
                        [x[i] if f else x for x, f in zip(args, flags, strict=True)],
                        reference.Context(model.weights, dt),
                    )
                    for i in range(n)
                ]
            )
            is_b = True
        if tuple(result.shape[1:] if is_b else result.shape) != want:
            raise WispError(
                f"reference executor: {op.name} produced {list(result.shape)}, IR says {list(want)}"
            )
        if result.dtype.kind == "f":
            result = result.astype(dt, copy=False)
        else:
            result = result.astype(numpy_dtype(element_of(op.results[0].type)), copy=False)
        env[op.results[0]] = result
        batched[op.results[0]] = is_b
    raise WispError("reference executor: @main has no func.return")
