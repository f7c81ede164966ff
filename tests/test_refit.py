"""refit_linear against an independent per-row ridge least squares (np.linalg.lstsq)."""

from __future__ import annotations

import numpy as np
import pytest

from passes.refit import refit_linear


def _oracle(x: np.ndarray, target: np.ndarray, mask: np.ndarray, damp: float) -> np.ndarray:
    """Per row: lstsq of [x_S; √λ·I] w = [t; 0], which is the ridge problem written as plain least squares."""
    x64, t64 = x.astype(np.float64), target.astype(np.float64)
    lam = damp * float(np.mean(np.sum(x64 * x64, axis=0)))
    out = np.zeros(mask.shape)
    for o in range(mask.shape[0]):
        cols = np.flatnonzero(mask[o])
        if cols.size == 0:
            continue
        a = np.vstack([x64[:, cols], np.sqrt(lam) * np.eye(cols.size)])
        b = np.concatenate([t64[:, o], np.zeros(cols.size)])
        out[o, cols] = np.linalg.lstsq(a, b, rcond=None)[0]
    return out


def _mask_2_4(rng: np.random.Generator, d_out: int, d_in: int) -> np.ndarray:
    keep = np.argsort(rng.random((d_out, d_in // 4, 4)), axis=2)[:, :, :2]
    mask = np.zeros((d_out, d_in // 4, 4), dtype=bool)
    np.put_along_axis(mask, keep, True, axis=2)
    return mask.reshape(d_out, d_in)


@pytest.mark.parametrize("kind", ["shared", "2:4", "random", "repeated"])
@pytest.mark.parametrize("damp", [1e-3, 0.1])
def test_matches_per_row_lstsq(kind: str, damp: float) -> None:
    rng = np.random.default_rng(0)
    n, d_in, d_out = 50, 16, 12
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    target = rng.standard_normal((n, d_out)).astype(np.float32)
    if kind == "shared":
        mask = np.tile(rng.random(d_in) < 0.6, (d_out, 1))
    elif kind == "2:4":
        mask = _mask_2_4(rng, d_out, d_in)
    elif kind == "random":  # rows with different numbers of allowed columns, one empty row
        mask = rng.random((d_out, d_in)) < 0.5
        mask[3] = False
    else:  # a few masks shared by several rows, plus unique ones
        mask = _mask_2_4(rng, d_out, d_in)
        mask[1] = mask[0]
        mask[5] = mask[7] = mask[0]
    got = refit_linear(x, target, mask, damp=damp)
    want = _oracle(x, target, mask, damp)
    assert got.dtype == np.float32 and got.shape == mask.shape
    assert np.all(got[~mask] == 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_recovers_exact_weights_from_rank_deficient_data() -> None:
    """Fewer samples than allowed columns: the damped solve stays finite and fits the target."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 16))
    w = rng.standard_normal((4, 16)) * _mask_2_4(rng, 4, 16)
    got = refit_linear(x, x @ w.T, w != 0, damp=1e-6)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(x @ got.T, x @ w.T, atol=1e-3)


def test_refit_never_worse_than_masked_weights() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 32))
    w = rng.standard_normal((8, 32))
    mask = _mask_2_4(rng, 8, 32)
    target = x @ w.T
    err_masked = np.sum((x @ (w * mask).T - target) ** 2)
    err_refit = np.sum((x @ refit_linear(x, target, mask, damp=1e-6).T - target) ** 2)
    assert err_refit <= err_masked


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="shapes disagree"):
        refit_linear(np.zeros((4, 8)), np.zeros((4, 3)), np.ones((2, 8), dtype=bool))


def test_2_4_layer_refit_matches_the_oracle() -> None:
    """A 2:4-masked FFN-shaped layer (W [1024, 256], batched solves over many masks): zeros where
    masked, rows equal the per-row oracle. (Its speed is not asserted: no wall-clock assertions in
    tests; a 768x3072 layer took 17-34 s here depending on machine load.)"""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((512, 256)).astype(np.float32)
    mask = _mask_2_4(rng, 1024, 256)
    target = rng.standard_normal((512, 1024)).astype(np.float32)
    w = refit_linear(x, target, mask)
    assert np.all(w[~mask] == 0)
    for o in (0, 17, 1023):  # spot-check rows against the oracle
        np.testing.assert_allclose(
            w[o : o + 1],
            _oracle(x, target[:, o : o + 1], mask[o : o + 1], 1e-3) * 1,
            rtol=1e-3,
            atol=1e-5,
        )
