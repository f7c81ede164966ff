"""WeightStore and Model persistence, and IR print/parse round trips for every zoo family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from frontdoor_util import REDUCED, build_reduced, random_inputs, randomize_weights
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, DenseResourceAttr

from compiler import reference
from compiler.errors import WispError
from compiler.ir import parse_module, print_module
from compiler.model import Model
from compiler.weights import WeightStore


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "blocks.0.attn.q.weight": rng.standard_normal((5, 3)).astype(np.float32),
        "b": rng.standard_normal(7),  # float64
        "half": rng.standard_normal((2, 2)).astype(np.float16),
        "q8": rng.integers(-128, 128, (4, 4)).astype(np.int8),
        "acc": rng.integers(-(2**31), 2**31 - 1, (3,)).astype(np.int32),
        "scalar": np.array(3.5, np.float32),
        "empty": np.zeros((0, 4), np.float32),
    }


def test_store_round_trip_is_exact(tmp_path: Path) -> None:
    arrays = _arrays()
    store = WeightStore(arrays)
    path = tmp_path / "w.npz"
    store.save(path)
    back = WeightStore.load(path)
    assert set(back) == set(arrays)
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape, k
        np.testing.assert_array_equal(back[k], a)
    assert back.num_params == store.num_params == sum(a.size for a in arrays.values())
    assert back.nbytes == store.nbytes


def test_store_save_is_independent_of_insertion_order(tmp_path: Path) -> None:
    arrays = _arrays()
    WeightStore(arrays).save(tmp_path / "a.npz")
    WeightStore(dict(reversed(list(arrays.items())))).save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_store_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.npz"
    WeightStore({"x": np.ones(3, np.float32)}).save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temp file left
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(
        WispError, match=r"w\.npz: cannot write: disk full"
    ):  # names the user's path
        WeightStore({"x": np.zeros(3, np.float32)}).save(path)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_store_load_errors(tmp_path: Path) -> None:
    with pytest.raises(WispError, match="weights file not found"):
        WeightStore.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(WispError, match=r"junk\.npz: not a valid \.npz"):
        WeightStore.load(junk)
    truncated = tmp_path / "truncated.npz"
    WeightStore(_arrays()).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(WispError, match="truncated.npz"):  # and no file handle leaks (-W error)
        WeightStore.load(truncated)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(WispError, match=r"single\.npy: not a valid \.npz"):
        WeightStore.load(single)
    with pytest.raises(WispError, match="not a valid"):
        WeightStore.load(tmp_path)  # a directory


LINEAR_IR = """\
builtin.module {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x6xf32> {
    %w = nn.weight @fc.weight : tensor<6x8xf32>
    %b = nn.weight @fc.bias : tensor<6xf32>
    %0 = nn.linear %x, %w, %b : (tensor<4x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<4x6xf32>
    func.return %0 : tensor<4x6xf32>
  }
}
"""


def test_check_accepts_matching_store() -> None:
    module = parse_module(LINEAR_IR)
    WeightStore(
        {"fc.weight": np.zeros((6, 8), np.float32), "fc.bias": np.zeros(6, np.float32)}
    ).check(module)


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        (
            {"fc.weight": np.zeros((6, 8), np.float32)},
            r"nn.weight @fc.bias: missing from the weight store",
        ),
        (
            {"fc.weight": np.zeros((8, 6), np.float32), "fc.bias": np.zeros(6, np.float32)},
            r"nn.weight @fc.weight: the store holds shape \[8, 6\] but the IR declares \[6, 8\]",
        ),
        (
            {"fc.weight": np.zeros((6, 8), np.float32), "fc.bias": np.zeros(6, np.float64)},
            r"nn.weight @fc.bias: the store holds float64 but the IR declares float32",
        ),
    ],
    ids=["missing", "shape", "dtype"],
)
def test_check_names_the_symbol(arrays: dict[str, np.ndarray], needle: str) -> None:
    module = parse_module(LINEAR_IR)
    with pytest.raises(WispError, match=needle):
        WeightStore(arrays).check(module)


@pytest.mark.parametrize("name", ["deit-tiny", "bert-tiny", "gpt2"])
def test_model_save_load_round_trip(tmp_path: Path, name: str) -> None:
    model = randomize_weights(build_reduced(name))
    mlir = model.save(tmp_path)
    assert mlir == tmp_path / f"{name}.mlir"
    assert (tmp_path / f"{name}.weights.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.mlir", f"{name}.weights.npz"]
    back = Model.load(mlir)
    assert back.name == name
    assert print_module(back.module) == print_module(model.module)
    assert list(back.weights) == sorted(model.weights)
    inputs = random_inputs(model)
    a = reference.run(model, inputs)["out0"]
    b = reference.run(back, inputs)["out0"]
    np.testing.assert_array_equal(a, b)


def test_model_load_errors(tmp_path: Path) -> None:
    with pytest.raises(WispError, match="cannot read"):
        Model.load(tmp_path / "nope.mlir")
    (tmp_path / "m.mlir").write_text(LINEAR_IR)
    with pytest.raises(WispError, match="weights file not found"):
        Model.load(tmp_path / "m.mlir")
    WeightStore({"fc.weight": np.zeros((6, 8), np.float32)}).save(tmp_path / "m.weights.npz")
    with pytest.raises(WispError, match="@fc.bias: missing"):
        Model.load(tmp_path / "m.mlir")
    bad = tmp_path / "bad.mlir"
    bad.write_text(LINEAR_IR.replace("nn.linear %x, %w, %b", "nn.linear %x, %w, %b,"))
    with pytest.raises(WispError, match=r"bad\.mlir:5:\d+"):
        Model.load(bad, tmp_path / "m.weights.npz")


def test_clone_is_independent() -> None:
    model = build_reduced("bert-tiny")
    twin = model.clone()
    twin.weights["pooler.bias"] = np.ones_like(twin.weights["pooler.bias"])
    twin.meta["extra"] = 1
    np.testing.assert_array_equal(model.weights["pooler.bias"], 0)
    assert "extra" not in model.meta
    assert print_module(twin.module) == print_module(model.module)
    assert twin.module is not model.module


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_print_parse_print_is_identical(name: str) -> None:
    module = build_reduced(name).module
    text = print_module(module)
    assert print_module(parse_module(text)) == text
    generic = print_module(module, generic=True)
    assert generic != text
    reparsed = parse_module(generic)
    assert print_module(reparsed, generic=True) == generic
    assert print_module(reparsed) == text


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_ir_carries_no_weight_data(name: str) -> None:
    """Weights live out of line: no dense<...> literals, no dense_resource blobs, and the IR text does not
    grow with the weights' size."""
    small = build_reduced(name)
    text = print_module(small.module)
    assert "dense<" not in text and "dense_resource" not in text
    assert "dense<" not in print_module(small.module, generic=True)
    for op in small.module.walk():
        for attr in [*op.properties.values(), *op.attributes.values()]:
            assert not isinstance(attr, DenseIntOrFPElementsAttr | DenseResourceAttr), op.name
    wider = {"vocab": 4000} if "vocab" in REDUCED[name] else {"classes": 4000}
    big = build_reduced(name, **wider)
    assert big.weights.nbytes > 2 * small.weights.nbytes
    assert abs(len(print_module(big.module)) - len(text)) < 200  # only a few shape digits differ
