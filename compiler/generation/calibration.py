"""Calibration samples of a decode form from real text (compiler/calibration.py uses them for any
model whose `form` is decodeS).

Sample i is a real decode step: a prefix of `p_i` held-out characters (p_i in 1..BUCKET) in the
cache (its keys and values from the reference prefill of the same weights, the other slots zero
and masked) and the next character as the new token. Every decode bucket gets the same samples
(the prefixes fit the smallest bucket), so scales calibrated on the cache inputs are the same for
all buckets (progressive-quant's K scale: passes/progressive_kv.py). The characters come from
the held-out split at CALIB_OFFSET, a span that `wisp eval` (the first 16 windows) and the
benchmark's default prompts (bench_generate.py) do not read. A resident form (its cache written
in place, `meta["resident"]`) gets the same steps with the new token at slot `p_i` (and, with
kv-prune's keep-k inputs, zero carried scores and positions 0..S).
"""

from __future__ import annotations

import numpy as np

from compiler import reference
from compiler.model import Model
from passes.context import Calibration

CALIB_OFFSET = 8192  # held-out characters [8192, 8192 + BUCKET + 1) calibrate decode forms


def decode_calibration(model: Model, samples: int) -> Calibration:
    """`samples` real decode steps for the decode form `model` (see the module docstring)."""
    from compiler.calibration import ReferenceExecutor
    from compiler.generation.forms import BUCKET, LanguageModel
    from compiler.generation.lm_eval import heldout_text
    from compiler.models.char_vocab import encode

    lm = LanguageModel.of(model)
    in_place = bool(model.meta.get("resident"))
    specs = model.input_specs()
    slots = int(specs["mask"][0][0]) - 1
    n = min(BUCKET, slots)
    ids = encode(heldout_text())[CALIB_OFFSET : CALIB_OFFSET + n + 1]
    outs = reference.run(lm.prefill(n), {"ids": ids[:n].astype(np.int32)})
    kv = {name: outs[f"out{1 + i}"] for i, name in enumerate(lm.kv_names)}
    inputs = []
    for i in range(samples):
        p = 1 + (i * 11) % n  # past lengths spread over 1..n
        mask = np.zeros(slots + 1, np.int32)
        mask[:p] = 1
        mask[p if in_place else slots] = 1  # the new token's slot
        sample = {
            "ids": ids[p : p + 1].astype(np.int32),
            "pos": np.array([p], np.int32),
            "mask": mask,
        }
        if in_place:
            sample["slot"] = np.array([p], np.int32)
        if "kv_scores" in specs:  # kv-prune's keep-k inputs (no calibrated op reads them)
            sample["kv_scores"] = np.zeros(slots + 1, np.float32)
            sample["positions"] = np.arange(slots + 1, dtype=np.int32)
        for name, rows in kv.items():
            cache = np.zeros((slots + in_place, rows.shape[1]), np.float32)
            cache[:p] = rows[:p]
            sample[name] = cache
        inputs.append(sample)
    return Calibration(inputs, None, ReferenceExecutor())
