"""Element types of nn tensors and their numpy storage dtypes."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    f16,
    f32,
    f64,
    i8,
    i32,
    i64,
)
from xdsl.ir import Attribute

_FLOATS: dict[type[Attribute], np.dtype] = {
    Float16Type: np.dtype(np.float16),
    Float32Type: np.dtype(np.float32),
    Float64Type: np.dtype(np.float64),
}

_INTS: dict[int, np.dtype] = {
    4: np.dtype(np.int8),  # i4 is stored one value per byte
    8: np.dtype(np.int8),
    16: np.dtype(np.int16),
    32: np.dtype(np.int32),
    64: np.dtype(np.int64),
}


def numpy_dtype(element_type: Attribute) -> np.dtype:
    """The numpy dtype that stores tensors of this element type."""
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        if width not in _INTS:
            raise ValueError(f"unsupported integer width i{width}")
        return _INTS[width]
    for cls, dtype in _FLOATS.items():
        if isinstance(element_type, cls):
            return dtype
    raise ValueError(f"unsupported element type {element_type}")


def element_type(dtype: np.dtype | type) -> Attribute:
    """The IR element type for a numpy dtype."""
    dt = np.dtype(dtype)
    table: dict[np.dtype, Attribute] = {
        np.dtype(np.float16): f16,
        np.dtype(np.float32): f32,
        np.dtype(np.float64): f64,
        np.dtype(np.int8): i8,
        np.dtype(np.int32): i32,
        np.dtype(np.int64): i64,
    }
    if dt not in table:
        raise ValueError(f"unsupported dtype {dt}")
    return table[dt]
