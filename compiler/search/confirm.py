"""Confirm the final front once: the interpreter's measured cost against the static estimate the
search used, and test-split accuracy (the only time a search touches the test split)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.search.evaluate import count_correct


def confirm(model: str, target: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each candidate: interpreter cycles / DRAM bytes / energy of one test image (the programs
    have static shapes, so one image gives the cost) with the relative error of the estimate, and
    top-1 accuracy on the whole test split by the reference executor."""
    from compiler.api import compile_model
    from compiler.evaluate import DATASETS

    out = []
    for r in rows:
        with contextlib.redirect_stdout(io.StringIO()):  # the passes' reports
            compiled = compile_model(model, r["pipeline"], target)
        images, labels = DATASETS[compiled.model.meta["dataset"]]()
        (name,) = compiled.model.input_specs()
        rep = compiled.run({name: images[0]}).report
        measured = {
            "cycles": int(rep.cycles),
            "dram_bytes": int(rep.dram_read + rep.dram_write),
            "energy_pj": float(rep.energy_total_pj),
        }
        correct, total = count_correct(compiled.model, images, labels, None)
        out.append(
            {
                "trial": r.get("trial"),
                "pipeline": r["pipeline"],
                "measured": measured,
                "estimate_error": {k: (r[k] - v) / v if v else 0.0 for k, v in measured.items()},
                "test_accuracy": correct / total,
                "test_total": total,
            }
        )
    return out


def worst_error(confirmed: Sequence[dict[str, Any]]) -> float:
    """The largest |relative error| of the static estimate over the confirmed candidates."""
    errs = [abs(e) for c in confirmed for e in c["estimate_error"].values()]
    return float(np.max(errs)) if errs else 0.0
