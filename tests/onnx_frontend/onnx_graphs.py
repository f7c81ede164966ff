"""ONNX test graphs built with onnx.helper in the shapes the two torch exporters write (no torch needed).

`Net` is a tiny graph writer; `vit`, `bert` and `gpt2` build whole models in either `style`:
"torchscript" (opset 14–17: MatMul with a transposed `onnx::MatMul_*` initializer + Add, decomposed layer
norm, Erf-GELU, Shape/Gather/Unsqueeze/Concat chains feeding Reshape, Div on the scores) or "dynamo"
(opset 18: weights [out, in] through a Transpose node, LayerNormalization, SDPA decomposed as
q·√s and kᵀ·√s, extra Cast/Shape/Constant nodes, external data in a .onnx.data file).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    def __init__(self, style: str, seed: int = 0) -> None:
        self.style = style
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.rng = np.random.default_rng(seed)
        self.n = 0
        self.scope = ""

    def tmp(self, hint: str = "t") -> str:
        self.n += 1
        return (
            f"/{self.scope}/{hint}_output_{self.n}"
            if self.style == "torchscript"
            else f"val_{self.n}"
        )

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.tmp(op_type) for _ in range(n_out)]
        name = (
            f"/{self.scope}/{op_type}_{self.n}"
            if self.style == "torchscript"
            else f"node_{op_type}_{self.n}"
        )
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def const(self, arr: Any, dtype: Any = np.int64) -> str:
        a = np.asarray(arr, dtype)
        out = self.tmp("Constant")
        self.nodes.append(helper.make_node("Constant", [], [out], value=numpy_helper.from_array(a)))
        return out

    def rand(self, *shape: int, std: float = 0.2) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    # --- layers ---

    def linear(self, x: str, path: str, din: int, dout: int) -> str:
        outer, self.scope = self.scope, path
        try:
            return self._linear(x, path, din, dout)
        finally:
            self.scope = outer

    def _linear(self, x: str, path: str, din: int, dout: int) -> str:
        w, b = self.rand(dout, din), self.rand(dout, std=0.05)
        bias = self.init(f"{path}.bias", b)
        if self.style == "torchscript":
            wt = self.init(f"onnx::MatMul_{len(self.inits)}", np.ascontiguousarray(w.T))
            return self.op("Add", [self.op("MatMul", [x, wt]), bias])
        wt = self.op("Transpose", [self.init(f"{path}.weight", w)], perm=[1, 0])
        return self.op("Add", [self.op("MatMul", [x, wt]), bias])

    def layer_norm(self, x: str, path: str, d: int, eps: float, decomposed: bool) -> str:
        g = self.init(f"{path}.weight", 1 + self.rand(d, std=0.1))
        b = self.init(f"{path}.bias", self.rand(d, std=0.1))
        if not decomposed:
            return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        c = self.op("Sub", [x, mean])
        var = self.op(
            "ReduceMean", [self.op("Pow", [c, self.const(2.0, np.float32)])], axes=[-1], keepdims=1
        )
        den = self.op("Sqrt", [self.op("Add", [var, self.const(eps, np.float32)])])
        return self.op("Add", [self.op("Mul", [self.op("Div", [c, den]), g]), b])

    def gelu(self, x: str, approx: str) -> str:
        if approx == "none":
            e = self.op("Erf", [self.op("Div", [x, self.const(math.sqrt(2), np.float32)])])
            one = self.op("Add", [e, self.const(1.0, np.float32)])
            return self.op("Mul", [self.op("Mul", [x, one]), self.const(0.5, np.float32)])
        cube = self.op("Pow", [x, self.const(3.0, np.float32)])
        inner = self.op("Add", [x, self.op("Mul", [self.const(0.044715, np.float32), cube])])
        t = self.op(
            "Tanh", [self.op("Mul", [self.const(math.sqrt(2 / math.pi), np.float32), inner])]
        )
        half = self.op("Mul", [self.const(0.5, np.float32), x])
        return self.op("Mul", [half, self.op("Add", [self.const(1.0, np.float32), t])])

    def dyn_shape(self, x: str, tail: list[int]) -> str:
        """[B, N, *tail] computed from Shape(x), as the TorchScript exporter writes a view."""
        s = self.op("Shape", [x])
        dims = [
            self.op("Unsqueeze", [self.op("Gather", [s, self.const(i)], axis=0), self.const([0])])
            for i in (0, 1)
        ]
        return self.op("Concat", [*dims, self.const(tail)], axis=0)

    def reshape(self, x: str, tail: list[int]) -> str:
        if self.style == "torchscript":
            return self.op("Reshape", [x, self.dyn_shape(x, tail)])
        return self.op("Reshape", [x, self.const([1, -1, *tail])])

    def attention(
        self,
        x: str,
        path: str,
        d: int,
        heads: int,
        causal: bool,
        fused: bool,
        seq: int,
        key_mask: tuple[str, str] | None = None,
    ) -> str:
        """`key_mask` = ("add", value added to the scores) or ("where", bool keep condition)."""
        hd = d // heads
        if fused:  # timm: qkv → [B,N,3,H,d] → permute(2,0,3,1,4) → q,k,v
            qkv = self.linear(x, f"{path}.qkv", d, 3 * d)
            t = self.op("Transpose", [self.reshape(qkv, [3, heads, hd])], perm=[2, 0, 3, 1, 4])
            if self.style == "torchscript":
                q, k, v = (self.op("Gather", [t, self.const(i)], axis=0) for i in range(3))
            else:
                parts = self.op("Split", [t], n_out=3, axis=0, num_outputs=3)
                q, k, v = (self.op("Squeeze", [p, self.const([0])]) for p in parts)
        else:
            q, k, v = (
                self.op(
                    "Transpose",
                    [self.reshape(self.linear(x, f"{path}.{n}", d, d), [heads, hd])],
                    perm=[0, 2, 1, 3],
                )
                for n in ("query", "key", "value")
            )
        kt = self.op("Transpose", [k], perm=[0, 1, 3, 2])
        if self.style == "torchscript":
            s = self.op("Div", [self.op("MatMul", [q, kt]), self.const(math.sqrt(hd), np.float32)])
        else:  # SDPA decomposition: both sides by sqrt(scale)
            r = self.const(1 / math.sqrt(math.sqrt(hd)), np.float32)
            s = self.op("MatMul", [self.op("Mul", [q, r]), self.op("Mul", [kt, r])])
        if key_mask is not None and key_mask[0] == "add":
            s = self.op("Add", [s, key_mask[1]])
        elif key_mask is not None:
            s = self.op("Where", [key_mask[1], s, self.const(-np.inf, np.float32)])
        if causal:
            tril = np.tril(np.ones((1, 1, 64, 64), bool))
            bias = self.init(f"{path}.bias", tril)
            m = self.op(
                "Slice", [bias, self.const([0, 0]), self.const([seq, seq]), self.const([2, 3])]
            )
            if self.style == "torchscript":
                s = self.op("Where", [m, s, self.const(np.finfo(np.float32).min, np.float32)])
            else:
                add = self.op(
                    "Where", [m, self.const(0.0, np.float32), self.const(-np.inf, np.float32)]
                )
                s = self.op("Add", [s, add])
        p = self.op("Softmax", [s], axis=-1)
        if self.style == "dynamo":
            p = self.op("Cast", [p], to=TensorProto.FLOAT)
        o = self.op("Transpose", [self.op("MatMul", [p, v])], perm=[0, 2, 1, 3])
        o = (
            self.reshape(o, [d])
            if self.style == "torchscript"
            else self.op("Reshape", [o, self.const([1, seq, d])])
        )
        return self.linear(o, f"{path}.proj", d, d)

    def save(self, path: Path, inputs: list[Any], outputs: list[Any], opset: int) -> Path:
        graph = helper.make_graph(self.nodes, "g", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        if self.style == "dynamo":
            onnx.save_model(
                model,
                str(path),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=path.name + ".data",
                size_threshold=64,
            )
        else:
            onnx.save_model(model, str(path))
        return path


def _opset(style: str) -> int:
    return 14 if style == "torchscript" else 18


def vit(
    path: Path,
    style: str,
    *,
    dim: int = 32,
    heads: int = 2,
    layers: int = 2,
    image: int = 8,
    patch: int = 4,
    classes: int = 5,
    fused: bool = True,
) -> Path:
    net = Net(style)
    tokens = (image // patch) ** 2 + 1
    decomposed = style == "torchscript"
    w = net.init("patch_embed.proj.weight", net.rand(dim, 3, patch, patch))
    b = net.init("patch_embed.proj.bias", net.rand(dim))
    c = net.op("Conv", ["pixel_values", w, b], kernel_shape=[patch, patch], strides=[patch, patch])
    x = net.op("Transpose", [net.op("Reshape", [c, net.const([1, dim, -1])])], perm=[0, 2, 1])
    cls = net.init("cls_token", net.rand(1, 1, dim))
    if style == "torchscript":
        batch = net.op(
            "Unsqueeze",
            [
                net.op("Gather", [net.op("Shape", ["pixel_values"]), net.const(0)], axis=0),
                net.const([0]),
            ],
        )
        cls = net.op("Expand", [cls, net.op("Concat", [batch, net.const([1, 1])], axis=0)])
    else:
        cls = net.op("Expand", [cls, net.const([1, 1, 1])])
    x = net.op("Concat", [cls, x], axis=1)
    x = net.op("Add", [x, net.init("pos_embed", net.rand(1, tokens, dim))])
    for i in range(layers):
        net.scope = f"blocks.{i}/attn"
        h = net.layer_norm(x, f"blocks.{i}.norm1", dim, 1e-6, decomposed)
        x = net.op(
            "Add", [x, net.attention(h, f"blocks.{i}.attn", dim, heads, False, fused, tokens)]
        )
        net.scope = f"blocks.{i}/mlp"
        h = net.layer_norm(x, f"blocks.{i}.norm2", dim, 1e-6, decomposed)
        h = net.linear(
            net.gelu(net.linear(h, f"blocks.{i}.mlp.fc1", dim, 2 * dim), "none"),
            f"blocks.{i}.mlp.fc2",
            2 * dim,
            dim,
        )
        x = net.op("Add", [x, h])
    net.scope = "head"
    x = net.layer_norm(x, "norm", dim, 1e-6, decomposed)
    first = net.op("Gather", [x, net.const(0)], axis=1)
    logits = net.linear(first, "head", dim, classes)
    inp = helper.make_tensor_value_info(
        "pixel_values", TensorProto.FLOAT, ["batch", 3, image, image]
    )
    net.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])
    return net.save(path, [inp], [out], _opset(style))


def bert(
    path: Path,
    style: str,
    *,
    dim: int = 32,
    heads: int = 4,
    layers: int = 2,
    seq: int = 6,
    vocab: int = 50,
    classes: int = 3,
    mask: str | None = None,
) -> Path:
    """`mask`: None (no attention_mask input) or how HF writes it: "classic" ((1 − m)·−10000 added),
    "inverted" (Where(bool(1 − m), min, 1 − m) added, HF ≥ 4.3x), "sdpa" (Where(bool m, 0, −inf)
    added) or "where" (Where(bool m, scores, −inf))."""
    net = Net(style, seed=1)
    decomposed = style == "torchscript"
    key_mask = _key_mask(net, mask, seq) if mask else None
    word = net.op(
        "Gather",
        [net.init("embeddings.word_embeddings.weight", net.rand(vocab, dim)), "input_ids"],
        axis=0,
    )
    types = net.op(
        "Gather",
        [net.init("embeddings.token_type_embeddings.weight", net.rand(2, dim)), "token_type_ids"],
        axis=0,
    )
    pos_table = net.init("embeddings.position_embeddings.weight", net.rand(max(16, seq), dim))
    pos_ids = net.op(
        "Unsqueeze",
        [
            net.op(
                "Range",
                [
                    net.const(0),
                    net.op("Gather", [net.op("Shape", ["input_ids"]), net.const(1)], axis=0),
                    net.const(1),
                ],
            ),
            net.const([0]),
        ],
    )
    pos = net.op("Gather", [pos_table, pos_ids], axis=0)
    x = net.op("Add", [net.op("Add", [word, types]), pos])
    net.scope = "embeddings/LayerNorm"
    x = net.layer_norm(x, "embeddings.LayerNorm", dim, 1e-12, decomposed)
    for i in range(layers):
        net.scope = f"encoder/layer.{i}/attention"
        a = net.attention(
            x, f"encoder.layer.{i}.attention", dim, heads, False, False, seq, key_mask
        )
        x = net.layer_norm(
            net.op("Add", [a, x]), f"encoder.layer.{i}.attention.LayerNorm", dim, 1e-12, decomposed
        )
        net.scope = f"encoder/layer.{i}/ffn"
        h = net.gelu(net.linear(x, f"encoder.layer.{i}.intermediate.dense", dim, 4 * dim), "none")
        h = net.linear(h, f"encoder.layer.{i}.output.dense", 4 * dim, dim)
        x = net.layer_norm(
            net.op("Add", [h, x]), f"encoder.layer.{i}.output.LayerNorm", dim, 1e-12, decomposed
        )
    net.scope = "pooler"
    net.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    first = net.op("Gather", [x, net.const(0)], axis=1)
    w = net.init("pooler.dense.weight", net.rand(dim, dim))
    pooled = net.op(
        "Tanh", [net.op("Gemm", [first, w, net.init("pooler.dense.bias", net.rand(dim))], transB=1)]
    )
    logits = net.linear(pooled, "classifier", dim, classes)
    net.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    ins = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", seq])
        for n in ("input_ids", "token_type_ids", *(["attention_mask"] if mask else []))
    ]
    outs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
        for n, s in (("last_hidden_state", ["batch", seq, dim]), ("logits", ["batch", classes]))
    ]
    return net.save(path, ins, outs, _opset(style))


def _key_mask(net: Net, how: str, seq: int) -> tuple[str, str]:
    """HF's extended attention mask from the `attention_mask` input [B, S] (int64, 1 = token)."""
    f32 = np.float32
    m4 = net.op("Unsqueeze", ["attention_mask", net.const([1, 2])])
    if how == "classic":  # TorchScript export of get_extended_attention_mask
        inv = net.op("Sub", [net.const(1.0, f32), net.op("Cast", [m4], to=TensorProto.FLOAT)])
        return "add", net.op("Mul", [inv, net.const(-10000.0, f32)])
    if how == "inverted":  # _prepare_4d_attention_mask: expand to [B, 1, S, S], invert, fill min
        e = net.op(
            "Expand", [net.op("Cast", [m4], to=TensorProto.FLOAT), net.const([1, 1, seq, seq])]
        )
        inv = net.op("Sub", [net.const(1.0, f32), e])
        cond = net.op("Cast", [inv], to=TensorProto.BOOL)
        return "add", net.op("Where", [cond, net.const(np.finfo(f32).min, f32), inv])
    if how in ("gathernd", "flatgather"):  # transformers 5 masking_utils: mask[batch_idx, kv_idx]
        m_bool = net.op("Cast", ["attention_mask"], to=TensorProto.BOOL)
        kv = np.broadcast_to(np.arange(seq), (1, 1, seq, seq))
        if how == "gathernd":  # dynamo: GatherND with [.., (batch, kv)] index pairs
            idx = np.stack([np.zeros_like(kv), kv], axis=-1)
            picked = net.op("GatherND", [m_bool, net.const(idx)])
        else:  # TorchScript: Flatten(axis 2) to [S, 1], Gather of rows batch·S + kv, Reshape back
            flat = net.op("Flatten", [m_bool], axis=2)
            rows = net.op("Gather", [flat, net.const(kv.copy())], axis=0)
            picked = net.op("Reshape", [rows, net.const([1, 1, seq, seq])])
        other = net.const(np.ones((1, 1, seq, seq), bool), np.bool_)
        keep = net.op("And", [other, picked])
        return "add", net.op("Where", [keep, net.const(0.0, f32), net.const(-np.inf, f32)])
    keep = net.op("Cast", [m4], to=TensorProto.BOOL)
    if how == "sdpa":
        return "add", net.op("Where", [keep, net.const(0.0, f32), net.const(-np.inf, f32)])
    return "where", keep


def gpt2(
    path: Path,
    style: str,
    *,
    dim: int = 32,
    heads: int = 2,
    layers: int = 2,
    seq: int = 8,
    vocab: int = 40,
) -> Path:
    net = Net(style, seed=2)
    decomposed = style == "torchscript"
    wte = net.init("transformer.wte.weight", net.rand(vocab, dim))
    x = net.op("Gather", [wte, "input_ids"], axis=0)
    x = net.op(
        "Add",
        [
            x,
            net.op(
                "Unsqueeze",
                [
                    net.op(
                        "Slice",
                        [
                            net.init("transformer.wpe.weight", net.rand(max(32, seq), dim)),
                            net.const([0]),
                            net.const([seq]),
                            net.const([0]),
                        ],
                    ),
                    net.const([0]),
                ],
            ),
        ],
    )
    for i in range(layers):
        net.scope = f"transformer/h.{i}/attn"
        h = net.layer_norm(x, f"transformer.h.{i}.ln_1", dim, 1e-5, decomposed)
        qkv = net.linear(h, f"transformer.h.{i}.attn.c_attn", dim, 3 * dim)
        q, k, v = net.op("Split", [qkv, net.const([dim] * 3)], n_out=3, axis=2)
        x = net.op("Add", [x, _gpt2_attn(net, q, k, v, f"transformer.h.{i}.attn", dim, heads, seq)])
        net.scope = f"transformer/h.{i}/mlp"
        h = net.layer_norm(x, f"transformer.h.{i}.ln_2", dim, 1e-5, decomposed)
        h = net.linear(
            net.gelu(net.linear(h, f"transformer.h.{i}.mlp.c_fc", dim, 4 * dim), "tanh"),
            f"transformer.h.{i}.mlp.c_proj",
            4 * dim,
            dim,
        )
        x = net.op("Add", [x, h])
    net.scope = "lm_head"
    x = net.layer_norm(x, "transformer.ln_f", dim, 1e-5, decomposed)
    logits = net.op("MatMul", [x, net.op("Transpose", [wte], perm=[1, 0])])
    net.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    ins = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, seq])]
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, seq, vocab])]
    return net.save(path, ins, outs, _opset(style))


def _gpt2_attn(net: Net, q: str, k: str, v: str, path: str, dim: int, heads: int, seq: int) -> str:
    hd = dim // heads
    qh, kh, vh = (
        net.op("Transpose", [net.reshape(t, [heads, hd])], perm=[0, 2, 1, 3]) for t in (q, k, v)
    )
    s = net.op("MatMul", [qh, net.op("Transpose", [kh], perm=[0, 1, 3, 2])])
    s = net.op("Div", [s, net.const(math.sqrt(hd), np.float32)])
    n = max(32, seq)
    tril = np.tril(np.ones((1, 1, n, n), bool))
    m = net.op(
        "Slice",
        [
            net.init(f"{path}.bias", tril),
            net.const([0, 0]),
            net.const([seq, seq]),
            net.const([2, 3]),
        ],
    )
    s = net.op("Where", [m, s, net.const(np.finfo(np.float32).min, np.float32)])
    o = net.op("MatMul", [net.op("Softmax", [s], axis=-1), vh])
    o = net.reshape(net.op("Transpose", [o], perm=[0, 2, 1, 3]), [dim])
    return net.linear(o, f"{path}.c_proj", dim, dim)
