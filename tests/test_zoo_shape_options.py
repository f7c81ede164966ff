"""Zoo shape options that follow each other (heads and mlp_dim from dim) and the CLI's BERT flags."""

from __future__ import annotations

import argparse

import pytest

from compiler.cli.model_args import add_model_arguments, model_from_args
from compiler.errors import WispError
from compiler.models import build
from compiler.models.shape_options import derived_heads

SMALL = {"layers": 1, "seq": 8, "vocab": 40}


@pytest.mark.parametrize(
    ("name", "dim", "heads", "mlp"),
    [
        ("gpt2", 128, 2, 512),
        ("gpt2", 256, 4, 1024),
        ("bert-base", 96, 2, 384),
        ("deit-tiny", 64, 1, 256),
    ],
)
def test_dim_alone_derives_heads_and_mlp(name: str, dim: int, heads: int, mlp: int) -> None:
    kw = {"layers": 1, "image": 32} if name == "deit-tiny" else SMALL
    c = build(name, dim=dim, **kw).meta["config"]
    assert (c["dim"], c["heads"], c["mlp_dim"]) == (dim, heads, mlp)
    assert c["dim"] % c["heads"] == 0


def test_explicit_options_win() -> None:
    c = build("gpt2", dim=128, heads=8, mlp_dim=200, **SMALL).meta["config"]
    assert (c["heads"], c["mlp_dim"]) == (8, 200)


def test_derived_heads_always_divides() -> None:
    for dim in range(1, 300):
        h = derived_heads(dim, 64)
        assert dim % h == 0 and abs(dim / h - 64) <= max(abs(dim / d - 64) for d in (1, dim))


def test_impossible_combinations_say_what_to_do() -> None:
    with pytest.raises(
        WispError,
        match=r"dim 100 is not divisible by heads 12 .*--heads 4 / 5 / 10 / 20 for dim 100",
    ):
        build("gpt2", dim=100, heads=12, **SMALL)
    with pytest.raises(WispError, match=r"heads 5 \(heads given\).*pass --dim, a multiple of 5"):
        build("gpt2", heads=5, **SMALL)


def test_cli_flags_reach_the_zoo() -> None:
    p = argparse.ArgumentParser()
    add_model_arguments(p)
    args = p.parse_args(
        [
            "bert-tiny",
            "--dim",
            "64",
            "--attention-mask",
            "--token-types",
            "--outputs",
            "hidden,pooled",
        ]
        + ["--layers", "1", "--seq", "8", "--vocab", "40"]
    )
    m = model_from_args(args)
    assert list(m.input_specs()) == ["ids", "attention_mask", "token_type_ids"]
    assert len(m.main.function_type.outputs.data) == 2
    assert m.meta["config"]["heads"] == 1
