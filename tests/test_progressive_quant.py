"""progressive-quant / quant.progressive_attention: the op against an independent numpy formula,
refetch decisions of the reference == the interpreter's (and the LSB DMA charged only then), the
threshold extremes, and bad options."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from backend.compile import compile_module
from backend.interpreter.engine import run as npu_run
from compiler import reference
from compiler.errors import WispError
from compiler.ir import parse_module
from compiler.model import Model
from compiler.pipeline import run_pipeline
from compiler.weights import WeightStore
from passes.progressive_math import progressive_attention

SQ, SK, H, D = 40, 48, 2, 16
PARAMS = dict(heads=H, scale=0.25, block=16)


def _module(thr: float, causal: bool = False) -> Model:
    t = f"tensor<{SQ}x{H * D}xf32>"
    tk = f"tensor<{SK}x{H * D}xf32>"
    text = f"""
func.func @main(%q: {t}, %k: {tk}, %v: {tk}) -> {t} {{
  %sq = nn.weight @sq : tensor<1xf32>
  %sk = nn.weight @sk : tensor<1xf32>
  %qq = quant.quantize %q, %sq : ({t}, tensor<1xf32>) -> tensor<{SQ}x{H * D}xi8>
  %kq = quant.quantize %k, %sk : ({tk}, tensor<1xf32>) -> tensor<{SK}x{H * D}xi8>
  %o = quant.progressive_attention %qq, %kq, %v, %sq, %sk {{heads = {H}, qk_dim = {D}, v_dim = {D}, scale = 0.25, causal = {str(causal).lower()}, threshold = {thr!r}, block = 16}} : (tensor<{SQ}x{H * D}xi8>, tensor<{SK}x{H * D}xi8>, {tk}, tensor<1xf32>, tensor<1xf32>) -> {t}
  func.return %o : {t}
}}"""
    w = WeightStore({"sq": np.array([0.02], np.float32), "sk": np.array([0.03], np.float32)})
    return Model("pq", parse_module(text), w)


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    spread = np.repeat([0.5, 1.4], D)[None, :]  # head 0 flat, head 1 peaked
    rows = np.linspace(0.3, 1.6, SQ)[:, None]  # later row blocks more peaked
    q = rng.standard_normal((SQ, H * D)) * spread * rows
    k = rng.standard_normal((SK, H * D)) * spread
    v = rng.standard_normal((SK, H * D))
    return {
        n: a.astype(np.float16).astype(np.float32) for n, a in zip("qkv", (q, k, v), strict=True)
    }


def _quantized(x: np.ndarray, s: float) -> np.ndarray:
    return np.clip(np.rint(x * (np.float32(1) / np.float32(s))), -128, 127).astype(np.int64)


def _numpy_formula(x: dict[str, np.ndarray], thr: float, causal: bool):
    """Independent statement of the docstring's formula (whole score matrices, float64 where
    exact: int products, then the fp32 roundings the op defines)."""
    q, k = _quantized(x["q"], 0.02), _quantized(x["k"], 0.03)
    k_msb = np.floor_divide(k, 16) * 16
    deq = np.float32(np.float32(0.02) * np.float32(0.03))
    out = np.zeros((SQ, H * D))
    dec = np.zeros((H, -(-SQ // 16)), bool)
    mask = np.arange(SK)[None, :] > np.arange(SQ)[:, None] + SK - SQ

    def probs(kk: np.ndarray, h: int) -> np.ndarray:
        s = (q[:, h * D : (h + 1) * D] @ kk[:, h * D : (h + 1) * D].T).astype(np.float32)
        s = (s * deq) * np.float32(0.25)
        if causal:
            s[mask] = -np.inf
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for h in range(H):
        lo, full = probs(k_msb, h), probs(k, h)
        for b in range(dec.shape[1]):
            rows = slice(16 * b, 16 * (b + 1))
            dec[h, b] = lo[rows].max(axis=1).min() < np.float32(thr)
            p = full[rows] if dec[h, b] else lo[rows]
            out[rows, h * D : (h + 1) * D] = p @ x["v"][:, h * D : (h + 1) * D]
    return out, dec


def _ref_decisions(model: Model, x: dict[str, np.ndarray]) -> np.ndarray:
    vals: dict = {}
    reference.run(model, x, values=vals)
    op = next(o for o in model.module.walk() if o.name == "quant.progressive_attention")
    a = [vals[v] for v in op.operands]
    return progressive_attention(
        *a, H, 0.25, op.bool_prop("causal"), op.float_prop("threshold"), 16
    )[1]


@pytest.mark.parametrize("causal", [False, True])
def test_op_matches_numpy_formula(causal: bool) -> None:
    seen = []
    for seed in range(3):
        x = _inputs(seed)
        model = _module(0.1, causal)
        want, dec = _numpy_formula(x, 0.1, causal)
        got = reference.run(model, x)["out0"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert (_ref_decisions(model, x) == dec).all()
        seen.append(dec)
    assert np.any(seen) and not np.all(seen)  # the inputs exercise both branches


def _npu_decisions(model: Model, x: dict[str, np.ndarray]):
    """Per (head, block) decisions from the interpreter's trace: the predicated int8 MATMULs
    (block n uses p(3 + n mod 13); predicate dependencies keep each register's uses in order)."""
    comp = compile_module(model.module, model.weights, "spatten")
    res = npu_run(comp.program, {n: a.astype(np.float16) for n, a in x.items()}, trace=True)
    skipped = {e["args"]["index"]: e["args"].get("skipped", False) for e in res.trace_events
               if "args" in e and "index" in e["args"]}  # fmt: skip
    nb = -(-SQ // 16)
    dec = np.zeros((H, nb), bool)
    seen: dict[int, int] = {}
    lsb_loads = 0
    for i, ins in enumerate(comp.program.instrs):
        if ins.cls.name == "LOADBP" and ins.pred and not skipped[i]:
            lsb_loads += 1
        if ins.cls.name != "MATMUL" or not ins.pred:
            continue
        j = seen.get(ins.pred, 0)
        seen[ins.pred] = j + 1
        n = ins.pred - 3 + 13 * j
        dec[n // nb, n % nb] = not skipped[i]
    return dec, lsb_loads, res


def test_decisions_reference_equal_interpreter() -> None:
    model = _module(0.1)
    for seed in range(3):
        x = _inputs(seed)
        dec, lsb_loads, res = _npu_decisions(model, x)
        assert (dec == _ref_decisions(model, x)).all()
        assert lsb_loads == dec.any(axis=1).sum()  # the LSB plane at most once per head
    # the LSB DMA is charged once per head with a refetching block, never otherwise
    never = _npu_decisions(_module(0.0), x)[2].report.dram_read
    always = _npu_decisions(_module(1.0), x)[2].report.dram_read
    per_head = (always - never) / H
    assert per_head >= SK * D // 2  # one [SK, D] int4 plane (bursts may round it up)
    assert res.report.dram_read - never == lsb_loads * per_head


def test_threshold_extremes() -> None:
    x = _inputs(1)
    assert not _ref_decisions(_module(0.0), x).any()
    assert _ref_decisions(_module(1.0), x).all()
    # threshold 1: always refetched, so it is the full int8 attention (independent formula)
    q, k = _quantized(x["q"], 0.02), _quantized(x["k"], 0.03)
    got = reference.run(_module(1.0), x)["out0"]
    for h in range(H):
        c = slice(h * D, (h + 1) * D)
        s = (q[:, c] @ k[:, c].T).astype(np.float64) * (0.02 * 0.03 * 0.25)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(got[:, c], p @ x["v"][:, c], rtol=1e-4, atol=1e-4)


def _with_attention() -> Model:
    from compiler.models import build

    return build("deit-tiny", layers=1, image=32, patch=16, dim=32, heads=2)


@pytest.mark.parametrize(
    "opts, word",
    [("msb=3", "msb=3"), ("k_bits=12", "k_bits=12"), ("threshold=1.5", "threshold=1.5"),
     ("threshold=-0.1", "threshold=-0.1"), ("layers=nothing", "layers=nothing")],
)  # fmt: skip
def test_bad_options(opts: str, word: str) -> None:
    with pytest.raises(WispError, match=f"progressive-quant: {word}"):
        run_pipeline(_with_attention(), f"progressive-quant{{{opts}}}")


def test_cli_bad_option_one_line() -> None:
    r = subprocess.run(
        ["wisp", "compile", "digits-vit", "-p", "progressive-quant{msb=6}", "-o", "/nonexistent/x"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "progressive-quant: msb=6" in r.stderr
