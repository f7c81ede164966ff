"""Run-time key-padding masks in decomposed attention → the mask operand of `nn.attention`.

HF BERT's `attention_mask` [1, Sk] (1 = token, 0 = padding) reaches the scores as

- TorchScript, classic: `Mul(Sub(1, Cast(Unsqueeze(Unsqueeze(m)))), -10000)` added to the scores;
- HF ≥ 4.3x: `Where(Cast(inv, bool), finfo.min, inv)` with `inv = 1 − Expand(Cast(m))`, added;
- SDPA / dynamo: `Where(Cast(m, bool), 0, −inf)` added, or `Where(cond, scores, min)` on the scores.

Whatever the ops, the chain is elementwise in m (plus unit-dim shape ops), and m is 0 or 1, so it is
recognised by *evaluating* it at m = 0 and m = 1 (a "probe"): an additive mask must give 0 for a kept key
and ≤ −1e4 for a padded one; a `Where` condition must be true for kept keys only. Every value on the way
must keep the keys on its last axis, so key j of the input is column j of the scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.ir import SSAValue

from compiler.frontends.onnx.match import src
from compiler.frontends.onnx.state import Env

MASKED = -1.0e4  # additive values at or below this count as "masked out"

_SHAPE_OPS = ("Identity", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Dropout")
_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Equal": np.equal,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Greater": np.greater,
    "Less": np.less,
}


class _Probe:
    """Evaluates a value at m = 0 / m = 1 of the one integer graph input it depends on."""

    def __init__(self, env: Env, sk: int) -> None:
        self.env, self.sk = env, sk
        self.inputs = {i.name: i for i in env.graph.inputs}
        self.found: str | None = None

    def _keys_last(self, name: str) -> bool:
        shape = self.env.graph.shapes.get(name)
        run = self.env.run(name)
        if shape is None and run is not None:
            shape = run.shape
        return shape is not None and len(shape) >= 1 and shape[-1] == self.sk

    def value(self, name: str, m: int, depth: int = 0) -> np.ndarray | None:
        if depth > 24:
            return None
        name = src(self.env, name)
        c = self.env.const(name)
        if c is not None:
            flat = c.reshape(-1)
            return flat[0].copy() if flat.size and np.all(flat == flat[0]) else None
        gi = self.inputs.get(name)
        if gi is not None:
            if gi.dtype.kind not in "iu" or tuple(gi.shape) != (1, self.sk):
                return None
            if self.found not in (None, name):
                return None
            self.found = name
            return np.array(m, gi.dtype)
        node = self.env.producer(name)
        if node is None or not self._keys_last(name):
            return None
        return self._node(node, m, depth + 1)

    def _node(self, node: Any, m: int, depth: int) -> np.ndarray | None:
        op = node.op_type
        ins = list(node.input)
        if op in _SHAPE_OPS:
            return self.value(ins[0], m, depth)
        maybe = [self.value(i, m, depth) for i in (ins if op != "Cast" else ins[:1])]
        args = [a for a in maybe if a is not None]
        if len(args) != len(maybe):
            return None
        with np.errstate(all="ignore"):
            if op == "Cast":
                from onnx.helper import tensor_dtype_to_np_dtype

                to = next(a.i for a in node.attribute if a.name == "to")
                return np.asarray(args[0]).astype(tensor_dtype_to_np_dtype(to))
            if op == "Not":
                return np.logical_not(args[0])
            if op == "Neg":
                return np.negative(args[0])
            if op == "Where":
                return np.where(args[0].astype(bool), args[1], args[2])
            if op in _BINARY and len(args) == 2:
                return np.asarray(_BINARY[op](args[0], args[1]))
        return None

    def both(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        kept, masked = self.value(name, 1), self.value(name, 0)
        return None if kept is None or masked is None else (kept, masked)


def _input_ssa(env: Env, probe: _Probe) -> SSAValue | None:
    run = env.run(probe.found) if probe.found is not None else None
    return None if run is None else run.ssa


def additive_key_mask(env: Env, name: str, sk: int) -> SSAValue | None:
    """The mask input's nn value if `name` (added to the scores) is 0 for kept keys and ≤ −1e4 for
    padded ones, as a function of one integer graph input [1, sk]; else None."""
    if env.const(src(env, name)) is not None:
        return None
    probe = _Probe(env, sk)
    vals = probe.both(name)
    if vals is None or probe.found is None:
        from compiler.frontends.onnx.mask_probe import vector_additive

        found = vector_additive(env, name, sk)
        run = None if found is None else env.run(found)
        return None if run is None else run.ssa
    kept, masked = (float(v) for v in vals)
    if kept != 0.0 or not masked <= MASKED:
        return None
    return _input_ssa(env, probe)


def keep_condition(env: Env, name: str, sk: int) -> tuple[SSAValue, bool] | None:
    """(mask input, True if the condition is true for kept keys / False if for padded ones) for a
    `Where` condition computed from one integer graph input [1, sk]; else None."""
    if env.const(src(env, name)) is not None:
        return None
    probe = _Probe(env, sk)
    vals = probe.both(name)
    if vals is None or probe.found is None:
        from compiler.frontends.onnx.mask_probe import vector_condition

        hit = vector_condition(env, name, sk)
        run = None if hit is None else env.run(hit[0])
        return None if run is None or hit is None else (run.ssa, hit[1])
    kept, masked = (bool(v) for v in vals)
    if kept == masked:
        return None
    ssa = _input_ssa(env, probe)
    return None if ssa is None else (ssa, kept)
