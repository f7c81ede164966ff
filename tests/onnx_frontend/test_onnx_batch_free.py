"""Batch-free views in real dynamo exports: HF GPT-2's Conv1D flattens [1, S, D] → [S, D] around its
addmm (Gemm) and restores [1, S, O]; torch's SDPA decomposition writes Kᵀ as Reshape [1,H,N,d] →
[H,N,d], Transpose(0,2,1), Reshape → [1,H,d,N]; the heads may merge straight into [S, D]. Raised to
nn.linear / nn.attention; a batch-dropping reshape outside these patterns fails closed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402
from onnx_graphs import Net  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.frontends.onnx import import_onnx  # noqa: E402

S, D, H = 6, 16, 2
DH = D // H


def _flat_gemm(net: Net, x: str, name: str, din: int, dout: int) -> str:
    flat = net.op("Reshape", [x, net.const([S, din])])
    w = net.init(f"{name}.weight", net.rand(din, dout))  # HF Conv1D stores [in, out]
    b = net.init(f"{name}.bias", net.rand(dout))
    y = net.op("Gemm", [flat, w, b])
    return net.op("Reshape", [y, net.const([1, S, dout])])


def block(path: Path, stray: bool = False) -> Path:
    net = Net("dynamo")
    qkv = _flat_gemm(net, "x", "h.0.attn.c_attn", D, 3 * D)
    q, k, v = net.op("Split", [qkv, net.const([D, D, D])], n_out=3, axis=2)
    heads = [
        net.op("Transpose", [net.op("Reshape", [t, net.const([1, S, H, DH])])], perm=[0, 2, 1, 3])
        for t in (q, k, v)
    ]
    root = net.const(np.float32(math.sqrt(1 / math.sqrt(DH))), np.float32)
    kt = net.op("Reshape", [heads[1], net.const([H, S, DH])])
    kt = net.op("Transpose", [kt], perm=[0, 2, 1])
    kt = net.op("Reshape", [kt, net.const([1, H, DH, S])])
    scores = net.op("MatMul", [net.op("Mul", [heads[0], root]), net.op("Mul", [kt, root])])
    o = net.op("MatMul", [net.op("Softmax", [scores], axis=-1), heads[2]])
    o = net.op("Transpose", [o], perm=[0, 2, 1, 3])
    o = net.op("Reshape", [o, net.const([S, D])])  # heads merged straight into the flat view
    w = net.init("h.0.attn.c_proj.weight", net.rand(D, D))
    out = net.op("Reshape", [net.op("Gemm", [o, w]), net.const([1, S, D])])
    if stray:  # a flat view that no pattern consumes
        out = net.op(
            "Reshape",
            [net.op("Relu", [net.op("Reshape", [out, net.const([S, D])])]), net.const([1, S, D])],
        )
    net.nodes.append(helper.make_node("Identity", [out], ["y"]))
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, S, D])
    outp = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, S, D])
    return net.save(path, [inp], [outp], 18)


def test_batch_free_views_are_raised(tmp_path: Path) -> None:
    path = block(tmp_path / "block.onnx")
    model = import_onnx(path)
    ops = [op.name for op in model.main.body.block.ops]
    assert ops.count("nn.attention") == 1 and ops.count("nn.linear") == 4, ops
    assert not {"nn.matmul", "nn.softmax", "nn.transpose", "nn.reshape"} & set(ops), ops
    assert {"h.0.attn.q.weight", "h.0.attn.k.weight", "h.0.attn.v.weight"} <= set(model.weights)
    x = np.random.default_rng(0).standard_normal((1, S, D)).astype(np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"x": x})[0][0]
    got = reference.run(model, {"x": x[0]})["out0"]
    assert np.abs(got - want).max() <= 1e-4 * float(want.max() - want.min())


def test_a_stray_batch_free_view_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(WispError, match=r"op Reshape.*mixes the batch axis"):
        import_onnx(block(tmp_path / "stray.onnx", stray=True))
