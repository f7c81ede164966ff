"""WeightStore: the out-of-line weights of a model (symbol name → numpy array), saved as `.npz`."""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from compiler.errors import WispError
from compiler.io_util import load_npz, save_npz
from compiler.ir import location_of
from dialects.nn import WeightOp
from dialects.nn_base import element_of, shape_of
from dialects.types import numpy_dtype


class WeightStore(MutableMapping[str, np.ndarray]):
    """An ordered map from weight symbol to array. Ops refer to entries with `nn.weight @name`."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        self._arrays: dict[str, np.ndarray] = dict(arrays or {})

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._arrays[name] = value

    def __delitem__(self, name: str) -> None:
        del self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def copy(self) -> WeightStore:
        """A shallow copy: arrays are shared until a pass replaces them (passes never mutate in place)."""
        return WeightStore(dict(self._arrays))

    @property
    def num_params(self) -> int:
        return sum(int(a.size) for a in self._arrays.values())

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._arrays.values())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the store as an uncompressed `.npz`, atomically."""
        save_npz(path, self._arrays)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> WeightStore:
        """Read a `.npz` written by `save` (or any npz of named arrays)."""
        return WeightStore(load_npz(path, "weights"))

    def in_program_precision(self, dtypes: dict[str, frozenset[str]]) -> WeightStore:
        """A copy with each float32 array the program lays out only in fp16 (``dtypes``: symbol ->
        element types of its layouts, `Compiled.data_dtypes`) rounded to float16: the values the
        NPU computes with, in half the bytes. Arrays also laid out in fp32 or as integers, and
        arrays the program does not hold, are kept as they are."""
        out = self.copy()
        for name, arr in self._arrays.items():
            if arr.dtype == np.float32 and dtypes.get(name, frozenset()) == {"FP16"}:
                out[name] = arr.astype(np.float16)
        return out

    def widen_fp16(self, module: ModuleOp) -> None:
        """Widen float16 arrays whose `nn.weight` declares f32 (a store saved in program precision)
        to float32, exactly; `check` then sees the declared type."""
        for op in module.walk():
            if isinstance(op, WeightOp) and op.symbol in self._arrays:
                arr = self._arrays[op.symbol]
                if (
                    arr.dtype == np.float16
                    and numpy_dtype(element_of(op.result.type)) == np.float32
                ):
                    self._arrays[op.symbol] = arr.astype(np.float32)

    def check(self, module: ModuleOp) -> None:
        """Check that every `nn.weight` has an entry of the declared shape and element type."""
        for op in module.walk():
            if not isinstance(op, WeightOp):
                continue
            name = op.symbol
            where = f"{location_of(op)}: " if location_of(op) else ""
            if name not in self._arrays:
                raise WispError(f"{where}nn.weight @{name}: missing from the weight store")
            arr = self._arrays[name]
            want_shape = shape_of(op.result.type)
            want_dtype = numpy_dtype(element_of(op.result.type))
            if tuple(arr.shape) != want_shape:
                raise WispError(
                    f"{where}nn.weight @{name}: the store holds shape {list(arr.shape)}"
                    f" but the IR declares {list(want_shape)}"
                )
            if arr.dtype != want_dtype:
                raise WispError(
                    f"{where}nn.weight @{name}: the store holds {arr.dtype} but the IR declares {want_dtype}"
                )
