"""Packaged evaluation data (numpy only).

The digits test split is scikit-learn's ``load_digits()`` split with
``train_test_split(test_size=0.2, random_state=0, stratify=y)``; only the
360-image test half is shipped, in ``compiler/data/digits_test.npz``, plus 256 images of the
training half in ``compiler/data/digits_calib.npz`` for calibrating compression passes.
:func:`preprocess_digits` is the single preprocessing used both when training
``digits-vit`` and when wisp evaluates it.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np

DIGITS_TEST_RESOURCE = "data/digits_test.npz"
DIGITS_CALIB_RESOURCE = "data/digits_calib.npz"


def preprocess_digits(img8: np.ndarray) -> np.ndarray:
    """Map uint8 digits ``[..., 8, 8]`` (values 0..16) to float32 ``[..., 1, 16, 16]``.

    Scales to [0, 1], upsamples x2 by nearest neighbour, then normalises to [-1, 1].
    """
    x = np.asarray(img8).astype(np.float32) / np.float32(16.0)
    if x.shape[-2:] != (8, 8):
        raise ValueError(f"expected [..., 8, 8] digits, got shape {x.shape}")
    x = np.repeat(np.repeat(x, 2, axis=-2), 2, axis=-1)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    return np.expand_dims(x, axis=-3).astype(np.float32, copy=False)


def _load_raw(resource: str) -> tuple[np.ndarray, np.ndarray]:
    data = resources.files("compiler").joinpath(resource).read_bytes()
    with np.load(io.BytesIO(data)) as npz:
        images = np.asarray(npz["images"], dtype=np.uint8)
        labels = np.asarray(npz["labels"], dtype=np.int64)
    return images, labels


def load_digits_test_raw() -> tuple[np.ndarray, np.ndarray]:
    """Return the packaged test split as (uint8 images [N, 8, 8], int64 labels [N])."""
    return _load_raw(DIGITS_TEST_RESOURCE)


def load_digits_calibration() -> tuple[np.ndarray, np.ndarray]:
    """Return the calibration split (256 training images, never test ones) as (float32 images
    [N, 1, 16, 16], int64 labels [N])."""
    images, labels = _load_raw(DIGITS_CALIB_RESOURCE)
    return preprocess_digits(images), labels


def load_digits_test() -> tuple[np.ndarray, np.ndarray]:
    """Return the packaged test split as (float32 images [N, 1, 16, 16], int64 labels [N])."""
    images, labels = load_digits_test_raw()
    return preprocess_digits(images), labels
