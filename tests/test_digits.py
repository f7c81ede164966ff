"""The digits evaluation: the bundled data, `compiler.evaluate`, and `wisp eval digits-vit`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from frontdoor_util import digits_data_path, randomize_weights, require_digits, run_cli

from compiler import reference
from compiler.errors import WispError
from compiler.evaluate import evaluate
from compiler.model import Model
from compiler.models import ZOO, build, trace
from compiler.models.vit import ViT


def _require_data() -> None:
    if not digits_data_path().exists():
        pytest.skip(f"digits test split not bundled yet ({digits_data_path()} missing)")


def _untrained_digits_model() -> Model:
    """digits-vit's architecture with seeded random weights (works before the trained weights exist)."""
    config = ZOO["digits-vit"].config
    inputs = {"image": ((config.channels, config.image, config.image), np.float32)}
    model = trace(ViT(config), inputs, seed=5, name="digits-untrained", meta={"dataset": "digits"})
    return randomize_weights(model, seed=5)  # the zoo init predicts one class for every image


def _manual_accuracy(model: Model, n: int) -> tuple[int, list[int]]:
    from compiler.datasets import load_digits_test

    images, labels = load_digits_test()
    preds = [int(np.argmax(reference.run(model, {"image": images[i]})["out0"])) for i in range(n)]
    return sum(int(p == labels[i]) for i, p in enumerate(preds)), preds


def test_bundled_split_matches_scikit_learn() -> None:
    """The shipped test half is sklearn's load_digits split (test_size=0.2, random_state=0, stratified)."""
    _require_data()
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    from compiler.datasets import load_digits_test_raw

    digits = datasets.load_digits()
    _, x_test, _, y_test = model_selection.train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    images, labels = load_digits_test_raw()
    np.testing.assert_array_equal(images, x_test.astype(np.uint8))
    np.testing.assert_array_equal(labels, y_test)


def test_preprocessing() -> None:
    """uint8 0..16 → [-1, 1], nearest-neighbour ×2, one channel."""
    _require_data()
    from compiler.datasets import load_digits_test, load_digits_test_raw

    raw, _ = load_digits_test_raw()
    images, labels = load_digits_test()
    assert images.shape == (360, 1, 16, 16) and images.dtype == np.float32
    assert labels.shape == (360,) and set(labels.tolist()) == set(range(10))
    img = raw[3].astype(np.float64)
    for r in range(16):
        for c in range(16):
            assert images[3, 0, r, c] == np.float32(img[r // 2, c // 2] / 16.0 * 2.0 - 1.0)


def test_evaluate_agrees_with_manual_argmax_loop() -> None:
    _require_data()
    from compiler.datasets import load_digits_test

    model = _untrained_digits_model()
    result = evaluate(model, limit=20)
    correct, _ = _manual_accuracy(model, 20)
    assert (result.dataset, result.total, result.correct) == ("digits", 20, correct)
    assert result.accuracy == correct / 20
    images, _ = load_digits_test()  # the model does look at the image
    a, b = (reference.run(model, {"image": images[i]})["out0"] for i in (0, 1))
    assert float(np.max(np.abs(a - b))) > 1e-3


def test_evaluate_with_a_custom_runner() -> None:
    """A runner that always answers class 3 scores exactly the number of 3s."""
    _require_data()
    from compiler.datasets import load_digits_test

    _, labels = load_digits_test()
    model = _untrained_digits_model()

    def always_three(x: object) -> tuple[dict[str, np.ndarray], None]:
        return {"out0": np.eye(10, dtype=np.float32)[3][None]}, None

    result = evaluate(model, runner=always_three)
    assert result.total == 360 and result.correct == int(np.sum(labels == 3))


def test_evaluate_without_dataset_is_an_error() -> None:
    from frontdoor_util import build_reduced

    with pytest.raises(WispError, match="no bundled evaluation set"):
        evaluate(build_reduced("gpt2"))


def test_trained_digits_vit_evaluate_matches_manual_loop() -> None:
    require_digits()
    model = build("digits-vit")
    result = evaluate(model, limit=50)
    correct, _ = _manual_accuracy(model, 50)
    assert result.correct == correct
    assert correct >= 45


def test_wisp_eval_digits_vit_reaches_98_percent() -> None:
    require_digits()
    r = run_cli("wisp", "eval", "digits-vit")
    assert r.returncode == 0, r.stderr
    m = re.search(r"accuracy (\d+\.\d+)% \((\d+)/(\d+) on digits", r.stdout)
    assert m, r.stdout
    print(f"\n{r.stdout.strip()}")
    assert int(m.group(3)) == 360
    assert float(m.group(1)) >= 98.0
    assert int(m.group(2)) == round(float(m.group(1)) * 360 / 100)


def test_wisp_eval_errors() -> None:
    r = run_cli("wisp", "eval", "gpt2", "--layers", "1", "--limit", "0")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--limit" in r.stderr
