"""The depgraph pass in a pipeline and the `wisp depgraph` command (text, JSON, DOT, -o)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import ArrayAttr, StringAttr

from compiler.cli.wisp import main
from compiler.models import build
from compiler.pipeline import run_pipeline
from compiler.reference import run
from dialects import nn
from passes.depgraph import ATTR_GROUPS

DEIT = [
    "--layers",
    "2",
    "--dim",
    "12",
    "--heads",
    "3",
    "--mlp-dim",
    "10",
    "--image",
    "8",
    "--patch",
    "4",
]


def _ids(op: nn.NNOp) -> list[str]:
    attr = op.attributes.get(ATTR_GROUPS)
    assert attr is None or isinstance(attr, ArrayAttr)
    return [] if attr is None else [a.data for a in attr.data if isinstance(a, StringAttr)]


def test_pass_tags_ops_and_changes_nothing_else() -> None:
    model = build("deit-tiny", layers=2, dim=12, heads=3, mlp_dim=10, image=8, patch=4, classes=4)
    image = np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)
    before = run(model, {"image": image})["out0"]
    run_pipeline(model, "depgraph,depgraph")  # idempotent: attributes are replaced, not appended
    linears = [op for op in model.main.walk() if isinstance(op, nn.LinearOp)]
    fc = [_ids(op) for op in linears if "fc" in str(op.operands[1].owner)]
    assert fc == [["embed0", "ffn0"], ["embed0", "ffn0"], ["embed0", "ffn1"], ["embed0", "ffn1"]]
    (attn0, attn1) = [op for op in model.main.walk() if isinstance(op, nn.AttentionOp)]
    assert _ids(attn0) == [
        "head0",
        "head1",
        "head2",
        "qk_dim0",
        "qk_dim1",
        "qk_dim2",
        "v_dim0",
        "v_dim1",
        "v_dim2",
    ]
    assert _ids(attn1)[0] == "head3"
    np.testing.assert_array_equal(run(model, {"image": image})["out0"], before)


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dg.json"
    assert main(["depgraph", "deit-tiny", *DEIT, "--format", "json", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    data = json.loads(out.read_text())
    kinds = [g["kind"] for g in data["groups"]]
    assert kinds.count("head") == 6 and kinds.count("ffn") == 2 and kinds.count("embed") == 1
    head = next(g for g in data["groups"] if g["kind"] == "head")
    assert (
        head["size"] == 1 and head["prunable"] and head["head"] == {"attention": "%19", "index": 0}
    )
    q = next(m for m in head["members"] if m["symbol"] == "blocks.0.attn.q.weight")
    assert q == {"symbol": "blocks.0.attn.q.weight", "axis": 0, "indices": [[0, 1, 2, 3]]}
    blocked = [g for g in data["groups"] if not g["prunable"]]
    assert blocked and all(g["blocked_by"] for g in blocked)


def test_cli_text_and_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "depgraph",
                "gpt2",
                "--layers",
                "1",
                "--dim",
                "8",
                "--heads",
                "2",
                "--seq",
                "4",
                "--vocab",
                "9",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert (
        text.startswith("depgraph: gpt2:") and "causal nn.attention masks by token position" in text
    )
    assert (
        main(
            [
                "depgraph",
                "bert-tiny",
                "--layers",
                "1",
                "--dim",
                "8",
                "--heads",
                "2",
                "--seq",
                "4",
                "--format",
                "dot",
            ]
        )
        == 0
    )
    dot = capsys.readouterr().out
    assert dot.startswith("graph depgraph {") and dot.rstrip().endswith("}")


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["depgraph", "no-such-model"]) == 1
    assert "unknown model" in capsys.readouterr().err
