"""A small torch.nn-style builder that traces Python modules into nn IR plus a WeightStore.

    class MLP(Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1 = Linear(dim, hidden)
            self.fc2 = Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(F.gelu(self.fc1(x)))

    model = trace(MLP(64, 128), {"x": ((16, 64), np.float32)}, seed=0, name="mlp")

Parameters are named by their attribute path (`blocks.0.attn.q.weight`), initialised from a seeded RNG in
registration order, and enter the IR as `nn.weight @path` at their first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from compiler.model import Model
from compiler.weights import WeightStore
from dialects import nn
from dialects.nn_base import NNOp, PropValue, element_of, shape_of, tensor
from dialects.types import element_type

Init = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def normal(std: float = 0.02) -> Init:
    """Truncated-normal init (±2 std), as ViT/BERT/GPT-2 use."""

    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        out = rng.standard_normal(shape, dtype=np.float32)
        np.clip(out, -2.0, 2.0, out=out)  # in place: big embedding tables make copies costly
        out *= np.float32(std)
        return out

    return init


def zeros(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, np.float32)


def ones(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape, np.float32)


@dataclass
class Parameter:
    """A weight declared by a module: its shape and how to initialise it."""

    shape: tuple[int, ...]
    init: Init


class Tensor:
    """A traced value: an SSA value of the graph being built, with numpy-like operators."""

    def __init__(self, graph: Graph, value: SSAValue) -> None:
        self.graph = graph
        self.value = value

    @property
    def shape(self) -> tuple[int, ...]:
        return shape_of(self.value.type)

    @property
    def type(self) -> Attribute:
        return self.value.type

    def __add__(self, other: Tensor | Parameter) -> Tensor:
        return self.graph.op(nn.AddOp, self, other)

    def __sub__(self, other: Tensor | Parameter) -> Tensor:
        return self.graph.op(nn.SubOp, self, other)

    def __mul__(self, other: Tensor | Parameter) -> Tensor:
        return self.graph.op(nn.MulOp, self, other)

    def __truediv__(self, other: Tensor | Parameter) -> Tensor:
        return self.graph.op(nn.DivOp, self, other)

    def __matmul__(self, other: Tensor | Parameter) -> Tensor:
        return self.graph.op(nn.MatmulOp, self, other, transpose_b=False)

    def reshape(self, *shape: int) -> Tensor:
        known = math.prod(d for d in shape if d != -1)
        full = tuple(math.prod(self.shape) // known if d == -1 else d for d in shape)
        return self.graph.op(nn.ReshapeOp, self, result_shape=full)

    def permute(self, *perm: int) -> Tensor:
        return self.graph.op(nn.TransposeOp, self, perm=tuple(perm))

    def __getitem__(self, index: slice | tuple[slice, ...]) -> Tensor:
        """Static slicing with unit steps, e.g. `x[0:1]` or `x[:, 64:128]`."""
        items = index if isinstance(index, tuple) else (index,)
        offsets, sizes = [], []
        for dim, size in enumerate(self.shape):
            s = items[dim] if dim < len(items) else slice(None)
            start, stop, step = s.indices(size)
            if step != 1:
                raise ValueError("only unit-step slices are supported")
            offsets.append(start)
            sizes.append(max(stop - start, 0))
        return self.graph.op(nn.SliceOp, self, result_shape=tuple(sizes), offsets=tuple(offsets))


class Graph:
    """The function being traced: inserts ops, materialises parameters into the WeightStore."""

    def __init__(self, block: Block, seed: int) -> None:
        self.builder = Builder(InsertPoint.at_end(block))
        self.weights = WeightStore()
        self.rng = np.random.default_rng(seed)
        self._params: dict[int, tuple[str, Parameter]] = {}
        self._values: dict[int, Tensor] = {}

    def register(self, root: Module) -> None:
        """Name every parameter by path and draw its initial value (in registration order)."""
        for path, param in root.named_parameters():
            if id(param) in self._params:
                continue  # tied weights share one entry
            self._params[id(param)] = (path, param)
            self.weights[path] = param.init(self.rng, param.shape).astype(np.float32, copy=False)

    def tensor(self, x: Tensor | Parameter) -> Tensor:
        if isinstance(x, Tensor):
            return x
        key = id(x)
        if key not in self._values:
            if key not in self._params:
                raise ValueError(
                    "parameter used in forward() is not registered on the traced module"
                )
            path, param = self._params[key]
            op = nn.WeightOp.of(path, tensor(param.shape, element_type(np.float32)))
            self.builder.insert(op)
            self._values[key] = Tensor(self, op.result)
        return self._values[key]

    def op(
        self,
        op_cls: type[NNOp],
        *operands: Tensor | Parameter | None,
        result_shape: Sequence[int] | None = None,
        **props: PropValue,
    ) -> Tensor:
        values = [self.tensor(o).value for o in operands if o is not None]
        result_type = None
        if result_shape is not None:
            result_type = tensor(result_shape, element_of(values[0].type))
        op = op_cls.make(values, result_type, **props)
        op.verify()
        self.builder.insert(op)
        return Tensor(self, op.results[0])


class Module:
    """Base class of traceable modules: attributes that are Modules or Parameters form the tree."""

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            path = f"{prefix}{name}"
            if isinstance(value, Parameter):
                yield path, value
            elif isinstance(value, Module):
                yield from value.named_parameters(path + ".")
            elif isinstance(value, ModuleList):
                for i, m in enumerate(value):
                    yield from m.named_parameters(f"{path}.{i}.")

    forward: Callable[..., Any]
    """The computation, written with Tensors, layers and `functional` ops (defined by subclasses)."""

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)


class ModuleList(list[Module]):
    """A list of submodules, named `<attr>.<index>`."""


def trace(
    root: Module,
    inputs: Mapping[str, tuple[Sequence[int], Any]],
    *,
    seed: int = 0,
    name: str = "model",
    meta: Mapping[str, Any] | None = None,
) -> Model:
    """Trace `root.forward` over typed inputs into a Model (an nn module plus its WeightStore)."""
    arg_types = [tensor(tuple(s), element_type(dt)) for s, dt in inputs.values()]
    block = Block(arg_types=arg_types)
    for arg, arg_name in zip(block.args, inputs, strict=True):
        arg.name_hint = arg_name
    graph = Graph(block, seed)
    graph.register(root)
    out = root.forward(*(Tensor(graph, a) for a in block.args))
    outputs = [out] if isinstance(out, Tensor) else list(out)
    graph.builder.insert(ReturnOp(*(o.value for o in outputs)))
    func = FuncOp("main", ([a.type for a in block.args], [o.type for o in outputs]), Region(block))
    module = ModuleOp([func])
    module.verify()
    return Model(name=name, module=module, weights=graph.weights, meta=dict(meta or {}))
