"""Next-token accuracy and bits per character of a character LM on its held-out text,
teacher-forced over fixed windows of the model's sequence length (`wisp eval char-gpt`).

The held-out split (`compiler/data/char_gpt_heldout.npz`, PSF-licensed Python source, written by
scripts/train_char_gpt.py) is cut into consecutive non-overlapping windows; window i predicts
characters 1..seq of its span from characters 0..seq-1. The first `limit` windows are used
(default DEFAULT_WINDOWS), so reference and interpreter see the same characters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from compiler import reference
from compiler.errors import WispError
from compiler.model import Model
from compiler.models.char_vocab import encode

DATASET = "char-python"
HELDOUT_FILE = "char_gpt_heldout.npz"
DEFAULT_WINDOWS = 16

Runner = Callable[[Mapping[str, np.ndarray]], tuple[Mapping[str, np.ndarray], Any]]


def heldout_text() -> str:
    path = resources.files("compiler") / "data" / HELDOUT_FILE
    with resources.as_file(path) as p:
        if not p.exists():
            raise WispError(
                f"the held-out text {HELDOUT_FILE} is missing from the installed package"
            )
        with np.load(p) as f:
            return f["text"].tobytes().decode("ascii")


def windows(seq: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets [n, seq] of the first `limit` held-out windows."""
    ids = encode(heldout_text(), where=HELDOUT_FILE)
    n = (ids.size - 1) // seq
    n = min(n, DEFAULT_WINDOWS if limit is None else limit)
    x = ids[: n * seq].reshape(n, seq)
    y = ids[1 : n * seq + 1].reshape(n, seq)
    return x, y


@dataclass
class LMResult:
    correct: int = 0
    total: int = 0
    nats: float = 0.0
    predictions: list[np.ndarray] | None = None
    cycles: float = 0.0  # means per window (interpreter runs only)
    dram_bytes: float = 0.0
    energy_uj: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def bits_per_char(self) -> float:
        return self.nats / self.total / math.log(2) if self.total else 0.0


def evaluate_lm(
    model: Model, *, limit: int | None = None, runner: Runner | None = None
) -> LMResult:
    """Teacher-forced accuracy and bits/char of a full-sequence LM (ids [seq] → logits [seq, V])."""
    ((name, (shape, _)),) = model.input_specs().items()
    x, y = windows(shape[0], limit)
    result = LMResult(predictions=[])
    for xi, yi in zip(x, y, strict=True):
        inputs = {name: xi}
        if runner is None:
            outputs, report = reference.run(model, inputs), None
        else:
            outputs, report = runner(inputs)
        logits = np.asarray(outputs["out0"], np.float64)
        m = logits.max(-1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
        result.nats -= float(logp[np.arange(yi.size), yi].sum())
        pred = logits.argmax(-1)
        result.correct += int((pred == yi).sum())
        result.total += yi.size
        assert result.predictions is not None
        result.predictions.append(pred)
        if report is not None:
            result.cycles += report.cycles / len(x)
            result.dram_bytes += (report.dram_read + report.dram_write) / len(x)
            result.energy_uj += report.energy_total_pj / 1e6 / len(x)
    return result


def print_lm_eval(model: Model, limit: int | None, compiled: Any = None) -> None:
    """`wisp eval` for a language model: the reference, and the interpreter when compiled."""
    ref = evaluate_lm(model, limit=limit)
    what = f"{ref.total} characters of held-out Python source, teacher-forced"
    if compiled is None:
        print(
            f"{model.name}: next-char accuracy {100 * ref.accuracy:.2f}%, "
            f"{ref.bits_per_char:.4f} bits/char ({what}, reference executor)"
        )
        return

    def on_npu(x):  # noqa: ANN001, ANN202
        r = compiled.run(x)
        return r.outputs, r.report

    npu = evaluate_lm(model, limit=limit, runner=on_npu)
    assert npu.predictions is not None and ref.predictions is not None
    agree = sum(int((a == b).sum()) for a, b in zip(npu.predictions, ref.predictions, strict=True))
    print(f"{model.name} on {compiled.target} ({what})")
    print(
        f"  NPU interpreter : accuracy {100 * npu.accuracy:6.2f}%  {npu.bits_per_char:.4f} bits/char"
    )
    print(
        f"  reference (nn)  : accuracy {100 * ref.accuracy:6.2f}%  {ref.bits_per_char:.4f} bits/char"
    )
    print(f"  predictions agreeing: {agree}/{npu.total}")
    print(
        f"  per window of {npu.total // max(len(npu.predictions), 1)} chars: {npu.cycles:,.0f} "
        f"cycles, DRAM {npu.dram_bytes:,.0f} B, energy {npu.energy_uj:,.2f} uJ (measured: interpreter)"
    )
