"""quantize: post-training quantization of linear layers to integer matrix work (docs/quantization.md).

Each chosen `nn.linear` with a constant weight becomes

    %xq  = quant.quantize %x, %sx            (per-tensor activation scale, calibrated)
    %acc = quant.linear %xq, %wq, %bq        (int8/int4 weight, int32 bias, int32 accumulate)
    %y   = quant.dequantize %acc, %s         (s = sx · sw[c], fp32)

Layer norm, softmax, GELU and attention stay in floating point (the NPU's vector unit), as on real
NPUs. Activation scales come from the model's calibration split (never the test split) by min-max,
percentile or MSE; weights are symmetric per channel (default), per tensor, or per group of G along K
(int4), quantized by round-to-nearest or GPTQ (error compensation with the calibration Hessian). A
linear whose input is shared (q, k and v read one layer norm) quantizes that input once.

With `attn=int8`, each nn.attention whose q, k and v are dequantized quant.linears becomes
quant.attention on int8 q, k, v: their dequantizes become quant.requantize to calibrated per-tensor
output scales (one shift for the three, so the lowering merges them into one GEMM).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerType, ModuleOp, f32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from backend.wording import plural
from dialects import nn, quant, tokens
from dialects.nn_base import shape_of, tensor
from passes.context import (
    Calibration,
    PassError,
    add_report,
    calibration_of,
    values_many,
    weights_of,
)
from passes.quant_math import (
    CALIB_METHODS,
    Granularity,
    activation_scale,
    clip_fraction,
    dequantize_weight,
    fixed_point,
    quantize_rtn,
    quantize_values,
    sqnr_db,
    weight_scales,
)
from passes.search_decl import Knob, Stage

METHODS = ("rtn", "gptq")
SQNR_ROWS = 512  # calibration rows the per-layer output SQNR is measured on


@dataclass(frozen=True)
class LayerSpec:
    """How one linear is quantized: weight bits and granularity."""

    bits: int
    granularity: Granularity


@dataclass(frozen=True)
class QuantOptions:
    acts: int = 8
    calib: str = "minmax"
    percentile: float = 99.99
    method: str = "rtn"
    smooth: float = 0.0
    samples: int = 32
    damp: float = 0.01


@dataclass
class Layer:
    """A quantizable linear: its op, weight and bias symbols and display name."""

    op: nn.LinearOp
    weight: str
    bias: str | None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.weight.removesuffix(".weight")


def quantizable_layers(module: ModuleOp) -> list[Layer]:
    """Every float nn.linear whose weight (and bias) are nn.weight symbols, in program order."""
    out: list[Layer] = []
    for op in module.walk():
        if not isinstance(op, nn.LinearOp) or not isinstance(op.weight.owner, nn.WeightOp):
            continue
        bias = None
        if op.bias is not None:
            if not isinstance(op.bias.owner, nn.WeightOp):
                continue
            bias = op.bias.owner.symbol
        out.append(Layer(op, op.weight.owner.symbol, bias))
    return out


def already_quantized(module: ModuleOp) -> list[str]:
    """Names of layers that are quant.linear already."""
    names = []
    for op in module.walk():
        if isinstance(op, quant.LinearOp) and isinstance(op.weight.owner, nn.WeightOp):
            names.append(op.weight.owner.symbol.removesuffix(".weight.q"))
    return names


def _patterns(text: str) -> list[str]:
    return [p for p in text.replace(",", " ").split() if p]


def select_layers(module: ModuleOp, layers: str, skip: str, pass_name: str) -> list[Layer]:
    """The layers matched by `layers` (all when empty) and not by `skip`; a pattern that matches
    nothing, or a layer that is already quantized, is an error."""
    cands = quantizable_layers(module)
    done = already_quantized(module)
    want, skipped = _patterns(layers), _patterns(skip)

    def hit(p: str, name: str) -> bool:
        return fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name + ".weight", p)

    for p in want:
        if any(hit(p, d) for d in done):
            name = next(d for d in done if hit(p, d))
            raise PassError(f"layers={p}: layer '{name}' is already quantized")
        if not any(hit(p, lay.name) for lay in cands):
            names = ", ".join(lay.name for lay in cands[:8])
            raise PassError(
                f"layers={p} matches no float linear layer (layers: {names}"
                f"{', ...' if len(cands) > 8 else ''})"
            )
    if not want and done and not cands:
        raise PassError(f"every linear layer is already quantized ({done[0]}, ...)")
    for p in skipped:
        if not any(hit(p, lay.name) for lay in cands):
            raise PassError(f"skip={p} matches no float linear layer")
    return [
        lay
        for lay in cands
        if (not want or any(hit(p, lay.name) for p in want))
        and not any(hit(p, lay.name) for p in skipped)
    ]


def collect_inputs(
    module: ModuleOp,
    weights: Mapping[str, np.ndarray],
    calib: Calibration,
    values: Sequence[SSAValue],
    samples: int,
) -> dict[SSAValue, np.ndarray]:
    """Calibration rows [n, features] of each value, over the first `samples` samples."""
    rows: dict[SSAValue, list[np.ndarray]] = {v: [] for v in values}
    for vals in values_many(calib, module, weights, calib.inputs[:samples]):
        for v in values:
            a = np.asarray(vals[v], np.float32)
            rows[v].append(a.reshape(-1, a.shape[-1]))
    return {v: np.concatenate(r) for v, r in rows.items()}


def _weight_op(symbol: str, type_) -> nn.WeightOp:
    return nn.WeightOp.of(symbol, type_)


def rewrite_layer(
    lay: Layer,
    weights: MutableMapping[str, np.ndarray],
    spec: LayerSpec,
    x_scale: float,
    xq: SSAValue,
    q: np.ndarray,
    w_scales: np.ndarray,
) -> None:
    """Replace the float linear by quantize (given) → quant.linear → dequantize (+ bias add for
    grouped weights), storing the integer weight, bias and scales under `<layer>.*` symbols."""
    op = lay.op
    n, k = q.shape
    groups = spec.granularity.groups(k)
    elem = IntegerType(spec.bits)
    ops: list[Operation] = []
    weights[f"{lay.name}.weight.q"] = q
    w_op = _weight_op(f"{lay.name}.weight.q", tensor((n, k), elem))
    old_w = op.weight.owner
    if isinstance(old_w, nn.WeightOp) and "sparsity" in old_w.attributes:
        w_op.attributes["sparsity"] = old_w.attributes["sparsity"]  # zeros stay zero: 2:4 kept
    ops.append(w_op)
    sx = np.float32(x_scale)
    if groups == 1:
        deq = (sx * np.broadcast_to(w_scales.reshape(-1), (n,))).astype(np.float32)
        operands = [xq, w_op.result]
        if lay.bias is not None:
            b = np.asarray(weights[lay.bias], np.float64)
            bq = np.clip(np.rint(b / deq.astype(np.float64)), -(2**31), 2**31 - 1)
            weights[f"{lay.name}.bias.q"] = bq.astype(np.int32)
            b_op = _weight_op(f"{lay.name}.bias.q", tensor((n,), IntegerType(32)))
            ops.append(b_op)
            operands.append(b_op.result)
        lin = quant.LinearOp.make(operands, groups=1)
        weights[f"{lay.name}.dequant"] = deq
        s_op = _weight_op(f"{lay.name}.dequant", tensor((n,), f32))
    else:
        lin = quant.LinearOp.make([xq, w_op.result], groups=groups)
        deq = (sx * w_scales.T).astype(np.float32)  # [G, N]
        weights[f"{lay.name}.dequant"] = deq
        s_op = _weight_op(f"{lay.name}.dequant", tensor((groups, n), f32))
    ops += [lin, s_op]
    y = quant.DequantizeOp.make([lin.results[0], s_op.result])
    ops.append(y)
    result = y.results[0]
    if groups > 1 and op.bias is not None:
        add = nn.AddOp.make([result, op.bias])
        ops.append(add)
        result = add.results[0]
    for o in ops:
        o.attributes.update({k: v for k, v in op.attributes.items()})
    Rewriter.insert_op(ops, InsertPoint.before(op))
    op.results[0].replace_all_uses_with(result)
    Rewriter.erase_op(op)


def quantize_layers(
    module: ModuleOp,
    weights: MutableMapping[str, np.ndarray],
    calib: Calibration,
    chosen: Sequence[Layer],
    specs: Mapping[str, LayerSpec],
    opts: QuantOptions,
    notes: list[str] | None = None,
) -> dict[str, dict[str, float | int | str]]:
    """Calibrate, quantize and rewrite `chosen` layers (specs by layer name); per-layer report.
    Smoothing's notes (which inputs were smoothed, which left alone and why) go to `notes`."""
    inputs = list(dict.fromkeys(lay.op.input for lay in chosen))
    acts = collect_inputs(module, weights, calib, inputs, opts.samples)
    if opts.smooth > 0:
        from passes.smooth import smooth_layers

        smooth_notes = smooth_layers(module, weights, chosen, acts, opts.smooth)
        if notes is not None:
            notes.extend(smooth_notes)
        acts = collect_inputs(module, weights, calib, inputs, opts.samples)
    scales = {
        v: activation_scale(a, opts.acts, opts.calib, opts.percentile) for v, a in acts.items()
    }
    quantized: dict[SSAValue, SSAValue] = {}
    report: dict[str, dict[str, float | int | str]] = {}
    for lay in chosen:
        spec = specs[lay.name]
        x = lay.op.input
        w = np.asarray(weights[lay.weight], np.float32)
        if w.shape[1] % 2 and spec.bits == 4:
            raise PassError(f"layer '{lay.name}': int4 weights need an even K, got {w.shape[1]}")
        try:
            spec.granularity.groups(w.shape[1])
        except ValueError as e:
            raise PassError(f"granularity: layer '{lay.name}': {e}") from None
        xs = acts[x]
        if opts.method == "gptq":
            from passes.gptq import gptq_quantize

            x_deq = _fake_quant(xs, scales[x], opts.acts)
            w_op = lay.op.weight.owner
            sparse = isinstance(w_op, nn.WeightOp) and "sparsity" in w_op.attributes
            keep = w != 0 if sparse else None  # GPTQ must not fill 2:4-pruned zeros
            q, w_scales = gptq_quantize(w, x_deq, spec.bits, spec.granularity, opts.damp, keep=keep)
        else:
            w_scales = weight_scales(w, spec.bits, spec.granularity)
            q = quantize_rtn(w, w_scales, spec.bits)
        b = np.asarray(weights[lay.bias], np.float32) if lay.bias else np.float32(0.0)
        rows = xs[:: max(1, len(xs) // SQNR_ROWS)]  # the SQNR figure on a subsample, in fp32
        y_ref = rows @ w.T + b
        deq_w = dequantize_weight(q, w_scales).astype(np.float32)
        y_q = _fake_quant(rows, scales[x], opts.acts).astype(np.float32) @ deq_w.T + b
        report[lay.name] = {
            "bits": spec.bits,
            "granularity": spec.granularity.kind
            + (f":{spec.granularity.group}" if spec.granularity.group else ""),
            "act_scale": scales[x],
            "weight_scale_min": float(np.min(w_scales)),
            "weight_scale_max": float(np.max(w_scales)),
            "clip_fraction": clip_fraction(xs, scales[x], opts.acts),
            "sqnr_db": round(sqnr_db(y_ref, y_q), 2),
        }
        if x not in quantized:
            s_sym = f"{lay.name}.input_scale"
            weights[s_sym] = np.array([scales[x]], np.float32)
            s_op = _weight_op(s_sym, tensor((1,), f32))
            qop = quant.QuantizeOp.make(
                [x, s_op.result], tensor(shape_of(x.type), IntegerType(opts.acts))
            )
            for o in (s_op, qop):
                o.attributes.update(dict(lay.op.attributes))
            Rewriter.insert_op([s_op, qop], InsertPoint.before(lay.op))
            quantized[x] = qop.results[0]
        old = [lay.op.weight.owner, *([lay.op.bias.owner] if lay.op.bias is not None else [])]
        rewrite_layer(lay, weights, spec, scales[x], quantized[x], q, w_scales)
        for w_op in old:
            if isinstance(w_op, nn.WeightOp) and not w_op.result.uses:
                Rewriter.erase_op(w_op)
                if not _used(module, w_op.symbol):
                    weights.pop(w_op.symbol, None)
    return report


def _symbol(v: SSAValue) -> str:
    owner = v.owner
    assert isinstance(owner, nn.WeightOp)
    return owner.symbol


def _used(module: ModuleOp, symbol: str) -> bool:
    return any(isinstance(o, nn.WeightOp) and o.symbol == symbol for o in module.walk())


def _fake_quant(x: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """quant.quantize then dequantize by the same scale, in float64 (calibration figures)."""
    return quantize_values(x, scale, bits).astype(np.float64) * float(np.float32(scale))


def _qkv_source(
    v: SSAValue, scorers: Sequence[Operation] = ()
) -> tuple[quant.DequantizeOp, quant.LinearOp] | None:
    """(dequantize, linear) when `v` is a dequantize read only by the attention (and the token
    importance `scorers` of it) of a single-use ungrouped quant.linear with constant scales."""
    deq = v.owner
    if (
        not isinstance(deq, quant.DequantizeOp)
        or len({u.operation for u in v.uses} - set(scorers)) != 1
    ):
        return None
    lin = deq.input.owner
    if (
        not isinstance(lin, quant.LinearOp)
        or lin.int_prop("groups") != 1
        or len(list(lin.result.uses)) != 1
        or not isinstance(deq.scale.owner, nn.WeightOp)
    ):
        return None
    return deq, lin


def _scorers(attn: nn.AttentionOp) -> list[tokens.ImportanceOp]:
    """The tokens.importance ops scoring `attn` (its q, k and attention properties)."""
    return [
        u.operation
        for u in attn.query.uses
        if isinstance(u.operation, tokens.ImportanceOp)
        and (u.operation.query, u.operation.key) == (attn.query, attn.key)
        and all(u.operation.prop(p) == attn.prop(p) for p in tokens.ATTN_PROPS)
    ]


def _requant_int8(acc: np.ndarray, m: np.ndarray, shift: int) -> np.ndarray:
    """quant.requantize's formula (dialects/quant.py) on int64."""
    p = acc.astype(np.int64) * m.astype(np.int64).reshape(-1)
    if shift:
        p = (p >> shift) + ((p >> (shift - 1)) & 1)
    return np.clip(p, -128, 127)


def quantize_attention(
    module: ModuleOp,
    weights: MutableMapping[str, np.ndarray],
    calib: Calibration,
    opts: QuantOptions,
) -> tuple[dict[str, dict[str, float | int | str]], list[str]]:
    """Rewrite every nn.attention whose q, k, v come from quantized linears into quant.attention
    (see the module docstring); per-attention report and notes on the ones left alone."""
    todo: list[tuple[str, nn.AttentionOp, list[tuple[quant.DequantizeOp, quant.LinearOp]]]] = []
    notes: list[str] = []
    for n, attn in enumerate(o for o in module.walk() if isinstance(o, nn.AttentionOp)):
        if attn.mask is not None:
            notes.append(f"attention {n}: has a key-padding mask (left in floating point)")
            continue
        scorers = _scorers(attn)  # token-prune ran first: re-pointed at the int8 q and k below
        src = [_qkv_source(v, scorers) for v in (attn.query, attn.key, attn.value)]
        if any(x is None for x in src) or len({x[1] for x in src if x}) != 3:
            notes.append(
                f"attention {n}: q, k, v are not three single-use dequantized quant.linears "
                "(left in floating point)"
            )
            continue
        w_op = src[0][1].weight.owner  # type: ignore[index]
        sym = w_op.symbol if isinstance(w_op, nn.WeightOp) else f"attention{n}.q"
        name = sym.removesuffix(".weight.q").rsplit(".", 1)[0]
        todo.append((name, attn, src))  # type: ignore[arg-type]
    if not todo:
        return {}, notes
    samples = calib.inputs[: opts.samples]
    qkv = [v for _, a, _ in todo for v in (a.query, a.key, a.value)]
    keep = (
        qkv + [lin.result for _, _, src in todo for _, lin in src] + [a.result for _, a, _ in todo]
    )
    runs: list[dict[SSAValue, np.ndarray]] = []
    for vals in values_many(calib, module, weights, samples):
        runs.append({v: np.asarray(vals[v]) for v in keep})
    report: dict[str, dict[str, float | int | str]] = {}
    new: list[tuple[str, SSAValue, list[np.ndarray]]] = []
    for name, attn, src in todo:
        vals = (attn.query, attn.key, attn.value)
        flat = [np.concatenate([r[v].reshape(-1) for r in runs]) for v in vals]
        scales = [activation_scale(f, 8, opts.calib, opts.percentile) for f in flat]
        deqs = [np.asarray(weights[_symbol(d.scale)], np.float64).reshape(-1) for d, _ in src]
        widths = [shape_of(lin.result.type)[-1] for _, lin in src]
        ratios = [
            np.broadcast_to(d, (w,)) / s for d, w, s in zip(deqs, widths, scales, strict=True)
        ]
        mult, shift = fixed_point(np.concatenate(ratios))
        parts = np.split(mult, np.cumsum(widths)[:-1])
        ops: list[Operation] = []
        ints: list[SSAValue] = []
        s_vals: list[SSAValue] = []
        for what, (deq, lin), m, sc in zip("qkv", src, parts, scales, strict=True):
            lname = _symbol(deq.scale).removesuffix(".dequant")
            weights[f"{lname}.requant"] = m.astype(np.int32)
            m_op = _weight_op(f"{lname}.requant", tensor((m.size,), IntegerType(32)))
            rq = quant.RequantizeOp.make(
                [lin.result, m_op.result], tensor(shape_of(lin.result.type), IntegerType(8)),
                shift=shift,
            )  # fmt: skip
            weights[f"{name}.{what}_scale"] = np.array([sc], np.float32)
            s_op = _weight_op(f"{name}.{what}_scale", tensor((1,), f32))
            for o in (m_op, rq):
                o.attributes.update(dict(lin.attributes))
            Rewriter.insert_op([m_op, rq], InsertPoint.after(lin))
            ops.append(s_op)
            ints.append(rq.results[0])
            s_vals.append(s_op.result)
        qa = quant.AttentionOp.make([*ints, *s_vals], None, **cast(Any, attn.props_dict()))
        ops.append(qa)
        for o in ops:
            o.attributes.update(dict(attn.attributes))
        Rewriter.insert_op(ops, InsertPoint.before(attn))
        attn.results[0].replace_all_uses_with(qa.results[0])
        for imp in _scorers(attn):
            prior = [imp.prior] if imp.prior is not None else []
            qi = tokens.QuantImportanceOp.make(
                [ints[0], ints[1], s_vals[0], s_vals[1], *prior],
                None,
                **cast(Any, imp.props_dict()),
            )
            qi.attributes.update(dict(imp.attributes))
            Rewriter.insert_op(qi, InsertPoint.before(imp))
            imp.results[0].replace_all_uses_with(qi.results[0])
            Rewriter.erase_op(imp)
        Rewriter.erase_op(attn)
        for deq, _ in src:
            s_op = deq.scale.owner
            Rewriter.erase_op(deq)
            if isinstance(s_op, nn.WeightOp) and not s_op.result.uses:
                Rewriter.erase_op(s_op)
                if not _used(module, s_op.symbol):
                    weights.pop(s_op.symbol, None)
        clip = []  # fraction of q, k, v values at the int8 bounds after requantization
        for (_, lin), m in zip(src, parts, strict=True):
            q = _requant_int8(
                np.concatenate([r[lin.result].reshape(-1, m.size) for r in runs]), m, shift
            )
            clip.append(float(np.mean((q == 127) | (q == -128))))
        report[name] = {
            "q_scale": scales[0],
            "k_scale": scales[1],
            "v_scale": scales[2],
            "shift": shift,
            "saturated_q_k_v": ", ".join(f"{c:.4f}" for c in clip),
        }
        new.append((name, qa.results[0], [r[attn.result] for r in runs]))
    after = values_many(calib, module, weights, samples)
    for name, res, ref in new:  # output SQNR vs the float attention, on calibration data
        got = np.concatenate([np.asarray(vals[res]) for vals in after])
        report[name]["sqnr_db"] = round(sqnr_db(np.concatenate(ref), got), 2)
    return report, notes


def parse_bits(text: str, what: str) -> int:
    table = {"int8": 8, "int4": 4, "8": 8, "4": 4}
    if text not in table:
        raise PassError(f"{what}={text}: bits must be int8 or int4 (4 or 8)")
    return table[text]


@dataclass(frozen=True)
class QuantizePass(ModulePass):
    """Post-training quantization of linear layers (W8A8 / W4A8, per channel/tensor/group, RTN or GPTQ)."""

    name = "quantize"
    search_stage: ClassVar[Stage] = Stage(30, "bits")

    weights: str = field(
        default="int8",
        metadata={"search": Knob(("int8", "int4")), "help": "weight type: int8 | int4"},
    )
    acts: str = field(
        default="int8", metadata={"help": "activation type: int8 (integer matrix work)"}
    )
    granularity: str = field(
        default="channel",
        metadata={
            "search": Knob(("channel", "group:16")),
            "help": "weight scales: channel | tensor | group:G (G along K)",
        },
    )
    calib: str = field(
        default="minmax", metadata={"help": "activation calibration: minmax | percentile | mse"}
    )
    percentile: float = field(
        default=99.99, metadata={"help": "percentile of |x| for calib=percentile"}
    )
    method: str = field(default="rtn", metadata={"help": "weight rounding: rtn | gptq"})
    smooth: float = field(
        default=0.0, metadata={"help": "SmoothQuant migration strength alpha in [0, 1] (0: off)"}
    )
    samples: int = field(default=32, metadata={"help": "calibration samples"})
    layers: str = field(
        default="", metadata={"help": "fnmatch patterns of layer names (default: every linear)"}
    )
    skip: str = field(
        default="", metadata={"help": "fnmatch patterns of layers left in floating point"}
    )
    damp: float = field(
        default=0.01, metadata={"help": "GPTQ Hessian damping, relative to the mean diagonal"}
    )
    attn: str = field(
        default="fp16",
        metadata={
            "search": Knob(("fp16", "int8")),
            "help": "fp16 | int8 (quant.attention where q, k, v come from quantized linears)",
        },
    )
    stream: str = field(
        default="fp16",
        metadata={
            "search": Knob(("fp16", "int8")),
            "help": "fp16 | int8 (the residual stream between quantized layers in int8)",
        },
    )

    def options(self) -> QuantOptions:
        if self.acts != "int8":
            raise PassError(
                f"acts={self.acts}: only int8 activations are supported (the NPU has "
                "no fp16 x int MATMUL mode)"
            )
        if self.calib not in CALIB_METHODS:
            raise PassError(
                f"calib={self.calib}: unknown calibration method (one of "
                f"{', '.join(CALIB_METHODS)})"
            )
        if self.method not in METHODS:
            raise PassError(f"method={self.method}: unknown method (rtn or gptq)")
        if self.samples < 1:
            raise PassError(f"samples={self.samples}: must be >= 1")
        if not 0.0 <= self.smooth <= 1.0:
            raise PassError(f"smooth={self.smooth}: α must be in [0, 1]")
        if not 0.0 < self.percentile <= 100.0:
            raise PassError(f"percentile={self.percentile}: must be in (0, 100]")
        if self.damp < 0:
            raise PassError(f"damp={self.damp}: must be >= 0")
        if self.stream not in ("fp16", "int8"):
            raise PassError(f"stream={self.stream}: the residual stream must be fp16 or int8")
        if self.attn not in ("fp16", "int8"):
            raise PassError(f"attn={self.attn}: attention precision must be fp16 or int8")
        return QuantOptions(
            acts=8,
            calib=self.calib,
            percentile=self.percentile,
            method=self.method,
            smooth=self.smooth,
            samples=self.samples,
            damp=self.damp,
        )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        opts = self.options()
        bits = parse_bits(self.weights, "weights")
        try:
            gran = Granularity.parse(self.granularity)
        except ValueError as e:
            raise PassError(f"granularity={self.granularity}: {e}") from None
        weights = weights_of(ctx, self.name)
        chosen = select_layers(op, self.layers, self.skip, self.name)
        for lay in chosen:
            k = shape_of(lay.op.weight.type)[1]
            if gran.kind == "group" and k % gran.group:
                raise PassError(
                    f"granularity={self.granularity}: group size {gran.group} does not"
                    f" divide K = {k} of layer '{lay.name}'"
                )
        if not chosen:
            add_report(ctx, self.name, {"notes": ["no linear layer to quantize"]})
            return
        calib = calibration_of(ctx, self.name)
        specs = {lay.name: LayerSpec(bits, gran) for lay in chosen}
        smooth_notes: list[str] = []
        layers = quantize_layers(op, weights, calib, chosen, specs, opts, smooth_notes)
        notes = [
            f"{plural(len(layers), 'linear layer')} to W{bits}A8 ({self.granularity}, {self.method},"
            f" calib={self.calib}{f', smooth={self.smooth}' if self.smooth else ''})"
        ]
        out: dict = {"layers": layers}
        if self.attn == "int8":
            attn, attn_notes = quantize_attention(op, weights, calib, opts)
            out["attention"] = attn
            notes.append(
                f"{plural(len(attn), 'attention')} to int8 Q·Kᵀ and P·V"
                + "".join(f"; {k}: SQNR {v['sqnr_db']} dB" for k, v in attn.items())
            )
            notes += attn_notes
        if self.stream == "int8":
            from passes.quant_stream import quantize_stream

            stream = quantize_stream(op, weights, calib, opts.samples, opts.calib, opts.percentile)
            out["stream"] = stream
            notes.append(f"residual stream int8 after {plural(len(stream), 'residual add')}")
        out["notes"] = notes + smooth_notes
        add_report(ctx, self.name, out)
