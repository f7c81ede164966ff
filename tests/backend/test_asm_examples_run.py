"""The hand-written examples/*.s run on the interpreter and match independent numpy oracles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.asm import assemble
from backend.interpreter import engine as interp
from backend.program import Program

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> Program:
    path = EXAMPLES / f"{name}.s"
    return assemble(path.read_text(), str(path))


def _array(p: Program, name: str) -> np.ndarray:
    s = p.symbols[name]
    n = s.dtype.nbytes(int(np.prod(s.shape)))
    raw = np.frombuffer(p.data[s.addr : s.addr + n], dtype=np.uint8)
    if s.dtype.name == "INT4":  # two signed nibbles per byte, low first
        nib = np.stack([raw & 0xF, raw >> 4], axis=-1).reshape(-1).astype(np.int8)
        return np.where(nib > 7, nib - 16, nib).reshape(s.shape)
    return raw.view(s.dtype.np_dtype).reshape(s.shape)


def _run(p: Program) -> dict[str, np.ndarray]:
    inputs = {s.name: _array(p, s.name) for s in p.symbols.values() if s.kind == "input"}
    return interp.run(p, inputs).outputs


def test_int8_matmul_requant() -> None:
    p = _load("int8_matmul_requant")
    acc = _array(p, "A").astype(np.int64) @ _array(p, "B").astype(np.int64)
    want = np.clip((acc * 19661 + (1 << 19)) >> 20, -128, 127).astype(np.int8)
    got = _run(p)["out"]
    assert np.array_equal(got, want)


def test_fp16_causal_softmax() -> None:
    p = _load("fp16_softmax")
    x = _array(p, "scores").astype(np.float64) * 0.125
    rows = 60 + np.arange(4)[:, None]
    x = np.where(np.arange(64)[None, :] > rows, -np.inf, x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    got = _run(p)["probs"].astype(np.float64)
    assert np.allclose(got, want, atol=2e-3)
    assert np.all(got[0, 61:] == 0) and np.all(got[2, 63:] == 0)


def test_topk_gather() -> None:
    p = _load("topk_gather")
    s = _array(p, "scores")[0]
    keep = np.sort(np.argsort(-s, kind="stable")[:16])
    got = _run(p)["K_kept"]
    assert np.array_equal(got, _array(p, "K")[keep])


@pytest.mark.parametrize(("threshold", "refetch"), [("0.15", True), ("0.01", False)])
def test_progressive_refetch(threshold: str, refetch: bool) -> None:
    text = (
        (EXAMPLES / "progressive_refetch.s").read_text().replace("imm=0.15,", f"imm={threshold},")
    )
    p = assemble(text)
    q = _array(p, "Q").astype(np.float64)
    k_msb = _array(p, "K_msb").astype(np.int64) << 4
    k_int8 = k_msb + (_array(p, "K_lsb").astype(np.int64) & 0xF)

    def softmax(k: np.ndarray) -> np.ndarray:
        x = (q @ k.T.astype(np.float64)) * np.float32(0.00002)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    msb_only = softmax(k_msb)
    assert (msb_only.max(axis=1).min() < float(threshold)) == refetch
    want = softmax(k_int8) if refetch else msb_only
    assert np.allclose(_run(p)["P"], want, atol=1e-6)
    assert not np.allclose(softmax(k_int8), msb_only, atol=1e-6)  # the two paths differ
