"""Raising of decomposed layer norm and GELU to `nn.layer_norm` and `nn.gelu`.

Layer norm (TorchScript's form):  (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gamma + beta
GELU, erf form:                   x * 0.5 * (1 + erf(x / sqrt(2)))       (factors in any order)
GELU, tanh form:                  0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.frontends.onnx.match import node_of, reduces_last, same, scalar_of, split_const, src
from compiler.frontends.onnx.state import Env, Run, Value
from dialects import nn


def _centered(env: Env, name: str) -> str | None:
    """x for `x - ReduceMean(x)`."""
    sub = node_of(env, name, "Sub")
    if sub is None:
        return None
    x = src(env, sub.input[0])
    mean = node_of(env, sub.input[1], "ReduceMean")
    xr = env.run(x)
    if mean is None or xr is None or not same(env, mean.input[0], x):
        return None
    return x if reduces_last(env, mean, len(xr.shape)) else None


def _normalized(env: Env, name: str) -> tuple[str, float] | None:
    """(x, eps) for `(x - mean) / sqrt(var + eps)`."""
    div = node_of(env, name, "Div")
    if div is None:
        return None
    x = _centered(env, div.input[0])
    sqrt = node_of(env, div.input[1], "Sqrt")
    if x is None or sqrt is None:
        return None
    add = node_of(env, sqrt.input[0], "Add")
    parts = split_const(env, add) if add is not None else None
    if parts is None:
        return None
    var_name, eps_arr, _ = parts
    eps = scalar_of(eps_arr)
    var = node_of(env, var_name, "ReduceMean")
    xr = env.run(x)
    if (
        var is None
        or eps is None
        or eps <= 0
        or xr is None
        or not reduces_last(env, var, len(xr.shape))
    ):
        return None
    sq = node_of(env, var.input[0], "Pow", "Mul")
    if sq is None:
        return None
    if sq.op_type == "Pow":
        e = env.const(src(env, sq.input[1]))
        if e is None or scalar_of(e) != 2.0:
            return None
    elif not same(env, sq.input[0], sq.input[1]):
        return None
    if _centered(env, sq.input[0]) != x:
        return None
    return x, eps


def _eps(eps: float) -> float:
    """The float32 epsilon as written (1e-06, not 9.999999974752427e-07)."""
    return float(str(np.float32(eps)))


def _vector(env: Env, arr: np.ndarray, d: int) -> np.ndarray | None:
    if arr.size not in (1, d) or any(s != 1 for s in arr.shape[:-1]):
        return None
    return np.broadcast_to(arr.reshape(-1), (d,)).astype(np.float32)


def _emit_ln(
    env: Env,
    node: Any,
    x: str,
    eps: float,
    gamma: tuple[np.ndarray, str | None],
    beta: tuple[np.ndarray, str | None],
) -> list[Value] | None:
    xr = env.run(x)
    if xr is None:
        return None
    d = xr.shape[-1]
    g, b = _vector(env, gamma[0], d), _vector(env, beta[0], d)
    if g is None or b is None:
        return None
    gw = env.weight(g, gamma[1], node, "weight")
    bw = env.weight(b, beta[1], node, "bias")
    return [Run(env.emit(nn.LayerNormOp, [xr.ssa, gw, bw], eps=_eps(eps)), xr.shape, xr.batch)]


def _origin(env: Env, name: str) -> str | None:
    v = env.get(src(env, name))
    return getattr(v, "origin", None)


def try_layer_norm(env: Env, node: Any) -> list[Value] | None:
    """At `Add(Mul(norm, gamma), beta)` or `Mul(norm, gamma)`."""
    parts = split_const(env, node)
    if parts is None:
        return None
    inner, c, right = parts
    c_name = node.input[1] if right else node.input[0]
    if node.op_type == "Add":
        mul = node_of(env, inner, "Mul")
        if mul is None:
            return None
        mparts = split_const(env, mul)
        if mparts is None:
            return None
        norm_name, g, g_right = mparts
        hit = _normalized(env, norm_name)
        if hit is None:
            return None
        g_name = mul.input[1] if g_right else mul.input[0]
        return _emit_ln(
            env, node, hit[0], hit[1], (g, _origin(env, g_name)), (c, _origin(env, c_name))
        )
    if node.op_type == "Mul":
        hit = _normalized(env, inner)
        if hit is None:
            return None
        return _emit_ln(
            env, node, hit[0], hit[1], (c, _origin(env, c_name)), (np.zeros(1, np.float32), None)
        )
    return None


def _factors(env: Env, name: str, depth: int) -> list[str]:
    mul = node_of(env, name, "Mul")
    if mul is None or depth == 0:
        return [src(env, name)]
    return _factors(env, mul.input[0], depth - 1) + _factors(env, mul.input[1], depth - 1)


def _one_plus(env: Env, name: str, op_type: str) -> str | None:
    """arg for `1 + op(arg)`."""
    add = node_of(env, name, "Add")
    parts = split_const(env, add) if add is not None else None
    if parts is None or scalar_of(parts[1]) != 1.0:
        return None
    inner = node_of(env, parts[0], op_type)
    return None if inner is None else inner.input[0]


def _scaled(env: Env, name: str, factor: float) -> str | None:
    """x for `x * factor` or `x / (1/factor)`."""
    node = node_of(env, name, "Mul", "Div")
    if node is None:
        return None
    parts = split_const(env, node)
    if parts is None or (node.op_type == "Div" and not parts[2]):
        return None
    c = scalar_of(parts[1])
    if c is None or c == 0:
        return None
    got = c if node.op_type == "Mul" else 1.0 / c
    return parts[0] if math.isclose(got, factor, rel_tol=1e-4) else None


def _cubic_inner(env: Env, name: str) -> str | None:
    """x for `x + 0.044715 * x^3`."""
    add = node_of(env, name, "Add")
    if add is None:
        return None
    for a, b in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        cube = _scaled(env, b, 0.044715)
        if cube is None:
            continue
        pw = node_of(env, cube, "Pow")
        if pw is not None and same(env, pw.input[0], a):
            e = env.const(src(env, pw.input[1]))
            if e is not None and scalar_of(e) == 3.0:
                return src(env, a)
        fs = _factors(env, cube, 2)
        if len(fs) == 3 and all(f == src(env, a) for f in fs):
            return src(env, a)
    return None


def try_gelu(env: Env, node: Any) -> list[Value] | None:
    """At the last Mul of an erf- or tanh-GELU."""
    fs = _factors(env, node.input[0], 1) + _factors(env, node.input[1], 1)
    half = 1.0
    rest: list[str] = []
    for f in fs:
        c = env.const(f)
        k = scalar_of(c) if c is not None else None
        if k is not None:
            half *= k
        else:
            rest.append(f)
    if not math.isclose(half, 0.5, rel_tol=1e-6) or len(rest) != 2:
        return None
    for x, other in ((rest[0], rest[1]), (rest[1], rest[0])):
        xr = env.run(x)
        if xr is None:
            continue
        arg = _one_plus(env, other, "Erf")
        if arg is not None and _scaled(env, arg, 1 / math.sqrt(2.0)) == x:
            return [Run(env.emit(nn.GeluOp, [xr.ssa], approximate="none"), xr.shape, xr.batch)]
        arg = _one_plus(env, other, "Tanh")
        if arg is not None:
            inner = _scaled(env, arg, math.sqrt(2.0 / math.pi))
            if inner is not None and _cubic_inner(env, inner) == x:
                return [Run(env.emit(nn.GeluOp, [xr.ssa], approximate="tanh"), xr.shape, xr.batch)]
    return None
