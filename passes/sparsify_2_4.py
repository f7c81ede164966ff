"""sparsify-2-4: GPUSQ-style 2:4 semi-structured sparsity of linear and patch-embed weights.

In every group of 4 consecutive weights along the reduction dim (a weight [out, in] groups along
`in`), the 2 largest |w| are kept (ties: the lower index) and the others set to zero. The weight's
`nn.weight` op is marked `{sparsity = "2:4"}`, which the lowering turns into the ISA's compressed
2:4 MATMUL operand. With `refit=true` the kept weights (and the bias) of each layer are re-solved
by least squares (`passes/refit.py`) to reproduce the dense layer's output on calibration
activations, layer by layer in program order, each on the inputs of the already sparsified model.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from backend.config import Config, ConfigError, load_config
from backend.cost.formulas import matmul_cycles
from backend.wording import plural
from dialects import nn
from dialects.nn_base import shape_of
from passes.context import (
    Calibration,
    PassError,
    add_report,
    calibration_of,
    values_many,
    weights_of,
)
from passes.metrics import measure, op_macs
from passes.refit import refit_linear
from passes.search_decl import Knob, Stage

SPARSITY = "2:4"
_LAYER_OPS = (nn.LinearOp, nn.PatchEmbedOp)


def mask_2_4(w: np.ndarray) -> np.ndarray:
    """Keep-mask [out, in] of a weight: the 2 largest |w| of every 4 along `in`, ties → lower index."""
    out, d_in = w.shape
    groups = np.abs(np.asarray(w, dtype=np.float64)).reshape(out, d_in // 4, 4)
    keep = np.argsort(-groups, axis=2, kind="stable")[:, :, :2]
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=2)
    return mask.reshape(out, d_in)


@dataclass
class _Layer:
    """One weight symbol and the linear / patch_embed ops that use it as their weight."""

    symbol: str
    weight_ops: list[nn.WeightOp] = field(default_factory=list)
    users: list[Operation] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.symbol.removesuffix(".weight")


@dataclass(frozen=True)
class Sparsify24Pass(ModulePass):
    """2:4 sparsity of linear / patch-embed weights along the reduction dim (magnitude, optional refit)."""

    name = "sparsify-2-4"
    search_stage: ClassVar[Stage] = Stage(20, "sparsity")

    refit: bool = field(
        default=False,
        metadata={
            "search": Knob((True,)),
            "help": "least-squares refit of the kept weights on calibration data",
        },
    )
    layers: str = field(
        default="",
        metadata={"help": "fnmatch patterns on weight symbols or layer names (default: all)"},
    )
    min_in: int = field(
        default=4, metadata={"help": "layers with fewer in-features are left dense (>= 4)"}
    )
    samples: int = field(default=32, metadata={"help": "calibration samples for the refit"})
    damp: float = field(
        default=1e-3, metadata={"help": "refit ridge damping, relative to the mean of diag(x^T x)"}
    )
    hw: str = field(
        default="", metadata={"help": "NPU config: also report the layers' modeled MATMUL cycles"}
    )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.min_in < 4 or self.samples < 1 or self.damp < 0:
            raise PassError("min_in must be >= 4, samples >= 1 and damp >= 0")
        weights = weights_of(ctx, self.name)
        config = None
        if self.hw:
            try:
                config = load_config(self.hw)
            except ConfigError as e:
                raise PassError(f"hw={self.hw}: {e}") from None
        chosen, notes = self._select(op, weights)
        calib = calibration_of(ctx, self.name) if self.refit and chosen else None
        before = self._figures(op, weights, chosen, config, sparse=False)
        errors = self._sparsify(op, weights, chosen, calib)
        after = self._figures(op, weights, chosen, config, sparse=True)
        notes.insert(0, f"2:4 on {plural(len(chosen), 'weight')}")
        if errors:
            masked, fitted = (sum(e[i] for e in errors.values()) for i in (0, 1))
            notes.append(
                f"refit on {min(self.samples, len(calib.inputs))} samples: "  # type: ignore[union-attr]
                f"calibration reconstruction error (relative, summed over layers) "
                f"{masked:.4g} masked -> {fitted:.4g} refit"
            )
        report = {"before": before, "after": after, "notes": notes}
        if errors:
            report["layers"] = {s: {"masked": e[0], "refit": e[1]} for s, e in errors.items()}
        add_report(ctx, self.name, report)

    # ---- which layers -----------------------------------------------------------------------

    def _patterns(self) -> list[str]:
        return [p for p in self.layers.replace(",", " ").split() if p]

    def _select(
        self, module: ModuleOp, weights: Mapping[str, np.ndarray]
    ) -> tuple[list[_Layer], list[str]]:
        """The layers to sparsify, and notes on those left dense. An explicitly named layer that
        cannot be 2:4 (or a pattern matching nothing) is an error; a wildcard match is skipped."""
        layers: dict[str, _Layer] = {}
        other_uses: set[str] = set()
        for o in module.walk():
            if not isinstance(o, nn.WeightOp):
                continue
            lay = layers.setdefault(o.symbol, _Layer(o.symbol))
            lay.weight_ops.append(o)
            for use in o.result.uses:
                if isinstance(use.operation, _LAYER_OPS) and use.index == 1:
                    lay.users.append(use.operation)
                else:
                    other_uses.add(o.symbol)
        candidates = [lay for lay in layers.values() if lay.users]
        patterns = self._patterns()
        notes: list[str] = []
        chosen: list[_Layer] = []
        for lay in candidates:
            hits = [p for p in patterns if _matches(p, lay)]
            if patterns and not hits:
                continue
            named = any(not _is_glob(p) for p in hits)
            reason = self._unsuitable(lay, weights, other_uses)
            if reason is None:
                chosen.append(lay)
            elif named:
                raise PassError(f"layer '{lay.name}' cannot be 2:4 sparse: {reason}")
            else:
                notes.append(f"left dense: {lay.name} ({reason})")
        for p in patterns:
            if not any(_matches(p, lay) for lay in candidates):
                names = ", ".join(lay.name for lay in candidates[:8])
                raise PassError(
                    f"layers: '{p}' matches no linear or patch_embed weight (layers: {names}"
                    f"{', ...' if len(candidates) > 8 else ''})"
                )
        return chosen, notes

    def _unsuitable(
        self, lay: _Layer, weights: Mapping[str, np.ndarray], other_uses: set[str]
    ) -> str | None:
        if lay.symbol not in weights:
            return "its weight is missing from the weights file"
        d_in = shape_of(lay.weight_ops[0].result.type)[-1]
        if d_in % 4:
            return f"in-features {d_in} is not a multiple of 4"
        if d_in < self.min_in:
            return f"in-features {d_in} < min_in={self.min_in}"
        if lay.symbol in other_uses:
            return "its weight is also used by an op other than a linear/patch_embed weight"
        if self.refit and not np.issubdtype(np.asarray(weights[lay.symbol]).dtype, np.floating):
            return "refit needs a float weight"
        return None

    # ---- the rewrite ------------------------------------------------------------------------

    def _sparsify(
        self,
        module: ModuleOp,
        weights: MutableMapping[str, np.ndarray],
        chosen: list[_Layer],
        calib: Calibration | None,
    ) -> dict[str, tuple[float, float]]:
        """Mask (and refit) every chosen layer in program order; returns per-symbol relative
        calibration errors (masked, refit) when refitting."""
        errors: dict[str, tuple[float, float]] = {}
        inputs = calib.inputs[: self.samples] if calib is not None else []
        needed = {u.operands[0] for lay in chosen for u in lay.users}
        cache = _Activations(module, calib, inputs, needed)
        for lay in chosen:
            dense = np.asarray(weights[lay.symbol])
            mask = mask_2_4(dense)
            new = np.where(mask, dense, 0).astype(dense.dtype)
            if calib is not None:
                new, err = self._refit(lay, weights, dense, mask, new, cache)
                errors[lay.symbol] = err
            weights[lay.symbol] = new
            for w_op in lay.weight_ops:
                w_op.attributes["sparsity"] = StringAttr(SPARSITY)
            cache.changed(lay.users)
        return errors

    def _refit(
        self,
        lay: _Layer,
        weights: MutableMapping[str, np.ndarray],
        dense: np.ndarray,
        mask: np.ndarray,
        masked: np.ndarray,
        cache: _Activations,
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Least squares of [W | b] on the layer's calibration inputs (bias unconstrained); kept
        only if it lowers the calibration error (damping could, in principle, make it worse)."""
        x = np.concatenate([cache.layer_input(u, weights) for u in lay.users])
        bias_sym = _own_bias(lay)
        b = np.asarray(weights[bias_sym], np.float64) if bias_sym else None
        target = x @ dense.T.astype(np.float64) + (b if b is not None else 0.0)
        if b is not None:
            x_aug = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
            m_aug = np.concatenate([mask, np.ones((mask.shape[0], 1), bool)], axis=1)
            fit = refit_linear(x_aug, target, m_aug, damp=self.damp)
            w_fit, b_fit = fit[:, :-1], fit[:, -1]
        else:
            w_fit, b_fit = refit_linear(x, target, mask, damp=self.damp), None
        scale = float(np.sum(target**2)) or 1.0
        err_masked = _sq_err(x, masked, b, target) / scale
        err_fit = _sq_err(x, w_fit, b_fit, target) / scale
        if err_fit > err_masked:
            return masked, (err_masked, err_masked)
        if b_fit is not None and bias_sym is not None:
            weights[bias_sym] = b_fit.astype(np.asarray(weights[bias_sym]).dtype)
        return w_fit.astype(dense.dtype), (err_masked, err_fit)

    # ---- figures ----------------------------------------------------------------------------

    @staticmethod
    def _figures(
        module: ModuleOp,
        weights: Mapping[str, np.ndarray],
        chosen: list[_Layer],
        config: Config | None,
        *,
        sparse: bool,
    ) -> dict[str, int]:
        m = measure(module, weights)
        users = [u for lay in chosen for u in lay.users]
        layer_macs = sum(op_macs(u) for u in users)
        out = {
            "params": m.params,
            "nonzero_params": m.nonzero_params,
            "macs": m.macs,
            "macs_effective": m.macs - (layer_macs // 2 if sparse else 0),
            "weight_bytes": m.weight_bytes,
        }
        if config is not None:
            mode = "sp24h" if sparse else "fp16"
            out["layer_matmul_cycles"] = sum(
                matmul_cycles(*_gemm_shape(u), mode, config) for u in users
            )
        return out


class _Activations:
    """Calibration inputs of layers, recomputed only when a layer upstream has changed."""

    def __init__(
        self,
        module: ModuleOp,
        calib: Calibration | None,
        inputs: Sequence[Mapping[str, np.ndarray]],
        needed: set[SSAValue],
    ) -> None:
        self.module, self.calib, self.inputs, self.needed = module, calib, inputs, needed
        self.values: list[dict[SSAValue, np.ndarray]] | None = None
        self.dirty: set[Operation] = set()

    def changed(self, ops: list[Operation]) -> None:
        self.dirty.update(ops)

    def layer_input(self, op: Operation, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        """The op's input rows [n, in] (patch_embed: the patch matrix) over the samples."""
        assert self.calib is not None
        src = op.operands[0]
        if self.values is None or self.dirty & _upstream(src):
            self.values = []
            for vals in values_many(self.calib, self.module, weights, self.inputs):
                self.values.append({v: vals[v] for v in self.needed if v in vals})
            self.dirty = set()
        rows = [np.asarray(v[src], np.float64) for v in self.values]
        if isinstance(op, nn.PatchEmbedOp):
            p = op.int_prop("patch")
            rows = [_patches(r, p) for r in rows]
        d_in = shape_of(op.operands[1].type)[1]
        return np.concatenate([r.reshape(-1, d_in) for r in rows])


def _patches(img: np.ndarray, p: int) -> np.ndarray:
    """[C, H, W] → [(H/p)(W/p), C·p·p], patches row-major, each flattened (c, ph, pw)."""
    c, h, w = img.shape
    g = img.reshape(c, h // p, p, w // p, p).transpose(1, 3, 0, 2, 4)
    return g.reshape((h // p) * (w // p), c * p * p)


def _upstream(value: SSAValue) -> set[Operation]:
    """Every op `value` depends on."""
    seen: set[Operation] = set()
    stack = [value]
    while stack:
        owner = stack.pop().owner
        if isinstance(owner, Operation) and owner not in seen:
            seen.add(owner)
            stack.extend(owner.operands)
    return seen


def _gemm_shape(op: Operation) -> tuple[int, int, int]:
    """(m, n, k) of the GEMM a linear / patch_embed lowers to."""
    out, w = shape_of(op.results[0].type), shape_of(op.operands[1].type)
    return math.prod(out[:-1]), w[0], w[1]


def _own_bias(lay: _Layer) -> str | None:
    """The bias symbol the layer's ops share and nothing else reads (None: leave biases alone)."""
    biases = [u.operands[2] if len(u.operands) > 2 else None for u in lay.users]
    owners = {b.owner for b in biases if b is not None}
    if len(owners) != 1 or any(b is None for b in biases):
        return None
    (owner,) = owners
    if not isinstance(owner, nn.WeightOp) or {u.operation for u in owner.result.uses} != set(
        lay.users
    ):
        return None
    return owner.symbol


def _sq_err(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, target: np.ndarray) -> float:
    pred = x @ np.asarray(w, np.float64).T + (b if b is not None else 0.0)
    return float(np.sum((pred - target) ** 2))


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _matches(pattern: str, lay: _Layer) -> bool:
    return fnmatch.fnmatchcase(lay.symbol, pattern) or fnmatch.fnmatchcase(lay.name, pattern)
