"""Apply a depgraph removal plan to an nn module and its weights, and refit the layers that lost inputs.

`rewrite(module, weights, removal)` stores new (sliced) arrays in the weight store, retypes every
nn.weight result and activation the plan shrinks, updates nn.attention heads / qk_dim / v_dim (scale is
kept: it is the trained model's constant), nn.slice offsets and nn.reshape result shapes.

`refit(...)` re-solves, by masked least squares (passes.refit), each nn.linear whose input columns were
removed so that its output on calibration data matches the unpruned layer's output (restricted to the
output channels that remain), one layer at a time in IR order on the pruned model's own activations.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from dialects import nn
from dialects.nn_base import element_of, shape_of, tensor, to_attr
from passes.context import Calibration, values_many
from passes.depgraph_plan import Removal
from passes.refit import refit_linear


def _retype(value: SSAValue, shape: tuple[int, ...]) -> None:
    if shape != shape_of(value.type):
        value._type = tensor(shape, element_of(value.type))  # noqa: SLF001 (in-place retype keeps uses)


def rewrite(module: ModuleOp, weights: MutableMapping[str, np.ndarray], removal: Removal) -> None:
    """Shrink weights, activations and attention attributes as `removal` says (see module docstring)."""
    for symbol, arr in removal.slice_weights(weights).items():
        weights[symbol] = arr  # a new array: the old one is not modified
    for op in list(module.walk()):
        if isinstance(op, nn.SliceOp) and op.input in removal.values:
            op.properties["offsets"] = to_attr(removal.new_offsets(op))
        if isinstance(op, nn.AttentionOp) and op in removal.attention:
            for key, value in removal.attention[op].items():
                op.properties[key] = to_attr(int(value))
        for result in op.results:
            _retype(result, removal.new_shape(result))


def refit_targets(module: ModuleOp, removal: Removal) -> list[nn.LinearOp]:
    """The nn.linear ops whose weight loses input columns (axis 1), in IR order."""
    out = []
    for op in module.walk():
        if isinstance(op, nn.LinearOp) and isinstance(op.weight.owner, nn.WeightOp):
            if 1 in removal.weights.get(op.weight.owner.symbol, {}):
                out.append(op)
    return out


def _stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays]).astype(np.float64)


def dense_outputs(
    module: ModuleOp,
    weights: MutableMapping[str, np.ndarray],
    calib: Calibration,
    ops: Sequence[Operation],
    samples: int,
) -> dict[Operation, np.ndarray]:
    """Each op's output rows [n, out] on the calibration samples, before pruning."""
    outs: dict[Operation, list[np.ndarray]] = {op: [] for op in ops}
    for values in values_many(calib, module, weights, calib.inputs[:samples]):
        for op in ops:
            outs[op].append(values[op.results[0]])
    return {op: _stack(v) for op, v in outs.items()}


def refit(
    module: ModuleOp,
    weights: MutableMapping[str, np.ndarray],
    calib: Calibration,
    ops: Sequence[nn.LinearOp],
    targets: dict[Operation, np.ndarray],
    removal: Removal,
    samples: int,
) -> None:
    """Refit each op in order on the pruned model's inputs (sequential, see module docstring)."""
    for op in ops:
        xs = [v[op.input] for v in values_many(calib, module, weights, calib.inputs[:samples])]
        x = _stack(xs)
        gone = removal.values.get(op.results[0], {}).get((len(shape_of(op.results[0].type)) - 1,))
        target = targets[op]
        if gone is not None:
            target = np.delete(target, gone, axis=1)
        w_op = op.weight.owner
        assert isinstance(w_op, nn.WeightOp)
        if op.bias is not None:
            x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        mask = np.ones((target.shape[1], x.shape[1]), dtype=bool)
        fitted = refit_linear(x, target, mask)
        w_sym = w_op.symbol
        weights[w_sym] = fitted[:, : shape_of(op.weight.type)[1]].astype(weights[w_sym].dtype)
        if op.bias is not None:
            b_op = op.bias.owner
            assert isinstance(b_op, nn.WeightOp)
            weights[b_op.symbol] = fitted[:, -1].astype(weights[b_op.symbol].dtype)
