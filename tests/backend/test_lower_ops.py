"""Each nn op lowered alone, run on the interpreter and compared with the reference executor."""

from __future__ import annotations

import numpy as np
import pytest
from compile_util import check, model_from_ir

R = np.random.default_rng(1)


def w(*shape: int, std: float = 0.3) -> np.ndarray:
    return (R.standard_normal(shape) * std).astype(np.float32)


def t(*shape: int) -> str:
    return f"tensor<{'x'.join(map(str, shape))}xf32>"


CASES: dict[str, tuple[str, str, str, dict[str, np.ndarray]]] = {
    "linear_bias": (
        f"""    %w = nn.weight @w : {t(48, 40)}
    %b = nn.weight @b : {t(48)}
    %y = nn.linear %x, %w, %b : ({t(20, 40)}, {t(48, 40)}, {t(48)}) -> {t(20, 48)}
    func.return %y : {t(20, 48)}""",
        f"%x: {t(20, 40)}", t(20, 48), {"w": w(48, 40), "b": w(48)},
    ),
    "linear_nobias_gelu": (
        f"""    %w = nn.weight @w : {t(64, 32)}
    %y = nn.linear %x, %w : ({t(8, 32)}, {t(64, 32)}) -> {t(8, 64)}
    %z = nn.gelu %y {{approximate = "none"}} : ({t(8, 64)}) -> {t(8, 64)}
    func.return %z : {t(8, 64)}""",
        f"%x: {t(8, 32)}", t(8, 64), {"w": w(64, 32)},
    ),
    "linear_residual": (
        f"""    %w = nn.weight @w : {t(96, 64)}
    %b = nn.weight @b : {t(96)}
    %y = nn.linear %x, %w, %b : ({t(40, 64)}, {t(96, 64)}, {t(96)}) -> {t(40, 96)}
    %o = nn.add %r, %y : ({t(40, 96)}, {t(40, 96)}) -> {t(40, 96)}
    func.return %o : {t(40, 96)}""",
        f"%x: {t(40, 64)}, %r: {t(40, 96)}", t(40, 96), {"w": w(96, 64), "b": w(96)},
    ),
    "matmul": (
        f"""    %y = nn.matmul %a, %b {{transpose_b = false}} : ({t(24, 16)}, {t(16, 40)}) -> {t(24, 40)}
    func.return %y : {t(24, 40)}""",
        f"%a: {t(24, 16)}, %b: {t(16, 40)}", t(24, 40), {},
    ),
    "matmul_tb_batched": (
        f"""    %y = nn.matmul %a, %b {{transpose_b = true}} : ({t(3, 12, 16)}, {t(3, 10, 16)}) -> {t(3, 12, 10)}
    func.return %y : {t(3, 12, 10)}""",
        f"%a: {t(3, 12, 16)}, %b: {t(3, 10, 16)}", t(3, 12, 10), {},
    ),
    "add_sub_mul_div_broadcast": (
        f"""    %r = nn.weight @r : {t(32)}
    %c = nn.weight @c : {t(10, 1)}
    %s = nn.weight @s : {t(1)}
    %a = nn.add %x, %r : ({t(10, 32)}, {t(32)}) -> {t(10, 32)}
    %b = nn.sub %a, %c : ({t(10, 32)}, {t(10, 1)}) -> {t(10, 32)}
    %m = nn.mul %b, %s : ({t(10, 32)}, {t(1)}) -> {t(10, 32)}
    %d = nn.div %m, %y : ({t(10, 32)}, {t(10, 32)}) -> {t(10, 32)}
    %e = nn.add %r, %d : ({t(32)}, {t(10, 32)}) -> {t(10, 32)}
    func.return %e : {t(10, 32)}""",
        f"%x: {t(10, 32)}, %y: {t(10, 32)}", t(10, 32),
        {"r": w(32), "c": w(10, 1), "s": np.array([1.5], np.float32)},
    ),
    "layer_norm_tanh_relu_gelu_tanh": (
        f"""    %g = nn.weight @g : {t(48)}
    %b = nn.weight @b : {t(48)}
    %n = nn.layer_norm %x, %g, %b {{eps = 1.0e-05}} : ({t(12, 48)}, {t(48)}, {t(48)}) -> {t(12, 48)}
    %h = nn.tanh %n : ({t(12, 48)}) -> {t(12, 48)}
    %r = nn.relu %n : ({t(12, 48)}) -> {t(12, 48)}
    %s = nn.gelu %r {{approximate = "tanh"}} : ({t(12, 48)}) -> {t(12, 48)}
    %o = nn.add %h, %s : ({t(12, 48)}, {t(12, 48)}) -> {t(12, 48)}
    func.return %o : {t(12, 48)}""",
        f"%x: {t(12, 48)}", t(12, 48), {"g": 1 + w(48), "b": w(48)},
    ),
    "softmax": (
        f"""    %y = nn.softmax %x {{axis = -1}} : ({t(9, 33)}) -> {t(9, 33)}
    func.return %y : {t(9, 33)}""",
        f"%x: {t(9, 33)}", t(9, 33), {},
    ),
    "reshape_transpose": (
        f"""    %r = nn.reshape %x : ({t(8, 24)}) -> {t(8, 2, 12)}
    %p = nn.transpose %r {{perm = [1, 0, 2]}} : ({t(8, 2, 12)}) -> {t(2, 8, 12)}
    %q = nn.reshape %p : ({t(2, 8, 12)}) -> {t(16, 12)}
    %u = nn.transpose %q {{perm = [1, 0]}} : ({t(16, 12)}) -> {t(12, 16)}
    func.return %u : {t(12, 16)}""",
        f"%x: {t(8, 24)}", t(12, 16), {},
    ),
    "concat_slice": (
        f"""    %c = nn.weight @c : {t(1, 16)}
    %a = nn.concat %c, %x {{axis = 0}} : ({t(1, 16)}, {t(6, 16)}) -> {t(7, 16)}
    %b = nn.concat %a, %a {{axis = 1}} : ({t(7, 16)}, {t(7, 16)}) -> {t(7, 32)}
    %s = nn.slice %b {{offsets = [2, 8]}} : ({t(7, 32)}) -> {t(4, 20)}
    func.return %s, %a : {t(4, 20)}, {t(7, 16)}""",
        f"%x: {t(6, 16)}", f"({t(4, 20)}, {t(7, 16)})", {"c": w(1, 16)},
    ),
    "gather_slice_weight": (
        f"""    %e = nn.weight @e : {t(50, 24)}
    %g = nn.gather %e, %ids : ({t(50, 24)}, tensor<10xi32>) -> {t(10, 24)}
    %p = nn.weight @p : {t(40, 24)}
    %s = nn.slice %p {{offsets = [3, 0]}} : ({t(40, 24)}) -> {t(10, 24)}
    %o = nn.add %g, %s : ({t(10, 24)}, {t(10, 24)}) -> {t(10, 24)}
    func.return %o : {t(10, 24)}""",
        "%ids: tensor<10xi32>", t(10, 24), {"e": w(50, 24), "p": w(40, 24)},
    ),
    "patch_embed": (
        f"""    %w = nn.weight @w : {t(32, 48)}
    %b = nn.weight @b : {t(32)}
    %y = nn.patch_embed %img, %w, %b {{patch = 4}} : ({t(3, 16, 12)}, {t(32, 48)}, {t(32)}) -> {t(12, 32)}
    func.return %y : {t(12, 32)}""",
        f"%img: {t(3, 16, 12)}", t(12, 32), {"w": w(32, 48), "b": w(32)},
    ),
    "attention": (
        f"""    %a = nn.attention %q, %k, %v {{heads = 2, qk_dim = 16, v_dim = 8, scale = 0.25, causal = false}} : ({t(20, 32)}, {t(24, 32)}, {t(24, 16)}) -> {t(20, 16)}
    func.return %a : {t(20, 16)}""",
        f"%q: {t(20, 32)}, %k: {t(24, 32)}, %v: {t(24, 16)}", t(20, 16), {},
    ),
    "attention_causal": (
        f"""    %a = nn.attention %q, %k, %v {{heads = 3, qk_dim = 8, v_dim = 8, scale = 0.35355339059327373, causal = true}} : ({t(10, 24)}, {t(16, 24)}, {t(16, 24)}) -> {t(10, 24)}
    func.return %a : {t(10, 24)}""",
        f"%q: {t(10, 24)}, %k: {t(16, 24)}, %v: {t(16, 24)}", t(10, 24), {},
    ),
}  # fmt: skip


@pytest.mark.parametrize("config", ["spatten", "edge"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_op(case: str, config: str) -> None:
    body, args, result, weights = CASES[case]
    m = model_from_ir(body, args, result, weights)
    inputs = {}
    for k, (shape, dt) in m.input_specs().items():
        inputs[k] = (
            R.integers(0, 50, shape).astype(np.int32)
            if dt.kind == "i"
            else (
                R.standard_normal(shape) + (2.5 if case.startswith("add_sub") and k == "y" else 0)
            ).astype(np.float32)
        )
    check(m, config, inputs)


def test_residual_not_fused(monkeypatch: pytest.MonkeyPatch) -> None:
    """When fusing the residual add does not pay, the linear emits GEMM + separate add."""
    from backend.compile import compile_module
    from backend.lower import rules_dense

    body, args, result, weights = CASES["linear_residual"]
    m = model_from_ir(body, args, result, weights)
    fused = compile_module(m.module, m.weights, "spatten").program.instrs
    monkeypatch.setattr(rules_dense, "residual_pays", lambda *a: False)
    inputs = {k: R.standard_normal(s).astype(np.float32) for k, (s, _) in m.input_specs().items()}
    c, _ = check(m, "spatten", inputs)

    def stores(instrs: list) -> int:
        return sum(i.cls.name == "STORE" for i in instrs)

    assert stores(c.program.instrs) > stores(fused)  # the GEMM result round-trips through DRAM


def test_attention_long_keys_split_kv() -> None:
    """K and V of a head do not fit wgt together on edge: V goes to vec (long sequences)."""
    sk = 300
    body = f"""    %a = nn.attention %q, %k, %v {{heads = 2, qk_dim = 64, v_dim = 64, scale = 0.125, causal = true}} : ({t(40, 128)}, {t(sk, 128)}, {t(sk, 128)}) -> {t(40, 128)}
    func.return %a : {t(40, 128)}"""
    m = model_from_ir(body, f"%q: {t(40, 128)}, %k: {t(sk, 128)}, %v: {t(sk, 128)}", t(40, 128), {})
    inputs = {k: R.standard_normal(s).astype(np.float32) for k, (s, _) in m.input_specs().items()}
    c, _ = check(m, "edge", inputs)
    assert any(i.cls.name == "MATMUL" and i.args["b_buf"] == 3 for i in c.program.instrs)


@pytest.mark.parametrize("case", ["attention", "attention_causal"])
def test_attention_per_head_path(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-head lowering (used when K and V of all heads do not fit SRAM)."""
    from backend.lower import rules_dense

    monkeypatch.setattr(rules_dense, "BATCH_HEADS", False)
    body, args, result, weights = CASES[case]
    m = model_from_ir(body, args, result, weights)
    inputs = {k: R.standard_normal(s).astype(np.float32) for k, (s, _) in m.input_specs().items()}
    c, _ = check(m, "spatten", inputs)
    assert sum(i.cls.name == "ROW" for i in c.program.instrs) >= int(
        m.main.body.block.ops.first.int_prop("heads")
    )  # type: ignore[union-attr]


LN_LINEAR = f"""    %g = nn.weight @g : {t(256)}
    %b = nn.weight @b : {t(256)}
    %n = nn.layer_norm %x, %g, %b {{eps = 1.0e-06}} : ({t(40, 256)}, {t(256)}, {t(256)}) -> {t(40, 256)}
    %w = nn.weight @w : {t(48, 256)}
    %y = nn.linear %n, %w : ({t(40, 256)}, {t(48, 256)}) -> {t(40, 48)}
    func.return %y : {t(40, 48)}"""


def _ln_linear_model():
    weights = {"g": 1 + w(256), "b": w(256), "w": w(48, 256, std=0.1)}
    return model_from_ir(LN_LINEAR, f"%x: {t(40, 256)}", t(40, 48), weights)


def test_layer_norm_as_gemm_prologue() -> None:
    """A layer norm read only by a linear runs on the GEMM's A tiles (no DRAM round trip)."""
    m = _ln_linear_model()
    inputs = {"x": (R.standard_normal((40, 256)) * 3 + 1).astype(np.float32)}
    c, _ = check(m, "spatten", inputs)
    rows = [i for i in c.program.instrs if i.cls.name == "ROW"]
    assert rows and all("nn.linear" in i.comment for i in rows)
    assert sum(i.cls.name == "STORE" for i in c.program.instrs) == 1


def test_layer_norm_prologue_falls_back_when_rows_do_not_fit() -> None:
    """With a tiny act buffer no plan keeps whole rows of A: the layer norm runs first."""
    from test_compile_api import _tiny_config

    m = _ln_linear_model()
    inputs = {"x": (R.standard_normal((40, 256)) * 3 + 1).astype(np.float32)}
    c, _ = check(m, _tiny_config(act=4096), inputs)
    assert sum(i.cls.name == "STORE" for i in c.program.instrs) > 1
