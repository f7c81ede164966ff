"""Printed text: layer names sort naturally; counts take the right plural."""

from __future__ import annotations

from backend.interpreter.report import Report, TagStats
from backend.wording import natural_key, plural
from compiler.pipeline import format_report


def test_natural_order_of_layer_names() -> None:
    names = [
        "blocks.10.mlp",
        "blocks.2.attn",
        "blocks.1.mlp",
        "embed",
        "blocks.2.mlp",
        "out10",
        "out2",
    ]
    assert sorted(names, key=natural_key) == [
        "blocks.1.mlp",
        "blocks.2.attn",
        "blocks.2.mlp",
        "blocks.10.mlp",
        "embed",
        "out2",
        "out10",
    ]


def test_plurals() -> None:
    assert [plural(n, "pass") for n in (0, 1, 2)] == ["0 passes", "1 pass", "2 passes"]
    assert plural(7, "head") == "7 heads" and plural(1, "head") == "1 head"
    assert plural(1200, "FFN unit") == "1,200 FFN units"


def test_interpreter_table_lists_tags_in_natural_order() -> None:
    r = Report(config="spatten", clock_mhz=1000.0)
    for tag in ("blocks.10.mlp", "blocks.2.mlp", "embed"):
        r.per_tag[tag] = TagStats(instrs=1)
    rows = [ln.split()[0] for ln in r.table().splitlines() if ln.startswith(("blocks", "embed"))]
    assert rows == ["blocks.2.mlp", "blocks.10.mlp", "embed"]
    assert "measured: interpreter run" in r.table()


def test_pass_report_labels_modeled_costs_as_estimates() -> None:
    text = format_report(
        "p", {"before": {"cycles": 10, "macs": 4}, "after": {"cycles": 8, "macs": 2}}
    )
    lines = text.splitlines()
    assert lines[1].split()[0] == "cycles" and "(est.)" in lines[1]
    assert "(est.)" not in lines[2]  # MACs are counted, not modeled
    assert lines[-1].strip().startswith("(est.: static cost model")
