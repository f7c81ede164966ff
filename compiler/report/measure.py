"""The one interpreter run of `wisp report`: on --input, else the model's first evaluation sample
(a bundled dataset), else the program image's own input contents; traced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.report.load import Outdir


@dataclass
class Measured:
    """What the run gave: the interpreter's report, its trace events and what it ran on."""

    report: Any  # backend.interpreter.Report
    events: list[dict[str, Any]]
    input_label: str


def _inputs(
    out: Outdir, input_path: str | None, sample: int
) -> tuple[dict[str, np.ndarray] | None, str]:
    from compiler.errors import WispError

    symbols = [s for s in out.program.symbols.values() if s.kind == "input"]
    if input_path is not None:
        from compiler.io_util import load_npz
        from compiler.weight_audit import audit_inputs

        arrays = load_npz(input_path, "input")
        audit_inputs(str(input_path), arrays)
        shapes = {s.name: tuple(s.shape) for s in symbols}
        for name, x in arrays.items():
            if name not in shapes:
                raise WispError(
                    f"{input_path}: unknown input '{name}' (the program takes {', '.join(shapes)})"
                )
            if tuple(x.shape) != shapes[name]:
                raise WispError(
                    f"{input_path}: input '{name}' has shape {list(x.shape)}, the program "
                    f"expects {list(shapes[name])}"
                )
        missing = sorted(set(shapes) - set(arrays))
        if missing:
            raise WispError(f"{input_path}: missing input(s) {', '.join(missing)}")
        return arrays, f"--input {Path(input_path).name}"
    from compiler.evaluate import DATASETS

    if out.dataset in DATASETS and len(symbols) == 1:
        images, labels = DATASETS[out.dataset]()
        if not 0 <= sample < len(images):
            raise WispError(f"--sample {sample}: the {out.dataset} set has {len(images)} samples")
        x = np.asarray(images[sample])
        if int(np.prod(symbols[0].shape)) == x.size:
            return (
                {symbols[0].name: x.reshape(symbols[0].shape)},
                f"{out.dataset} evaluation sample {sample} (label {int(labels[sample])})",
            )
    if sample:
        raise WispError(f"--sample {sample}: {out.model} has no bundled evaluation set")
    return None, "the input contents of the program image (no --input given)"


def measure(out: Outdir, input_path: str | None = None, sample: int = 0) -> Measured:
    """Run the program once on the interpreter with a trace."""
    from backend.interpreter import run

    inputs, label = _inputs(out, input_path, sample)
    result = run(out.program, inputs, out.config, trace=True)
    return Measured(result.report, result.trace_events, label)
