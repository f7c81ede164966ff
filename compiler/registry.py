"""The pass registry: pass name → lazy factory of its ModulePass class (one pass per file in passes/).

Import is lazy, as in xDSL, so start-up does not pay for passes a pipeline does not use. A test checks
that each key equals its class's `name`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from xdsl.passes import ModulePass


def _lazy(module: str, cls: str) -> Callable[[], type[ModulePass]]:
    return lambda: getattr(importlib.import_module(module), cls)


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "canonicalize": _lazy("passes.canonicalize", "CanonicalizePass"),
    "cse": _lazy("passes.cse", "CommonSubexpressionEliminationPass"),
    "dce": _lazy("passes.dce", "DeadCodeEliminationPass"),
    "depgraph": _lazy("passes.depgraph", "DepGraphPass"),
    "eager-predict": _lazy("passes.eager_predict", "EagerPredictPass"),
    "head-prune": _lazy("passes.head_prune", "HeadPrunePass"),
    "kv-prune": _lazy("passes.kv_prune", "KvPrunePass"),
    "lower-to-npu": _lazy("passes.lower_to_npu", "LowerToNpuPass"),
    "mixed-ffn": _lazy("passes.mixed_ffn", "MixedFfnPass"),
    "mixed-precision": _lazy("passes.mixed_precision", "MixedPrecisionPass"),
    "npu-schedule": _lazy("passes.npu_schedule", "NpuSchedulePass"),
    "progressive-quant": _lazy("passes.progressive_quant", "ProgressiveQuantPass"),
    "quantize": _lazy("passes.quantize", "QuantizePass"),
    "shape-check": _lazy("passes.shape_check", "ShapeCheckPass"),
    "sparsify-2-4": _lazy("passes.sparsify_2_4", "Sparsify24Pass"),
    "structured-prune": _lazy("passes.structured_prune", "StructuredPrunePass"),
    "token-prune": _lazy("passes.token_prune", "TokenPrunePass"),
}


def pass_doc(name: str) -> str:
    """The first line of a pass's docstring, for listings."""
    doc = (PASSES[name]().__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
