"""A key-padding mask chain evaluated on whole mask vectors (raise_mask's fallback).

transformers ≥ 5 builds its masks by indexing the padding mask (`mask[batch_idx, kv_idx]`), which the
exporters write as `Flatten` + `Gather` (TorchScript) or `GatherND` (dynamo) with constant indices, then
`And` with other constant masks and `Where(cond, 0, −inf)`. Those moves are not elementwise in m, so the
scalar probe cannot follow them; here every node of the chain is folded (fold.py) on real vectors m
[1, Sk] — all ones and a few 0/1 patterns with at least one kept key — and the result must depend on
key j only through m[j], on the last axis, for every row."""

from __future__ import annotations

import numpy as np

from compiler.frontends.onnx.fold import fold
from compiler.frontends.onnx.match import attrs_of, src
from compiler.frontends.onnx.state import Env

MASKED = -1.0e4


def _patterns(sk: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = [np.ones(sk, np.int64)]
    for _ in range(3):
        m = rng.integers(0, 2, sk)
        m[rng.integers(0, sk)] = 1
        out += [m, 1 - m] if (1 - m).any() else [m]
    one = np.zeros(sk, np.int64)
    one[0] = 1
    return [*out, one]


class VectorProbe:
    def __init__(self, env: Env, sk: int) -> None:
        self.env, self.sk = env, sk
        self.inputs = {i.name: i for i in env.graph.inputs}
        self.found: str | None = None
        self._memo: dict[str, np.ndarray | None] = {}

    def value(self, name: str, m: np.ndarray, depth: int = 0) -> np.ndarray | None:
        if depth > 64:
            return None
        name = src(self.env, name)
        if name in self._memo:
            return self._memo[name]
        out = self._value(name, m, depth)
        self._memo[name] = out
        return out

    def _value(self, name: str, m: np.ndarray, depth: int) -> np.ndarray | None:
        c = self.env.const(name)
        if c is not None:
            return c
        gi = self.inputs.get(name)
        if gi is not None:
            if gi.dtype.kind not in "iu" or tuple(gi.shape) != (1, self.sk):
                return None
            if self.found not in (None, name):
                return None
            self.found = name
            return m.reshape(1, self.sk).astype(gi.dtype)
        node = self.env.producer(name)
        if node is None or node.domain not in ("", "ai.onnx") or self.env.run(name) is not None:
            return None
        args: list[np.ndarray | None] = []
        for i in node.input:
            a = self.value(i, m, depth + 1) if i else None
            if i and a is None:
                return None
            args.append(a)
        try:
            with np.errstate(all="ignore"):
                outs = fold(
                    node.op_type, args, attrs_of(node), self.env.graph.opset, len(node.output)
                )
        except Exception:  # noqa: BLE001 - a node the folder cannot evaluate ends the probe
            return None
        return None if outs is None else np.asarray(outs[list(node.output).index(name)])

    def each(self, name: str) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """(m, value) per pattern; the value's last axis is the keys."""
        results = []
        for m in _patterns(self.sk):
            self._memo = {}
            v = self.value(name, m)
            if v is None or v.ndim < 1 or v.shape[-1] != self.sk:
                return None
            results.append((m, v))
        return results if self.found is not None else None


def vector_additive(env: Env, name: str, sk: int) -> str | None:
    """The mask input's name if `name` is 0 where m = 1 and ≤ −1e4 where m = 0 (every row)."""
    probe = VectorProbe(env, sk)
    results = probe.each(name)
    if results is None:
        return None
    for m, v in results:
        v = v.astype(np.float64)
        if not (np.all(v[..., m == 1] == 0.0) and np.all(v[..., m == 0] <= MASKED)):
            return None
    return probe.found


def vector_condition(env: Env, name: str, sk: int) -> tuple[str, bool] | None:
    """(mask input, the condition's value for kept keys) if a Where condition is a key-padding mask."""
    probe = VectorProbe(env, sk)
    results = probe.each(name)
    if results is None:
        return None
    kept = None
    for m, v in results:
        v = v.astype(bool)
        on, off = v[..., m == 1], v[..., m == 0]
        if on.size and not (np.all(on) or not np.any(on)):
            return None
        k = bool(on.reshape(-1)[0]) if on.size else kept
        if kept is not None and k != kept:
            return None
        kept = k
        if off.size and not np.all(off == (not k)):
            return None
    return None if kept is None or probe.found is None else (probe.found, kept)
