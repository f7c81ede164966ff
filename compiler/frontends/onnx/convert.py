"""Op-by-op conversion of ONNX nodes with run-time inputs to nn ops. Ops with no nn equivalent become
`Pending` (a raising pattern may still consume them); unsupported forms of supported ops are errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from compiler.errors import WispError
from compiler.frontends.onnx.fold import reshape_target
from compiler.frontends.onnx.state import Const, Env, Pending, Run, Value, drop_axis
from dialects import nn

Converter = Callable[[Env, Any, list[Value | None], dict[str, Any]], list[Value]]

# Ops that exist only inside patterns the importer raises (layer norm, GELU, masks): alone they have
# no nn equivalent, so they stay pending until a pattern consumes them.
PATTERN_ONLY = {
    "Erf": "part of GELU",
    "Pow": "part of layer norm or tanh-GELU",
    "Sqrt": "part of layer norm",
    "ReduceMean": "part of layer norm",
    "Where": "part of a causal attention mask",
    "Cast": "an integer/float cast (part of an attention mask)",
    "Equal": "part of an attention mask",
    "Expand": "a broadcast",
    "Reciprocal": "part of layer norm",
    "Neg": "part of a mask",
    "Not": "part of a mask",
}


# Inputs an op cannot do without (ONNX names), checked by `check_inputs` before folding, raising
# patterns or conversion, so a malformed node is one error naming it, not a failure inside a matcher.
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "Add": ("A", "B"),
    "Sub": ("A", "B"),
    "Mul": ("A", "B"),
    "Div": ("A", "B"),
    "MatMul": ("A", "B"),
    "Gemm": ("A", "B"),
    "Slice": ("data", "starts", "ends"),
    "Identity": ("input",),
    "Dropout": ("data",),
}


def _missing(env: Env, node: Any, i: int, role: str) -> WispError:
    return env.error(node, f"required input #{i} ({role}) is missing")


def check_inputs(env: Env, node: Any, ins: list[Value | None]) -> None:
    """Raise the importer's error for a node without an input its op requires (absent, or given as
    the empty name that marks an omitted optional input)."""
    if node.domain not in ("", "ai.onnx"):
        return
    for i, role in enumerate(REQUIRED_INPUTS.get(node.op_type, ())):
        if i >= len(ins) or ins[i] is None:
            raise _missing(env, node, i, role)
    if node.op_type == "Concat":
        if not ins:
            raise env.error(node, "Concat has no inputs")
        for i, v in enumerate(ins):
            if v is None:
                raise env.error(node, f"input #{i} is empty (Concat inputs are not optional)")


def _given(env: Env, node: Any, ins: list[Value | None], i: int, role: str) -> Value:
    """Input `i`, which the op requires."""
    v = ins[i] if i < len(ins) else None
    if v is None:
        raise _missing(env, node, i, role)
    return v


def _first_run(ins: list[Value | None]) -> Run:
    for v in ins:
        if isinstance(v, Run):
            return v
    raise AssertionError("no run-time input")


def _binary(op_cls: type[nn.NNOp]) -> Converter:
    def conv(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
        like = max((v for v in ins if isinstance(v, Run)), key=lambda r: len(r.shape))
        role = f"{node.op_type.lower()}_const"
        a = env.operand(_given(env, node, ins, 0, "A"), like, node, role)
        b = env.operand(_given(env, node, ins, 1, "B"), like, node, role)
        return [env.wrap(env.emit(op_cls, [a, b]), like.batch)]

    return conv


def _matmul(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    a, b = ins[0], ins[1]
    if isinstance(a, Run) and isinstance(b, Const):
        if b.array.ndim != 2:
            raise env.error(
                node, f"MatMul with a constant of rank {b.array.ndim}; expected [in, out]"
            )
        w = env.weight(b.array.T, b.origin, node, "weight")
        return [env.wrap(env.emit(nn.LinearOp, [a.ssa, w]), a.batch)]
    if isinstance(a, Run) and isinstance(b, Run):
        if len(a.shape) != len(b.shape) or a.batch != b.batch or a.shape[:-2] != b.shape[:-2]:
            raise env.error(
                node, f"MatMul of {list(a.shape)} by {list(b.shape)}: batch dims must be equal"
            )
        return [env.wrap(env.emit(nn.MatmulOp, [a.ssa, b.ssa], transpose_b=False), a.batch)]
    raise env.error(node, "MatMul of a constant by a run-time value is not supported")


def _gemm(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    if not isinstance(a, Run) or not isinstance(b, Const) or at.get("transA", 0):
        raise env.error(node, "Gemm needs a run-time A (not transposed) and a constant B")
    w = b.array if at.get("transB", 0) else b.array.T
    w = w * np.float32(at.get("alpha", 1.0))
    origin = b.origin if at.get("alpha", 1.0) == 1.0 else None  # stored [out, in] either way
    ops = [a.ssa, env.weight(w, origin, node, "weight")]
    if isinstance(c, Const):
        bias = np.broadcast_to(c.array * np.float32(at.get("beta", 1.0)), (w.shape[0],))
        ops.append(env.weight(bias, c.origin if at.get("beta", 1.0) == 1.0 else None, node, "bias"))
    elif c is not None:
        raise env.error(node, "Gemm with a run-time C is not supported")
    return [env.wrap(env.emit(nn.LinearOp, ops), a.batch)]


def _batch_after_reshape(src: Run, out: tuple[int, ...]) -> int | None:
    before = math.prod(src.shape[: src.batch])
    acc = 1
    for j, d in enumerate(out):
        if acc == before and d == 1:
            return j
        acc *= d
    return None


def _reshape_to(env: Env, node: Any, x: Run, out: tuple[int, ...]) -> Run:
    if math.prod(out) != math.prod(x.shape):
        raise env.error(node, f"cannot reshape {list(x.shape)} to {list(out)}")
    batch = _batch_after_reshape(x, out)
    if batch is None:
        raise env.error(
            node, f"reshape {list(x.shape)} → {list(out)} mixes the batch axis with other dims"
        )
    return env.reshape(x, out, batch)


def _reshape(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x, shape = ins[0], ins[1]
    if not isinstance(shape, Const):
        raise env.error(
            node, "Reshape target shape is not static; fix the input shapes with --input-shape"
        )
    assert isinstance(x, Run)
    out = reshape_target(shape.array, x.shape, int(at.get("allowzero", 0)))
    if (
        x.batch == 0
        and len(x.shape) > 1
        and x.shape[0] == 1
        and _batch_after_reshape(x, out) is None
    ):
        # drops the batch axis (dynamo's SDPA writes Kᵀ through a batch-free view, HF Conv1D flattens
        # around addmm): no nn value without a batch; a raising pattern may consume it
        # (raise_attention._batch_free_kt, raise_linear.try_flat_linear)
        return [
            Pending(
                env.describe(node),
                f"reshape {list(x.shape)} → {list(out)} mixes the batch axis with other dims and is"
                " not part of a pattern the importer raises",
            )
        ]
    return [_reshape_to(env, node, x, out)]


def _flatten(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    axis = int(at.get("axis", 1)) % (len(x.shape) + 1)
    out = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return [_reshape_to(env, node, x, out)]


def _axes_arg(ins: list[Value | None], at: dict[str, Any]) -> list[int] | None:
    if len(ins) > 1 and isinstance(ins[1], Const):
        return [int(a) for a in ins[1].array.reshape(-1)]
    return [int(a) for a in at["axes"]] if "axes" in at else None


def _unsqueeze(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    axes = _axes_arg(ins, at) or []
    rank = len(x.shape) + len(axes)
    out = list(x.shape)
    batch = x.batch
    for ax in sorted(a % rank for a in axes):
        out.insert(ax, 1)
        if ax <= batch:
            batch += 1
    return [env.reshape(x, tuple(out), batch)]


def _squeeze(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    axes = _axes_arg(ins, at)
    drop = (
        {a % len(x.shape) for a in axes}
        if axes is not None
        else {i for i, d in enumerate(x.shape) if d == 1 and i != x.batch}
    )
    if x.batch in drop:
        raise env.error(node, "Squeeze removes the batch axis")
    out = tuple(d for i, d in enumerate(x.shape) if i not in drop)
    batch = x.batch - sum(1 for a in drop if a < x.batch)
    return [env.reshape(x, out, batch)]


def _transpose(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    perm = [int(p) for p in at.get("perm", reversed(range(len(x.shape))))]
    batch = perm.index(x.batch)
    nn_perm = [x.nn_axis(p) for p in perm if p != x.batch]
    out = tuple(x.shape[p] for p in perm)
    if nn_perm == sorted(nn_perm):
        return [env.reshape(x, out, batch)]
    return [Run(env.emit(nn.TransposeOp, [x.ssa], perm=tuple(nn_perm)), out, batch)]


def _softmax(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    default = -1 if env.graph.opset >= 13 else 1
    axis = int(at.get("axis", default)) % len(x.shape)
    if axis == x.batch:
        raise env.error(node, "Softmax over the batch axis")
    return [Run(env.emit(nn.SoftmaxOp, [x.ssa], axis=x.nn_axis(axis)), x.shape, x.batch)]


def _unary(op_cls: type[nn.NNOp], **props: Any) -> Converter:
    def conv(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
        x = ins[0]
        assert isinstance(x, Run)
        return [Run(env.emit(op_cls, [x.ssa], **props), x.shape, x.batch)]

    return conv


def _gelu(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    approx = str(at.get("approximate", "none"))
    return [Run(env.emit(nn.GeluOp, [x.ssa], approximate=approx), x.shape, x.batch)]


def _identity(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    return [_given(env, node, ins, 0, "input")]


def _layer_norm(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x, g = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    assert isinstance(x, Run)
    if int(at.get("axis", -1)) % len(x.shape) != len(x.shape) - 1:
        raise env.error(node, "LayerNormalization over more than the last axis is not supported")
    if not isinstance(g, Const) or (b is not None and not isinstance(b, Const)):
        raise env.error(node, "LayerNormalization needs constant scale and bias")
    d = x.shape[-1]
    gamma = env.weight(np.broadcast_to(g.array, (d,)), g.origin, node, "weight")
    beta_arr = b.array if isinstance(b, Const) else np.zeros(d, np.float32)
    beta = env.weight(
        np.broadcast_to(beta_arr, (d,)), b.origin if isinstance(b, Const) else None, node, "bias"
    )
    eps = float(str(np.float32(at.get("epsilon", 1e-5))))
    return [Run(env.emit(nn.LayerNormOp, [x.ssa, gamma, beta], eps=eps), x.shape, x.batch)]


def _gather(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    data, idx = ins[0], ins[1]
    axis = int(at.get("axis", 0))
    if isinstance(data, Const) and isinstance(idx, Run):
        if axis != 0:
            raise env.error(node, "Gather from a constant along an axis other than 0")
        table = env.weight(data.array, data.origin, node, "weight")
        out = idx.shape + data.array.shape[1:]
        return [Run(env.emit(nn.GatherOp, [table, idx.ssa]), out, idx.batch)]
    if isinstance(data, Run) and isinstance(idx, Const):
        axis %= len(data.shape)
        i = idx.array.astype(np.int64)
        if axis == data.batch or i.ndim > 1 or (i.ndim == 1 and i.size != 1):
            raise env.error(node, "Gather of run-time data supports one index on a non-batch axis")
        k = int(i.reshape(-1)[0]) % data.shape[axis]
        sliced = _slice_run(env, data, {axis: (k, k + 1)})
        out = data.shape[:axis] + ((1,) if i.ndim == 1 else ()) + data.shape[axis + 1 :]
        batch = data.batch if data.batch < axis or i.ndim == 1 else data.batch - 1
        return [env.reshape(sliced, out, batch)]
    raise env.error(node, "Gather with run-time indices into run-time data is not supported")


def _slice_run(env: Env, x: Run, ranges: dict[int, tuple[int, int]]) -> Run:
    offsets, sizes = [], []
    out = list(x.shape)
    for ax, size in enumerate(x.shape):
        lo, hi = ranges.get(ax, (0, size))
        out[ax] = hi - lo
        if ax != x.batch:
            offsets.append(lo)
            sizes.append(hi - lo)
    if tuple(sizes) == drop_axis(x.shape, x.batch):
        return x
    ssa = env.emit(nn.SliceOp, [x.ssa], sizes, offsets=tuple(offsets))
    return Run(ssa, tuple(out), x.batch)


def _slice(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = _given(env, node, ins, 0, "data")
    if not all(isinstance(v, Const) for v in ins[1:] if v is not None):
        raise env.error(node, "Slice bounds are not static")
    assert isinstance(x, Run)  # a constant x with constant bounds was folded

    def bound(i: int) -> np.ndarray | None:
        v = ins[i] if i < len(ins) else None
        return v.array.reshape(-1) if isinstance(v, Const) else None

    starts, ends = bound(1), bound(2)
    if starts is None:
        raise _missing(env, node, 1, "starts")
    if ends is None:
        raise _missing(env, node, 2, "ends")
    axes_arr, steps_arr = bound(3), bound(4)
    axes = axes_arr if axes_arr is not None else range(len(starts))
    steps = steps_arr if steps_arr is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise env.error(
            node,
            f"Slice starts, ends, axes and steps differ in length"
            f" ({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})",
        )
    ranges: dict[int, tuple[int, int]] = {}
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        ax = int(ax) % len(x.shape)
        lo, hi, step = slice(
            int(max(min(s, 2**62), -(2**62))), int(max(min(e, 2**62), -(2**62))), int(st)
        ).indices(x.shape[ax])
        if step != 1:
            raise env.error(node, f"Slice with step {step} is not supported")
        if ax == x.batch and (lo, hi) != (0, 1):
            raise env.error(node, "Slice of the batch axis")
        ranges[ax] = (lo, max(hi, lo))
    return [_slice_run(env, x, ranges)]


def _split(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = ins[0]
    assert isinstance(x, Run)
    axis = int(at.get("axis", 0)) % len(x.shape)
    if axis == x.batch:
        raise env.error(node, "Split along the batch axis")
    n = len(node.output)
    if len(ins) > 1 and isinstance(ins[1], Const):
        sizes = [int(s) for s in ins[1].array]
    elif "split" in at:
        sizes = [int(s) for s in at["split"]]
    else:
        step = -(-x.shape[axis] // n)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(n)]
    outs: list[Value] = []
    lo = 0
    for s in sizes:
        outs.append(_slice_run(env, x, {axis: (lo, lo + s)}))
        lo += s
    return outs


def _concat(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    like = _first_run(ins)
    axis = int(at["axis"]) % len(like.shape)
    if axis == like.batch:
        raise env.error(node, "Concat along the batch axis")
    parts = [
        env.operand(_given(env, node, ins, i, f"input {i}"), like, node, "concat_const")
        for i in range(len(ins))
    ]
    ssa = env.emit(nn.ConcatOp, parts, axis=like.nn_axis(axis))
    return [env.wrap(ssa, like.batch)]


def _conv(env: Env, node: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    """A patch embedding: kernel = stride, no padding, one group → nn.patch_embed, reshaped back to
    the conv's [1, D, H/p, W/p] layout (the raising pattern skips the reshape when a flatten follows)."""
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    if not isinstance(x, Run) or not isinstance(w, Const) or len(x.shape) != 4 or x.batch != 0:
        raise env.error(node, "Conv is supported as a patch embedding of a [1, C, H, W] image")
    d, c, kh, kw = w.array.shape
    strides = list(at.get("strides", [1, 1]))
    pads = list(at.get("pads", [0, 0, 0, 0]))
    if kh != kw or strides != [kh, kw] or any(pads) or at.get("group", 1) != 1:
        raise env.error(
            node,
            "Conv is supported only as a patch embedding (kernel = stride, no padding, 1 group)",
        )
    if list(at.get("dilations", [1, 1])) != [1, 1] or at.get("auto_pad", b"NOTSET") not in (
        b"NOTSET",
        "NOTSET",
    ):
        raise env.error(node, "Conv with dilation or auto_pad is not supported")
    weight = env.weight(w.array.reshape(d, c * kh * kw), w.origin, node, "weight")
    bias_arr = b.array if isinstance(b, Const) else np.zeros(d, np.float32)
    bias = env.weight(bias_arr, b.origin if isinstance(b, Const) else None, node, "bias")
    tokens = env.emit(nn.PatchEmbedOp, [x.ssa, weight, bias], patch=kh)
    _, _, h, wd = x.shape
    t = env.emit(nn.TransposeOp, [tokens], perm=(1, 0))
    out = (1, d, h // kh, wd // kw)
    return [env.reshape(Run(t, (1, d, (h // kh) * (wd // kw)), 0), out, 0)]


CONVERTERS: dict[str, Converter] = {
    "Add": _binary(nn.AddOp),
    "Sub": _binary(nn.SubOp),
    "Mul": _binary(nn.MulOp),
    "Div": _binary(nn.DivOp),
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Transpose": _transpose,
    "Softmax": _softmax,
    "Relu": _unary(nn.ReluOp),
    "Tanh": _unary(nn.TanhOp),
    "Gelu": _gelu,
    "Identity": _identity,
    "Dropout": _identity,
    "LayerNormalization": _layer_norm,
    "Gather": _gather,
    "Slice": _slice,
    "Split": _split,
    "Concat": _concat,
    "Conv": _conv,
}


def convert(env: Env, node: Any, ins: list[Value | None], attrs: dict[str, Any]) -> list[Value]:
    """nn values for a node with at least one run-time input."""
    if node.op_type == "Cast" and isinstance(ins[0], Run):
        from onnx.helper import tensor_dtype_to_np_dtype

        to = np.dtype(tensor_dtype_to_np_dtype(int(attrs["to"])))
        if to.kind == "f":
            from dialects.nn_base import element_of
            from dialects.types import numpy_dtype

            if numpy_dtype(element_of(ins[0].ssa.type)).kind == "f":
                return [ins[0]]  # float → float: wisp computes in one float precision
    fn = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if fn is not None:
        return fn(env, node, ins, attrs)
    if node.op_type in PATTERN_ONLY and node.domain in ("", "ai.onnx"):
        why = PATTERN_ONLY[node.op_type]
        pending = Pending(
            env.describe(node),
            f"{node.op_type} ({why}) has no nn equivalent and is not part of a pattern the importer"
            " raises; see docs/onnx.md",
        )
        return [pending for _ in node.output]
    domain = f" in domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""
    raise env.error(
        node,
        f"unsupported op {node.op_type}{domain}; add a converter in"
        " compiler/frontends/onnx/convert.py (see docs/onnx.md)",
    )
