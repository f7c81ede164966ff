"""Constant folding: numpy semantics of the ONNX ops that compute shapes and constants (`Shape`,
`Gather`, `Concat`, `Unsqueeze`, `Range`, `Where`, ...). A node whose inputs are all constants is
evaluated here at import time, so static reshapes and masks become plain arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

Attrs = dict[str, Any]
Fold = Callable[[list[np.ndarray], Attrs, int], list[np.ndarray]]


def _axes(args: list[np.ndarray], attrs: Attrs, index: int) -> list[int] | None:
    if len(args) > index and args[index] is not None and args[index].size:
        return [int(a) for a in args[index].reshape(-1)]
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return None


def _unsqueeze(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    axes = _axes(a, at, 1) or []
    rank = a[0].ndim + len(axes)
    out = a[0]
    for ax in sorted(x % rank for x in axes):
        out = np.expand_dims(out, ax)
    return [out]


def _squeeze(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    axes = _axes(a, at, 1)
    if axes is None:
        return [np.squeeze(a[0])]
    return [np.squeeze(a[0], axis=tuple(x % a[0].ndim for x in axes))]


def _slice(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    data, starts, ends = a[0], a[1].reshape(-1), a[2].reshape(-1)
    axes = a[3].reshape(-1) if len(a) > 3 and a[3] is not None else np.arange(len(starts))
    steps = a[4].reshape(-1) if len(a) > 4 and a[4] is not None else np.ones(len(starts), np.int64)
    index = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        size = data.shape[int(ax)]
        s, e = int(max(min(s, 2**62), -(2**62))), int(max(min(e, 2**62), -(2**62)))
        index[int(ax) % data.ndim] = slice(*slice(s, e, int(st)).indices(size))
    return [data[tuple(index)]]


def _reshape_target(
    shape: np.ndarray, in_shape: tuple[int, ...], allowzero: int = 0
) -> tuple[int, ...]:
    dims = [int(d) for d in shape.reshape(-1)]
    if not allowzero:
        dims = [in_shape[i] if d == 0 else d for i, d in enumerate(dims)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        total = int(np.prod(in_shape))
        dims[dims.index(-1)] = total // known if known else 0
    return tuple(dims)


def reshape_target(
    shape: np.ndarray, in_shape: tuple[int, ...], allowzero: int = 0
) -> tuple[int, ...]:
    """ONNX Reshape's output shape (0 copies the input dim, -1 is inferred)."""
    return _reshape_target(shape, in_shape, allowzero)


def _gather(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    axis = int(at.get("axis", 0))
    idx = a[1].astype(np.int64)
    idx = np.where(idx < 0, idx + a[0].shape[axis], idx)
    return [np.take(a[0], idx, axis=axis)]


def _shape(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    dims = np.array(a[0].shape, np.int64)
    start, end = at.get("start", 0), at.get("end", None)
    return [dims[start:end]]


def _split(a: list[np.ndarray], at: Attrs, opset: int, n_out: int) -> list[np.ndarray]:
    axis = int(at.get("axis", 0))
    if len(a) > 1 and a[1] is not None:
        sizes = [int(s) for s in a[1]]
    elif "split" in at:
        sizes = [int(s) for s in at["split"]]
    else:
        n = int(at.get("num_outputs", n_out))
        full = a[0].shape[axis]
        step = -(-full // n)
        sizes = [min(step, full - i * step) for i in range(n)]
    return list(np.split(a[0], np.cumsum(sizes)[:-1], axis=axis))


def _reduce(fn: Callable[..., np.ndarray]) -> Fold:
    def fold(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
        axes = _axes(a, at, 1)
        keep = bool(at.get("keepdims", 1))
        if axes is None and at.get("noop_with_empty_axes", 0):
            return [a[0]]
        return [fn(a[0], axis=None if axes is None else tuple(axes), keepdims=keep)]

    return fold


def _cast(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    from onnx.helper import tensor_dtype_to_np_dtype

    return [a[0].astype(tensor_dtype_to_np_dtype(int(at["to"])))]


def _constant(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    from onnx import numpy_helper

    if "value" in at:
        return [numpy_helper.to_array(at["value"])]
    for key, dt in (("value_float", np.float32), ("value_int", np.int64)):
        if key in at:
            return [np.array(at[key], dt)]
    for key, dt in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in at:
            return [np.array(list(at[key]), dt)]
    raise ValueError("Constant without a supported value attribute")


def _constant_of_shape(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    from onnx import numpy_helper

    value = numpy_helper.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
    return [np.full(tuple(int(d) for d in a[0]), value.reshape(-1)[0], value.dtype)]


def _trilu(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    k = int(a[1]) if len(a) > 1 and a[1] is not None else 0
    return [np.triu(a[0], k) if at.get("upper", 1) else np.tril(a[0], k)]


def _where(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    return [np.where(a[0], a[1], a[2])]


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Fold:
    return lambda a, at, opset: [np.asarray(fn(a[0], a[1])).astype(np.result_type(a[0], a[1]))]


def _div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        return np.trunc(x / y).astype(x.dtype)
    return x / y


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Fold:
    return lambda a, at, opset: [np.asarray(fn(a[0])).astype(a[0].dtype)]


def _arange_bound(x: np.ndarray) -> np.integer[Any] | np.floating[Any]:
    """A Range operand handed to np.arange as it is (a 0-d array, which arange reads as a scalar);
    converting with .item() would change float16/float32/unsigned results."""
    return cast("np.integer[Any] | np.floating[Any]", x)


def _range(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    return [
        np.arange(_arange_bound(a[0]), _arange_bound(a[1]), _arange_bound(a[2])).astype(a[0].dtype)
    ]


def _expand(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    shape = np.broadcast_shapes(a[0].shape, tuple(int(d) for d in a[1]))
    return [np.broadcast_to(a[0], shape).copy()]


def _reshape(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    return [a[0].reshape(_reshape_target(a[1], a[0].shape, int(at.get("allowzero", 0))))]


def _transpose(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    perm = at.get("perm")
    return [np.ascontiguousarray(np.transpose(a[0], None if perm is None else list(perm)))]


def _concat(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    return [np.concatenate(a, axis=int(at["axis"]))]


def _flatten(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    axis = int(at.get("axis", 1)) % (a[0].ndim + 1) if a[0].ndim else 0
    return [a[0].reshape(int(np.prod(a[0].shape[:axis])), -1)]


def _gather_nd(a: list[np.ndarray], at: Attrs, opset: int) -> list[np.ndarray]:
    data, idx = a[0], a[1].astype(np.int64)
    if int(at.get("batch_dims", 0)) != 0:
        raise ValueError("GatherND with batch_dims is not folded")
    k = idx.shape[-1]
    flat = idx.reshape(-1, k)
    return [data[tuple(flat.T)].reshape(idx.shape[:-1] + data.shape[k:])]


FOLDS: dict[str, Fold] = {
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Shape": _shape,
    "Size": lambda a, at, o: [np.array(a[0].size, np.int64)],
    "Identity": lambda a, at, o: [a[0]],
    "Dropout": lambda a, at, o: [a[0]],
    "Cast": _cast,
    "CastLike": lambda a, at, o: [a[0].astype(a[1].dtype)],
    "Gather": _gather,
    "GatherND": _gather_nd,
    "Concat": _concat,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Flatten": _flatten,
    "Expand": _expand,
    "Range": _range,
    "Where": _where,
    "Trilu": _trilu,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_div),
    "Pow": lambda a, at, o: [np.power(a[0], a[1]).astype(a[0].dtype)],
    "Mod": _binary(np.fmod),
    "Min": lambda a, at, o: [np.minimum.reduce(np.broadcast_arrays(*a))],
    "Max": lambda a, at, o: [np.maximum.reduce(np.broadcast_arrays(*a))],
    "Equal": lambda a, at, o: [np.equal(a[0], a[1])],
    "Less": lambda a, at, o: [np.less(a[0], a[1])],
    "LessOrEqual": lambda a, at, o: [np.less_equal(a[0], a[1])],
    "Greater": lambda a, at, o: [np.greater(a[0], a[1])],
    "GreaterOrEqual": lambda a, at, o: [np.greater_equal(a[0], a[1])],
    "Not": lambda a, at, o: [np.logical_not(a[0])],
    "And": lambda a, at, o: [np.logical_and(a[0], a[1])],
    "Or": lambda a, at, o: [np.logical_or(a[0], a[1])],
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal),
    "Floor": _unary(np.floor),
    "Ceil": _unary(np.ceil),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Tanh": _unary(np.tanh),
    "Relu": _unary(lambda x: np.maximum(x, 0)),
    "ReduceProd": _reduce(np.prod),
    "ReduceSum": _reduce(np.sum),
    "ReduceMean": _reduce(np.mean),
    "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min),
    "MatMul": lambda a, at, o: [np.matmul(a[0], a[1])],
}


def fold(
    op_type: str, args: list[np.ndarray | None], attrs: Attrs, opset: int, n_out: int
) -> list[np.ndarray] | None:
    """The node's outputs if it can be folded, else None. An omitted optional input is None: the
    folds that take optional inputs (`_axes`, `_slice`, `_split`, `_trilu`, ...) test for it."""
    arrays = cast("list[np.ndarray]", args)
    if op_type == "Split":
        return _split(arrays, attrs, opset, n_out)
    fn = FOLDS.get(op_type)
    return None if fn is None else fn(arrays, attrs, opset)
