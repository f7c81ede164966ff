"""Helpers for the front-door tests (zoo, reference, weights, pipeline, CLI): reduced zoo shapes, weight
randomisation, CLI runs. A plain module (not conftest) so tests import it by a unique name."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.model import Model
from compiler.models import build

# Small shapes per zoo name: every model builds and runs in milliseconds. The dims are chosen so that
# heads > 1, mlp_dim != dim, and tokens/sequence != dim, so transposed weights would not type-check.
REDUCED: dict[str, dict[str, int]] = {
    "deit-tiny": {
        "layers": 2,
        "dim": 24,
        "heads": 3,
        "mlp_dim": 40,
        "image": 16,
        "patch": 4,
        "classes": 7,
    },
    "deit-small": {
        "layers": 2,
        "dim": 32,
        "heads": 2,
        "mlp_dim": 48,
        "image": 12,
        "patch": 3,
        "classes": 5,
    },
    "vit-base": {
        "layers": 1,
        "dim": 16,
        "heads": 4,
        "mlp_dim": 64,
        "image": 8,
        "patch": 2,
        "classes": 3,
    },
    "bert-tiny": {
        "layers": 2,
        "dim": 32,
        "heads": 4,
        "mlp_dim": 48,
        "seq": 9,
        "vocab": 50,
        "classes": 3,
    },
    "bert-base": {
        "layers": 2,
        "dim": 24,
        "heads": 2,
        "mlp_dim": 40,
        "seq": 7,
        "vocab": 31,
        "classes": 2,
    },
    "gpt2": {"layers": 2, "dim": 32, "heads": 4, "mlp_dim": 48, "seq": 10, "vocab": 53},
}

FAMILY: dict[str, str] = {
    "deit-tiny": "vit",
    "deit-small": "vit",
    "vit-base": "vit",
    "digits-vit": "vit",
    "bert-tiny": "bert",
    "bert-base": "bert",
    "gpt2": "gpt2",
}

REPO = Path(__file__).resolve().parent.parent


def digits_weights_path() -> Path:
    return Path(str(resources.files("compiler") / "data" / "digits_vit.weights.npz"))


def digits_data_path() -> Path:
    return Path(str(resources.files("compiler") / "data" / "digits_test.npz"))


def require_digits() -> None:
    """Skip unless the trained digits-vit weights and the digits test split are bundled."""
    if not digits_weights_path().exists():
        pytest.skip(f"trained digits-vit weights not bundled yet ({digits_weights_path()} missing)")
    if not digits_data_path().exists():
        pytest.skip(f"digits test split not bundled yet ({digits_data_path()} missing)")


def build_reduced(name: str, seed: int = 0, **overrides: int) -> Model:
    return build(name, seed=seed, **{**REDUCED[name], **overrides})


def randomize_weights(model: Model, seed: int = 1) -> Model:
    """Replace every float weight by a well-scaled random array of the same shape and dtype.

    The zoo initialises biases to 0 and LayerNorm gains to 1; random values make a dropped bias or gain,
    or a transposed weight, visible in the outputs."""
    rng = np.random.default_rng(seed)
    for name in list(model.weights):
        arr = model.weights[name]
        if arr.dtype.kind != "f":
            continue
        if arr.ndim >= 2:
            new = rng.standard_normal(arr.shape) / np.sqrt(arr.shape[-1])
        elif "norm" in name and name.endswith(".weight"):
            new = 1.0 + 0.3 * rng.standard_normal(arr.shape)
        else:
            new = 0.3 * rng.standard_normal(arr.shape)
        model.weights[name] = new.astype(arr.dtype)
    return model


def random_inputs(model: Model, seed: int = 2) -> dict[str, np.ndarray]:
    """Inputs of the model's declared shapes: images in [-1, 1], token ids over the whole vocabulary."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    vocab = int(model.meta.get("config", {}).get("vocab", 2))
    for name, (shape, dtype) in model.input_specs().items():
        if dtype.kind == "f":
            out[name] = rng.uniform(-1.0, 1.0, shape).astype(dtype)
        else:
            out[name] = rng.integers(0, vocab, shape).astype(dtype)
    return out


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def run_cli(
    tool: str, *args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 60
) -> CliResult:
    """Run `wisp` or `wisp-opt` as a subprocess through the module entry point of this interpreter."""
    module = {"wisp": "compiler.cli.wisp", "wisp-opt": "compiler.cli.wisp_opt"}[tool]
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"  # the tools' own warnings are not under test here
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # see conftest.py: small GEMMs, loaded machines
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def max_abs(a: Mapping[str, Any] | np.ndarray, b: Mapping[str, Any] | np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
