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
