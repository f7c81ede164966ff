"""The residual stream in int8 (`quantize{stream=int8}`): every residual `nn.add` that adds a
quantized layer's dequantized output is followed by a quantize/dequantize pair with a calibrated
per-tensor scale, so the stream between blocks is stored as int8 (the lowering keeps it int8 in
DRAM and dequantizes it in SRAM where a layer norm or the next residual add reads it)."""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np
from xdsl.dialects.builtin import IntegerType, ModuleOp, f32
from xdsl.ir import Operation
from xdsl.rewriter import InsertPoint, Rewriter

from dialects import nn, quant
from dialects.nn_base import shape_of, tensor
from passes.context import Calibration, values_many
from passes.quant_math import activation_scale, clip_fraction


def _from_quantized(op: Operation) -> bool:
    """An add of a dequantized quant.linear output (or of its grouped bias add)."""
    for v in op.operands:
        owner = v.owner
        if isinstance(owner, nn.AddOp):
            owner = next(
                (o.owner for o in owner.operands if isinstance(o.owner, quant.DequantizeOp)), None
            )
        if isinstance(owner, quant.DequantizeOp) and isinstance(owner.input.owner, quant.LinearOp):
            return True
    return False


def stream_adds(module: ModuleOp) -> list[nn.AddOp]:
    """Residual adds fed by a quantized layer whose result is read by something."""
    return [
        o
        for o in module.walk()
        if isinstance(o, nn.AddOp)
        and _from_quantized(o)
        and list(o.results[0].uses)
        and len(shape_of(o.results[0].type)) == 2
        # a residual add: both operands [tokens, features] (not a grouped layer's bias add)
        and all(shape_of(v.type) == shape_of(o.results[0].type) for v in o.operands)
    ]


def quantize_stream(
    module: ModuleOp,
    weights: MutableMapping[str, np.ndarray],
    calib: Calibration,
    samples: int,
    method: str,
    percentile: float,
) -> dict[str, dict[str, float]]:
    """Insert quantize → dequantize after each stream add; per-add report (scale, clipping)."""
    adds = stream_adds(module)
    if not adds:
        return {}
    rows: dict[nn.AddOp, list[np.ndarray]] = {a: [] for a in adds}
    for vals in values_many(calib, module, weights, calib.inputs[:samples]):
        for a in adds:
            rows[a].append(np.asarray(vals[a.results[0]], np.float32))
    report: dict[str, dict[str, float]] = {}
    for n, add in enumerate(adds):
        x = np.concatenate(rows[add])
        scale = activation_scale(x, 8, method, percentile)
        name = f"stream.{n}"
        weights[f"{name}.scale"] = np.array([scale], np.float32)
        s_op = nn.WeightOp.of(f"{name}.scale", tensor((1,), f32))
        v = add.results[0]
        q = quant.QuantizeOp.make([v, s_op.result], tensor(shape_of(v.type), IntegerType(8)))
        d = quant.DequantizeOp.make([q.results[0], s_op.result])
        assert isinstance(d, quant.DequantizeOp)
        for o in (s_op, q, d):
            o.attributes.update(dict(add.attributes))
        Rewriter.insert_op([s_op, q, d], InsertPoint.after(add))
        v.replace_uses_with_if(d.results[0], lambda use, q=q: use.operation is not q)
        _slice_before_dequantize(d)
        report[name] = {"scale": scale, "clip_fraction": clip_fraction(x, scale, 8)}
    return report


def _slice_before_dequantize(d: quant.DequantizeOp) -> None:
    """slice(dequantize(q)) → dequantize(slice(q)) for a per-tensor scale (the two commute): the
    final CLS row is then read as one int8 row instead of a dequantized copy of the whole stream."""
    for use in list(d.results[0].uses):
        sl = use.operation
        if not isinstance(sl, nn.SliceOp):
            continue
        q_sl = nn.SliceOp.make([d.input], tensor(shape_of(sl.results[0].type), IntegerType(8)))
        q_sl.properties.update(sl.properties)
        d_sl = quant.DequantizeOp.make([q_sl.results[0], d.scale])
        for o in (q_sl, d_sl):
            o.attributes.update(dict(sl.attributes))
        Rewriter.insert_op([q_sl, d_sl], InsertPoint.before(sl))
        sl.results[0].replace_all_uses_with(d_sl.results[0])
        Rewriter.erase_op(sl)
    if not d.results[0].uses:
        Rewriter.erase_op(d)
