"""Fast numeric paths of the interpreter are bit-identical to numpy's own casts."""

from __future__ import annotations

import numpy as np

from backend.interpreter.numerics import f16_to_f32


def test_f16_to_f32_every_value() -> None:
    allh = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    for h in (allh, allh.T, allh[::3, 1::2]):
        got = f16_to_f32(h)
        assert got.dtype == np.float32 and got.shape == h.shape
        assert np.array_equal(got.view(np.uint32), h.astype(np.float32).view(np.uint32))


def test_f16_to_f32_empty() -> None:
    assert f16_to_f32(np.zeros((0, 4), np.float16)).shape == (0, 4)
