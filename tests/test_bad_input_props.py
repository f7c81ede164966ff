"""Property tests: malformed IR text and pipeline specs are WispErrors (or valid), never crashes or hangs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from frontdoor_util import REDUCED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.errors import WispError
from compiler.ir import make_context, parse_module, print_module, verify
from compiler.models import OPTIONS, ZOO, build
from compiler.pipeline import parse_pipeline
from compiler.registry import PASSES

# Small valid modules that between them use every kind of property value and most op shapes.
SEEDS = [
    """\
builtin.module {
  func.func @main(%x: tensor<4x8xf32>, %ids: tensor<3xi32>) -> tensor<4x8xf32> {
    %w = nn.weight @blocks.0.fc.weight : tensor<8x8xf32>
    %b = nn.weight @blocks.0.fc.bias : tensor<8xf32>
    %0 = nn.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %1 = nn.layer_norm %0, %b, %b {eps = 1.0e-06} : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %2 = nn.gelu %1 {approximate = "tanh"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %3 = nn.attention %2, %2, %2 {heads = 2, qk_dim = 4, v_dim = 4, scale = 0.5, causal = true} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %4 = nn.gather %w, %ids : (tensor<8x8xf32>, tensor<3xi32>) -> tensor<3x8xf32>
    func.return %3 : tensor<4x8xf32>
  }
}
""",
    """\
builtin.module {
  func.func @main(%x: tensor<2x3x4xf32>) -> tensor<3x8xf32> {
    %0 = nn.transpose %x {perm = [1, 0, 2]} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
    %1 = nn.reshape %0 : (tensor<3x2x4xf32>) -> tensor<3x8xf32>
    %2 = nn.slice %1 {offsets = [0, 0]} : (tensor<3x8xf32>) -> tensor<1x8xf32>
    %3 = nn.concat %2, %1 {axis = 0} : (tensor<1x8xf32>, tensor<3x8xf32>) -> tensor<4x8xf32>
    %4 = nn.softmax %3 {axis = -1} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %5 = nn.matmul %4, %4 {transpose_b = true} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x4xf32>
    func.return %1 : tensor<3x8xf32>
  }
}
""",
]
GENERIC_SEEDS = [print_module(parse_module(s), generic=True) for s in SEEDS]

TOKENS = [
    "%", "@", "{", "}", "[", "]", "(", ")", "<", ">", ":", ",", "=", "-", "x", " ", "\n", '"', "\\",
    "0", "1", "-1", "4", "8", "0.5", "1.0e-06", "1e999", "-0.0", "nan", "inf", "9223372036854775808",
    "nn.", "nn.relu", "nn.weight", "nn.frob", "func.return", "tensor", "tensor<*xf32>", "tensor<?x8xf32>",
    "f32", "f16", "i32", "i1", "i4", "index", "memref<4xf32>", "true", "false", "heads", "perm", "axis",
    "offsets", "scale", "eps", "approximate", "causal", "attributes", "{}", "[]", "dense<1>", "#loc",
    "loc(", "^bb0", "<{", "}>", "array<i64: 1>", "%0", "%x", "@w", "!foo", '"nn.relu"()', "builtin.module",
]  # fmt: skip


@st.composite
def mutated_ir(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS + GENERIC_SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "swap-lines"]))
        if kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)) :]
        elif kind == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS) | st.text(max_size=3)) + text[pos:]
        elif kind == "replace":
            text = (
                text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos + draw(st.integers(1, 6)) :]
            )
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the body runs longer than `seconds`."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"took more than {seconds}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _parse_or_wisp_error(text: str) -> None:
    try:
        module = parse_module(text, "fuzz.mlir", ctx=make_context())
    except WispError as e:
        message = str(e)
        assert message.strip() and "\n" not in message.strip(), message  # one line
        return
    # it parsed and verified: printing and re-parsing must work and be stable
    printed = print_module(module)
    assert print_module(parse_module(printed)) == printed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_ir())
def test_mutated_ir_parses_or_raises_wisp_error(text: str) -> None:
    with deadline(10):
        _parse_or_wisp_error(text)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_wisp_error(text: str) -> None:
    with deadline(10):
        _parse_or_wisp_error(text)


@pytest.mark.parametrize("n", [40, 400])
def test_unterminated_string_is_fast(n: int) -> None:
    """xDSL 0.74's string regex backtracks exponentially on an unterminated literal (fixed in compiler.ir)."""
    text = 'builtin.module {\n  "' + "a" * n + "\n}\n"
    start = time.perf_counter()
    with deadline(10), pytest.raises(WispError, match=r"<input>:2:3: .*closing string literal"):
        parse_module(text)
    assert time.perf_counter() - start < 30  # a hang guard (was minutes), not a speed test


PIPELINE_TOKENS = [
    *sorted(PASSES), "frob", ",", "{", "}", "=", " ", "1", "-1", "0.5", "x", "true", '"', "'", "[", "]",
    "(", ")", "\\", "\n", "max_iterations", "n", "{}", ",,", "==",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIPELINE_TOKENS) | st.text(max_size=2), max_size=10))
def test_random_pipeline_specs_parse_or_raise_wisp_error(parts: list[str]) -> None:
    spec = "".join(parts)
    with deadline(10):
        try:
            passes = parse_pipeline(spec)
        except WispError as e:
            assert str(e)
            return
    names = [p.name for p in passes]
    assert all(n in PASSES for n in names)


ZOO_KEYS = [*OPTIONS, "bogus", "channels", "max_positions", "type_vocab"]
OPTION_VALUES = st.sampled_from([-2, -1, 0, 1, 2, 3, 4, 5, 6, True, False, None, 2.0, "3"])


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(sorted(ZOO)),
    st.dictionaries(st.sampled_from(ZOO_KEYS), OPTION_VALUES, max_size=3),
)
def test_random_zoo_options_build_or_raise_wisp_error(
    name: str, overrides: dict[str, object]
) -> None:
    """Any option values (on top of small shapes, so models stay tiny) give a verified model or a
    one-line WispError naming the model."""
    options: dict[str, object] = {**REDUCED.get(name, {}), **overrides}
    try:
        model = build(name, **options)  # type: ignore[arg-type]
    except WispError as e:
        assert str(e).startswith(name) and "\n" not in str(e), str(e)
        return
    verify(model.module)
    model.weights.check(model.module)
    config = model.meta["config"]
    for key, value in options.items():
        if value is not None:
            assert config[key] == value and isinstance(value, int) and not isinstance(value, bool)
