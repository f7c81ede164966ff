"""The quantize pass: the rewrite against an analytic error bound, the trained digits-vit (W8A8
accuracy, W4A8 GPTQ vs RTN), calibration on the calibration split only, and bad options."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "backend"))
from compile_util import model_from_ir  # noqa: E402
from frontdoor_util import run_cli  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.calibration import ReferenceExecutor  # noqa: E402
from compiler.datasets import load_digits_calibration, load_digits_test  # noqa: E402
from compiler.errors import WispError  # noqa: E402
from compiler.evaluate import evaluate  # noqa: E402
from compiler.model import Model  # noqa: E402
from compiler.models.zoo import build  # noqa: E402
from compiler.pipeline import run_pipeline  # noqa: E402
from passes.context import Calibration  # noqa: E402


def _t(*shape: int, e: str = "f32") -> str:
    return f"tensor<{'x'.join(map(str, shape))}x{e}>"


def _linear_model(rows: int, k: int, n: int, seed: int = 0) -> Model:
    body = f"""    %w = nn.weight @fc.weight : {_t(n, k)}
    %b = nn.weight @fc.bias : {_t(n)}
    %y = nn.linear %x, %w, %b : ({_t(rows, k)}, {_t(n, k)}, {_t(n)}) -> {_t(rows, n)}
    func.return %y : {_t(rows, n)}"""
    rng = np.random.default_rng(seed)
    weights = {
        "fc.weight": (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32),
        "fc.bias": (rng.standard_normal(n) * 0.1).astype(np.float32),
    }
    return model_from_ir(body, f"%x: {_t(rows, k)}", _t(rows, n), weights)


def _calib(rows: int, k: int, samples: int, seed: int = 1) -> Calibration:
    rng = np.random.default_rng(seed)
    return Calibration(
        [{"x": rng.standard_normal((rows, k)).astype(np.float32)} for _ in range(samples)],
        None,
        ReferenceExecutor(),
    )


@pytest.mark.parametrize("gran", ["channel", "group:8"])
def test_rewrite_stays_within_the_rounding_bound(gran: str) -> None:
    """|y_q − y| ≤ Σ_k (|x_k|·s_w/2 + |ŵ_k|·s_x/2) + s_b/2 on calibration inputs (min-max scales:
    nothing clips), with s_x = max|x|/127 and s_w = max|W| per row (or group) / qmax."""
    bits = 4 if gran.startswith("group") else 8
    m = _linear_model(6, 32, 10)
    w, b = np.array(m.weights["fc.weight"], np.float64), np.array(m.weights["fc.bias"])
    calib = _calib(6, 32, 4)
    records = run_pipeline(
        m,
        f"quantize{{weights=int{bits} granularity={gran} samples=4}}",
        quiet=True,
        calibration=calib,
    )
    ops = [op.name for op in m.module.walk()]
    assert "nn.linear" not in ops and ops.count("quant.linear") == 1
    assert ops.count("quant.quantize") == 1 and ops.count("quant.dequantize") == 1
    xs = np.concatenate([s["x"] for s in calib.inputs]).astype(np.float64)
    s_x = float(np.float32(np.abs(xs).max() / 127))
    qmax = 2 ** (bits - 1) - 1
    if gran == "channel":
        s_w = np.repeat(np.abs(w).max(axis=1, keepdims=True) / qmax, 32, axis=1)
    else:
        s_w = np.repeat(np.abs(w).reshape(10, 4, 8).max(axis=2) / qmax, 8, axis=1)
    assert m.weights["fc.input_scale"][0] == pytest.approx(s_x, rel=1e-6)
    wq = m.weights["fc.weight.q"]
    assert wq.dtype == np.int8 and wq.min() >= -qmax - 1 and wq.max() <= qmax
    w_hat = wq * s_w
    assert np.max(np.abs(w_hat - w)) <= np.max(s_w) / 2 * (1 + 1e-5)
    report = records[0].report["layers"]["fc"]
    assert report["bits"] == bits and report["clip_fraction"] == 0.0
    for s in calib.inputs:
        x = s["x"].astype(np.float64)
        want = x @ w.T + b
        got = reference.run(m, s)["out0"].astype(np.float64)
        bound = np.abs(x) @ s_w.T / 2 + s_x / 2 * np.abs(w_hat).sum(axis=1) + s_x * s_w.max() / 2
        assert np.all(np.abs(got - want) <= bound * 1.001 + 1e-5 * (1 + np.abs(want)))


def test_layers_and_skip_select_by_name() -> None:
    m = build("digits-vit")
    run_pipeline(m, 'quantize{layers="blocks.0.*" skip="*.fc2" samples=2}', quiet=True)
    q = sorted(op.weight.owner.symbol for op in m.module.walk() if op.name == "quant.linear")  # type: ignore[attr-defined]
    assert q == [
        f"blocks.0.{n}.weight.q" for n in ("attn.k", "attn.proj", "attn.q", "attn.v", "mlp.fc1")
    ]


# ---- digits-vit: accuracy on the 360 held-out images -------------------------------------------


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, labels = load_digits_test()
    fp = build("digits-vit")
    return images, labels, _logits(fp, images)


def _logits(m: Model, images: np.ndarray) -> np.ndarray:
    return np.stack([reference.run(m, {"image": x})["out0"].reshape(-1) for x in images])


def _kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean KL(p ‖ q) of the softmaxes, in float64."""

    def logsm(z: np.ndarray) -> np.ndarray:
        z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    lp, lq = logsm(p_logits), logsm(q_logits)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1)))


def _acc(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(logits.argmax(axis=1) == labels))


def test_w8a8_digits_within_half_a_point(digits: tuple[np.ndarray, ...]) -> None:
    images, labels, fp = digits
    m = build("digits-vit")
    run_pipeline(m, "quantize{weights=int8 acts=int8}", quiet=True)
    assert not any(op.name == "nn.linear" for op in m.module.walk())
    result = evaluate(m)
    assert result.total == 360
    assert abs(result.accuracy - _acc(fp, labels)) <= 0.005


def test_w4a8_gptq_is_closer_to_fp_than_rtn(digits: tuple[np.ndarray, ...]) -> None:
    images, labels, fp = digits
    out = {}
    for method in ("rtn", "gptq"):
        m = build("digits-vit")
        run_pipeline(
            m, f"quantize{{weights=int4 granularity=group:32 method={method}}}", quiet=True
        )
        out[method] = _logits(m, images)
    kl_rtn, kl_gptq = _kl(fp, out["rtn"]), _kl(fp, out["gptq"])
    assert kl_gptq < kl_rtn
    assert abs(_acc(out["gptq"], labels) - _acc(fp, labels)) <= 0.01


def test_calibration_never_reads_the_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the test split unloadable the pass still runs, and its result is the one calibrated on
    the first `samples` images of the calibration split."""
    import compiler.datasets
    import compiler.evaluate

    def refuse() -> None:
        raise AssertionError("the test split was read during calibration")

    monkeypatch.setitem(compiler.evaluate.DATASETS, "digits", refuse)
    monkeypatch.setattr(compiler.datasets, "load_digits_test", refuse)
    monkeypatch.setattr(compiler.datasets, "load_digits_test_raw", refuse)
    default = build("digits-vit")
    run_pipeline(default, "quantize{samples=3}", quiet=True)
    images, _ = load_digits_calibration()
    explicit = build("digits-vit")
    calib = Calibration([{"image": images[i]} for i in range(3)], None, ReferenceExecutor())
    run_pipeline(explicit, "quantize{samples=3}", quiet=True, calibration=calib)
    assert sorted(default.weights) == sorted(explicit.weights)
    for k in default.weights:
        assert np.array_equal(default.weights[k], explicit.weights[k]), k


# ---- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ("calib=foo", "calib=foo: unknown calibration method"),
        ("weights=int3", "weights=int3: bits must be int8 or int4"),
        ("weights=int16", "weights=int16: bits must be"),
        ("granularity=group:48", "granularity=group:48: group size 48 does not divide K = 64"),
        ("granularity=rows", "granularity=rows"),
        ('layers="nosuch.*"', "layers=nosuch.* matches no float linear layer"),
        ("skip=nosuch", "skip=nosuch matches no float linear layer"),
        ("method=awq", "method=awq: unknown method"),
        ("acts=fp16", "acts=fp16"),
        ("smooth=1.5", "smooth=1.5"),
    ],
)
def test_bad_options_are_one_line_naming_the_pass(options: str, needle: str) -> None:
    m = build("digits-vit")
    with pytest.raises(WispError) as e:
        run_pipeline(m, f"quantize{{{options}}}", quiet=True)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("pass 'quantize': ") and needle in msg, msg
    assert not any(op.name.startswith("quant.") for op in m.module.walk())


def test_already_quantized_and_no_calibration() -> None:
    m = build("digits-vit")
    run_pipeline(m, "quantize{layers=head samples=2}", quiet=True)
    with pytest.raises(
        WispError, match=r"^pass 'quantize': .*layers=head: layer 'head' is already"
    ):
        run_pipeline(m, "quantize{layers=head}", quiet=True)
    empty = Calibration([], None, ReferenceExecutor())
    with pytest.raises(WispError, match="pass 'quantize'.*needs calibration data"):
        run_pipeline(build("digits-vit"), "quantize", quiet=True, calibration=empty)


def test_cli_bad_option_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    r = run_cli(
        "wisp", "compile", "digits-vit", "-p", "quantize{calib=foo}", "-o", "out", cwd=tmp_path
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.error_lines) == 1, r.stderr
    line = r.error_lines[0]
    assert line.startswith("wisp: error: ") and "quantize" in line and "calib=foo" in line, line
    assert list(tmp_path.iterdir()) == []
