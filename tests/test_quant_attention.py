"""quant.attention: the reference against an independent integer/float64 statement of the formula,
the interpreter bit-exact with the reference on S, Pq, O and the output (random int8 q, k, v; every
config; causal and not; one query tile and several)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.compile import compile_module
from backend.interpreter.engine import run as npu_run
from backend.interpreter.semantics import HANDLERS
from compiler import reference
from compiler.ir import parse_module
from compiler.model import Model
from compiler.reference_qattention import qattention
from compiler.weights import WeightStore

CONFIGS = ("spatten", "fact", "edge")
SCALES = {"sq": 0.031, "sk": 0.027, "sv": 0.045}


def _module(sq: int, sk: int, heads: int, d: int, dv: int, causal: bool, out: str = "") -> Model:
    """int8 q, k, v inputs → quant.attention (→ `out`: extra IR consuming %o, result %r)."""
    tq, tk, tv = (
        f"tensor<{n}x{w}xi8>" for n, w in ((sq, heads * d), (sk, heads * d), (sk, heads * dv))
    )
    to = f"tensor<{sq}x{heads * dv}xf32>"
    ret, rt = ("%r", f"tensor<{sq}x{heads * dv}xi8>") if out else ("%o", to)
    text = f"""
func.func @main(%q: {tq}, %k: {tk}, %v: {tv}) -> {rt} {{
  %sq = nn.weight @sq : tensor<1xf32>
  %sk = nn.weight @sk : tensor<1xf32>
  %sv = nn.weight @sv : tensor<1xf32>
  %o = quant.attention %q, %k, %v, %sq, %sk, %sv {{heads = {heads}, qk_dim = {d}, v_dim = {dv}, scale = {d**-0.5!r}, causal = {str(causal).lower()}}} : ({tq}, {tk}, {tv}, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> {to}
{out}  func.return {ret} : {rt}
}}"""
    w = WeightStore({n: np.array([s], np.float32) for n, s in SCALES.items()})
    if out:
        w["so"] = np.array([0.013], np.float32)
    return Model("qa", parse_module(text), w)


def _inputs(sq: int, sk: int, heads: int, d: int, dv: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "q": rng.integers(-128, 128, (sq, heads * d)).astype(np.int8),
        "k": rng.integers(-128, 128, (sk, heads * d)).astype(np.int8),
        "v": rng.integers(-128, 128, (sk, heads * dv)).astype(np.int8),
    }


def _independent(x: dict[str, np.ndarray], heads: int, scale: float, causal: bool):
    """int64 scores; float64 softmax; the integer P·V of the reference's Pq (int64)."""
    q, k, v = (x[n].astype(np.int64) for n in "qkv")
    sq, sk = q.shape[0], k.shape[0]
    d, dv = q.shape[1] // heads, v.shape[1] // heads
    s = np.stack([q[:, h * d : (h + 1) * d] @ k[:, h * d : (h + 1) * d].T for h in range(heads)])
    c = float(np.float32(np.float32(np.float32(0.031) * np.float32(0.027)) * np.float32(scale)))
    logits = s * c
    if causal:
        logits = np.where(
            np.arange(sk)[None, :] > np.arange(sq)[:, None] + sk - sq, -np.inf, logits
        )
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    p64 = e / e.sum(axis=2, keepdims=True)
    return s, p64, v, dv


@pytest.mark.parametrize("causal", [False, True])
def test_reference_vs_independent(causal: bool) -> None:
    sq, sk, heads, d, dv = 24, 40, 2, 16, 8
    x = _inputs(sq, sk, heads, d, dv, seed=1)
    scale = d**-0.5
    r = qattention(x["q"], x["k"], x["v"], *(np.array([s], np.float32) for s in SCALES.values()),
                   heads, scale, causal)  # fmt: skip
    s, p64, v, dv = _independent(x, heads, scale, causal)
    assert np.array_equal(r.scores.astype(np.int64), s)
    # fp32 softmax vs float64: Pq within one step of rne(127·P), and exactly rne where unambiguous
    diff = np.abs(r.probs.astype(np.int64) - np.rint(127 * p64))
    assert diff.max() <= 1
    assert np.mean(diff) < 1e-3
    if causal:
        assert np.all(r.probs[:, np.arange(sk)[None, :] > np.arange(sq)[:, None] + sk - sq] == 0)
    o = np.stack([r.probs[h].astype(np.int64) @ v[:, h * dv : (h + 1) * dv] for h in range(heads)])
    assert np.array_equal(r.acc.astype(np.int64), o)
    cv = float(np.float32(np.float32(0.045) / np.float32(127)))
    want = np.concatenate([(o[h] * cv).astype(np.float32) for h in range(heads)], axis=1)
    assert np.array_equal(r.out, want)
    # and the whole thing approximates float attention on the dequantized values
    vf = x["v"].astype(np.float64) * 0.045
    att = np.concatenate([p64[h] @ vf[:, h * dv : (h + 1) * dv] for h in range(heads)], axis=1)
    assert np.abs(r.out - att).max() <= 0.5 * 0.045 * sk / 127 * 128 / 2


SHAPES = [(24, 40, 2, 16, 8), (65, 65, 4, 16, 16), (130, 150, 2, 32, 32)]


def _recording(monkeypatch) -> list[tuple[str, np.ndarray]]:
    """Wrap the interpreter's MATMUL and MOVE handlers to record the tiles they write."""
    seen: list[tuple[str, np.ndarray]] = []
    for name in ("MATMUL", "MOVE"):
        inner = HANDLERS[name]

        def wrapped(m, i, o, inner=inner, name=name):
            r = inner(m, i, o)
            dst = o["c" if name == "MATMUL" else "dst"]
            seen.append((name, np.array(m.read(dst))))
            return r

        monkeypatch.setitem(HANDLERS, name, wrapped)
    return seen


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_interpreter_bit_exact(config: str, causal: bool, shape, monkeypatch) -> None:
    """Interpreter == reference: every int32 S and O tile and every int8 Pq tile the machine
    writes equals the reference's, and the fp16 output is f16(reference fp32 output) exactly."""
    sq, sk, heads, d, dv = shape
    m = _module(*shape, causal)
    x = _inputs(*shape, seed=sq + int(causal))
    ref = reference.run(m, x)["out0"]
    parts = qattention(x["q"], x["k"], x["v"], *(np.array([s], np.float32) for s in SCALES.values()),
                       heads, d**-0.5, causal)  # fmt: skip
    assert np.array_equal(parts.out, ref)
    c = compile_module(m.module, m.weights, config)
    seen = _recording(monkeypatch)
    res = npu_run(c.program, x, config)
    got = res.outputs["out0"]
    assert got.dtype == np.float16
    assert np.array_equal(got.view(np.uint16), ref.astype(np.float16).view(np.uint16))
    assert not res.report.unconsumed_tokens
    # queues run out of program order: find each recorded tile among the reference's rows
    mm = [a for n, a in seen if n == "MATMUL"]
    pq = [a for n, a in seen if n == "MOVE" and a.dtype == np.int8]
    for tiles, want in ((mm, parts.scores), (mm, parts.acc), (pq, parts.probs)):
        covered = np.zeros(want.shape[:2], int)
        for t in tiles:
            if t.shape[1] != want.shape[2]:
                continue
            hits = [(h, r) for h in range(heads) for r in range(sq - t.shape[0] + 1)
                    if np.array_equal(want[h, r : r + t.shape[0]], t)]  # fmt: skip
            assert hits, "a tile the machine wrote matches no rows of the reference"
            h, r = hits[0]
            covered[h, r : r + t.shape[0]] += 1
        assert np.all(covered == 1)


@pytest.mark.parametrize("config", CONFIGS)
def test_fused_output_quantize(config: str) -> None:
    """quant.attention → quant.quantize: stored as int8 by the attention itself, bit-exact."""
    shape = (40, 48, 2, 16, 16)
    tail = (
        "  %so = nn.weight @so : tensor<1xf32>\n"
        "  %r = quant.quantize %o, %so : (tensor<40x32xf32>, tensor<1xf32>) -> tensor<40x32xi8>\n"
    )
    m = _module(*shape, False, out=tail)
    x = _inputs(*shape, seed=7)
    ref = reference.run(m, x)["out0"]
    c = compile_module(m.module, m.weights, config)
    assert all("quant.quantize" not in (i.comment or "") for i in c.program.instrs)
    got = npu_run(c.program, x, config).outputs["out0"]
    assert got.dtype == np.int8 and np.array_equal(got, ref)


# ---- the quantize pass with attn=int8, the merged requantizing q/k/v GEMM ----------------------


def test_merged_requant_gemm_bit_exact() -> None:
    """Two quant.linears on one int8 input, each → quant.requantize (one shift, own per-channel
    multipliers): one GEMM whose REQUANT row holds both multiplier rows; int8 outputs equal the
    reference and an independent int64 computation, on every config."""
    rng = np.random.default_rng(11)
    m, k, n1, n2, shift = 40, 64, 48, 32, 30
    w1, w2 = (rng.integers(-128, 128, (n, k)).astype(np.int8) for n in (n1, n2))
    m1, m2 = (rng.integers(1 << 20, 1 << 22, n).astype(np.int32) for n in (n1, n2))
    weights = {"w1": w1, "w2": w2, "m1": m1, "m2": m2}
    body = "".join(
        f"""    %w{i} = nn.weight @w{i} : tensor<{n}x{k}xi8>
    %a{i} = quant.linear %x, %w{i} {{groups = 1}} : (tensor<{m}x{k}xi8>, tensor<{n}x{k}xi8>) -> tensor<{m}x{n}xi32>
    %m{i} = nn.weight @m{i} : tensor<{n}xi32>
    %y{i} = quant.requantize %a{i}, %m{i} {{shift = {shift}}} : (tensor<{m}x{n}xi32>, tensor<{n}xi32>) -> tensor<{m}x{n}xi8>
"""
        for i, n in ((1, n1), (2, n2))
    )
    body += f"    func.return %y1, %y2 : tensor<{m}x{n1}xi8>, tensor<{m}x{n2}xi8>"
    sig = f"%x: tensor<{m}x{k}xi8>) -> (tensor<{m}x{n1}xi8>, tensor<{m}x{n2}xi8>)"
    model = Model("mr", parse_module(f"func.func @main({sig} {{\n{body}\n}}"), WeightStore(weights))
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    want = []
    for w, mm in ((w1, m1), (w2, m2)):
        acc = x.astype(np.int64) @ w.T.astype(np.int64)
        want.append(np.clip((acc * mm.astype(np.int64) + (1 << (shift - 1))) >> shift, -128, 127))
    ref = reference.run(model, {"x": x})
    for i in range(2):
        assert np.array_equal(ref[f"out{i}"].astype(np.int64), want[i])
    for config in CONFIGS:
        c = compile_module(model.module, model.weights, config)
        rq = [i for i in c.program.instrs if i.cls.name == "REQUANT"]
        lin = [i for i in c.program.instrs if "quant.linear" in (i.comment or "")]
        assert rq and {i.comment for i in lin} == {lin[0].comment}  # one GEMM for both
        got = npu_run(c.program, {"x": x}, config).outputs
        for i in range(2):
            assert got[f"out{i}"].dtype == np.int8 and np.array_equal(
                got[f"out{i}"], ref[f"out{i}"]
            )


ZOO = {
    "deit-tiny": {"layers": 2, "dim": 64, "heads": 2, "mlp_dim": 128, "image": 32, "patch": 8},
    "bert-tiny": {"layers": 1, "dim": 64, "heads": 2, "mlp_dim": 128, "seq": 16, "vocab": 100},
    "gpt2": {"layers": 1, "dim": 64, "heads": 2, "mlp_dim": 128, "seq": 16, "vocab": 100},
}


def _zoo(name: str):
    from compiler.models.zoo import build

    m = build(name, **ZOO[name])
    for k in list(m.weights):  # as tests/backend/compile_util.small_zoo: outputs O(1)
        if not k.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            m.weights[k] = (m.weights[k] * 5).astype(np.float32)
    return m


def test_pass_rewrite_shares_one_shift() -> None:
    """attn=int8: every nn.attention → quant.attention on requantized q, k, v with one shift, and
    multipliers M / 2^shift = dequant scale / calibrated output scale (within the rounding of M)."""
    from compiler.pipeline import run_pipeline

    m = _zoo("deit-tiny")  # the same linears without attn=int8: their dequantize scales
    run_pipeline(m, "quantize{samples=4}", quiet=True)
    deq = {k: np.asarray(v, np.float64) for k, v in m.weights.items() if k.endswith(".dequant")}
    m2 = _zoo("deit-tiny")
    run_pipeline(m2, "quantize{samples=4 attn=int8}", quiet=True)
    text = str(m2.module)
    assert "nn.attention" not in text and text.count("quant.attention") == 2
    ops = [o for o in m2.module.walk() if o.name == "quant.requantize"]
    assert len(ops) == 6
    for layer in range(2):
        shifts = set()
        for what in "qkv":
            rq = next(
                o for o in ops if o.multiplier.owner.symbol == f"blocks.{layer}.attn.{what}.requant"
            )
            shifts.add(rq.int_prop("shift"))
            mult = np.asarray(m2.weights[f"blocks.{layer}.attn.{what}.requant"], np.float64)
            s_out = float(m2.weights[f"blocks.{layer}.attn.{what}_scale"][0])
            want = deq[f"blocks.{layer}.attn.{what}.dequant"] / s_out
            got = mult / 2.0 ** rq.int_prop("shift")
            assert np.all(np.abs(got - want) <= 0.5 / 2.0 ** rq.int_prop("shift") * (1 + 1e-9))
            assert f"blocks.{layer}.attn.{what}.dequant" not in m2.weights
        assert len(shifts) == 1


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_int8_attention_on_interpreter(name: str, config: str) -> None:
    """W8A8 + int8 attention compiled and run (gpt2: causal): within the fp16 tolerance of the
    quantized reference (the residual stream is fp16 on the NPU, fp32 in the reference)."""
    from compiler.api import compile_model

    m = _zoo(name)
    prog = compile_model(m, pipeline="quantize{samples=4 attn=int8}", target=config)
    assert any(i.cls.name == "MATMUL" and "quant.attention" in (i.comment or "")
               for i in prog.compiled.program.instrs)  # fmt: skip
    rng = np.random.default_rng(1)
    inputs = {
        k: rng.integers(0, 100, s).astype(np.int32) if dt.kind == "i"
        else rng.standard_normal(s).astype(np.float32)
        for k, (s, dt) in m.input_specs().items()
    }  # fmt: skip
    got = prog.run(inputs).outputs["out0"].astype(np.float32)
    want = prog.reference(inputs)["out0"]
    err = float(np.max(np.abs(got - want)))
    assert err <= 5e-2 * max(1.0, float(np.max(np.abs(want)))), err


def test_bad_attn_option() -> None:
    from compiler.errors import WispError
    from compiler.pipeline import run_pipeline

    m = _zoo("bert-tiny")
    with pytest.raises(WispError, match="attn=int4: attention precision must be fp16 or int8"):
        run_pipeline(m, "quantize{attn=int4}", quiet=True)


def test_digits_vit_int8_attention_accuracy() -> None:
    """digits-vit W8A8 + int8 attention on the 360 test images: the interpreter's predictions vs
    the quantized reference's, and accuracy within 0.5 points of the fp16 reference's."""
    from compiler.api import compile_model, reference
    from compiler.datasets import load_digits_test

    images, labels = load_digits_test()
    dense = [int(np.argmax(reference("digits-vit", {"image": x})["out0"])) for x in images]
    fp16 = float(np.mean(np.array(dense) == labels))
    prog = compile_model(
        "digits-vit", pipeline="quantize{weights=int8 attn=int8}", target="spatten"
    )
    npu = [int(np.argmax(prog.run({"image": x}).outputs["out0"])) for x in images]
    ref = [int(np.argmax(prog.reference({"image": x})["out0"])) for x in images]
    agree = sum(a == b for a, b in zip(npu, ref, strict=True))
    acc = [float(np.mean(np.array(p) == labels)) for p in (npu, ref)]
    print(f"agree {agree}/360, accuracy npu {acc[0]:.4f} ref {acc[1]:.4f}")
    assert agree >= 358
    assert all(abs(a - fp16) <= 0.005 for a in acc)
