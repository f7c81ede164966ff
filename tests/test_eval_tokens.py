"""`wisp eval OUTDIR`'s token lines from a compile.json: the FACT prediction (rows predicted,
one-hot rows, K/V rows skipped) and the mixed-precision FFN (rows int8/INT4, MACs at INT4)."""

from __future__ import annotations

import json
from pathlib import Path

from compiler.cli.eval_tokens import pruning_lines


def test_fact_lines(tmp_path: Path) -> None:
    predict = [
        {"layer": f"blocks.{i}", "rows_predicted": 260, "topk": 32, "one_hot_rows": o,
         "kv_rows_skipped": 0.0}
        for i, o in enumerate((0.0, 3.5))
    ]  # fmt: skip
    mixed = [
        {"layer": f"blocks.{i}", "int8_rows": 16, "int4_rows": 49, "ffn_macs": 1000,
         "int4_macs": 750}
        for i in range(2)
    ]  # fmt: skip
    passes = [
        {"name": "eager-predict", "report": {"predict_per_layer": predict}},
        {"name": "mixed-ffn", "report": {"mixed_per_layer": mixed}},
    ]
    (tmp_path / "compile.json").write_text(json.dumps({"passes": passes}))
    lines = pruning_lines(tmp_path)
    assert lines == [
        "  rows predicted per layer (eager-predict): 260 260; top-32 keys per row; one-hot rows"
        " per layer: 0.0 3.5; K/V rows skipped per layer: 0.0 0.0 (calibration means)",
        "  FFN token rows int8/INT4-MSB per layer (mixed-ffn): 16/49 16/49; 1,500 of 2,000 FFN"
        " MACs at INT4 (75%)",
    ]
