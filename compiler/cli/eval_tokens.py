"""Lines `wisp eval OUTDIR` prints about token and head pruning, from the pass reports in
compile.json (tokens kept per layer, heads kept per layer, MACs before → after, rows predicted,
FFN rows at int8 / INT4-MSB)."""

from __future__ import annotations

import json
from pathlib import Path


def pruning_lines(outdir: str | Path) -> list[str]:
    path = Path(outdir) / "compile.json"
    try:
        passes = json.loads(path.read_text()).get("passes", [])
    except (OSError, ValueError):
        return []
    lines: list[str] = []
    for p in passes:
        rep = p.get("report") or {}
        if "tokens_per_layer" in rep:
            counts = [str(rep["before"]["tokens"])] + [
                str(x["tokens"]) for x in rep["tokens_per_layer"]
            ]
            lines.append(f"  tokens kept per layer ({p['name']}): " + " → ".join(counts))
            before, after = rep["before"]["macs"], rep["after"]["macs"]
            lines.append(
                f"  MACs (nn, per inference)  : {before:,} → {after:,}"
                f" ({100 * (after - before) / before:+.1f}%)"
            )
        if "predict_per_layer" in rep:  # FACT eager prediction (passes/eager_predict.py)
            per = rep["predict_per_layer"]
            rows = " ".join(str(x["rows_predicted"]) for x in per)
            skip = " ".join(str(x.get("kv_rows_skipped", 0)) for x in per)
            one = " ".join(str(x.get("one_hot_rows", 0)) for x in per)
            lines.append(
                f"  rows predicted per layer ({p['name']}): {rows}; top-{per[0]['topk']} keys"
                f" per row; one-hot rows per layer: {one}; K/V rows skipped per layer: {skip}"
                " (calibration means)"
            )
        if "mixed_per_layer" in rep:  # FACT mixed-precision FFN (passes/mixed_ffn.py)
            per = rep["mixed_per_layer"]
            rows = " ".join(f"{x['int8_rows']}/{x['int4_rows']}" for x in per)
            moved = sum(x["int4_macs"] for x in per)
            total = sum(x["ffn_macs"] for x in per)
            lines.append(
                f"  FFN token rows int8/INT4-MSB per layer ({p['name']}): {rows};"
                f" {moved:,} of {total:,} FFN MACs at INT4 ({100 * moved / max(total, 1):.0f}%)"
            )
        if "heads_per_layer" in rep:
            heads = " ".join(str(x["heads"]) for x in rep["heads_per_layer"])
            lines.append(f"  heads kept per layer ({p['name']}): {heads}")
    return lines
