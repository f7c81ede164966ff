"""Discoverable pass options: `wisp passes` and `wisp passes NAME` show every option of every pass, with
its type, default and help, read from the pass dataclasses; a listed default parses back to the value
the pass really gets."""

from __future__ import annotations

import dataclasses
import re

import pytest
from frontdoor_util import run_cli

from compiler.errors import WispError
from compiler.pass_options import pass_options
from compiler.pipeline import parse_pipeline
from compiler.registry import PASSES


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_option_has_help(name: str) -> None:
    cls = PASSES[name]()
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        assert f.metadata.get("help"), (
            f"{name}: option '{f.name}' has no field(metadata={{'help'}})"
        )


@pytest.mark.parametrize("name", sorted(PASSES))
def test_listed_defaults_parse_back_to_the_defaults(name: str) -> None:
    """The spec `name{opt=<listed default> ...}` gives the same pass as `name` alone, so what the
    listing says is the default is the default (an empty tuple, listed as `(none)`, cannot be
    written in a spec)."""
    opts = [o for o in pass_options(name) if o.default != ()]
    if not opts:
        return
    spec = name + "{" + " ".join(f"{o.name}={o.spec_default()}" for o in opts) + "}"
    (given,) = parse_pipeline(spec)
    (default,) = parse_pipeline(name)
    assert given == default, spec


def test_wisp_passes_lists_options_with_types_defaults_and_help() -> None:
    r = run_cli("wisp", "passes")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("structured-prune "))
    block = []
    for ln in lines[head + 1 :]:
        if not ln.startswith(" "):
            break
        block.append(ln.split(None, 2))
    cls = PASSES["structured-prune"]()
    assert [b[0].split("=")[0] for b in block] == [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    ratio = next(b for b in block if b[0].startswith("ratio="))
    assert ratio[0] == f"ratio={cls().ratio}" and ratio[1] == "float" and "[0, 1)" in ratio[2]


def test_wisp_passes_name_prints_the_pass_doc() -> None:
    r = run_cli("wisp", "passes", "head-prune")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("head-prune: SpAtten cascade head pruning")
    assert re.search(r"^  keep=1\s+int\s+heads kept", r.stdout, re.M)
    bad = run_cli("wisp", "passes", "head-prun")
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "unknown pass head-prun" in bad.stderr


def test_wisp_opt_help_lists_pass_options() -> None:
    r = run_cli("wisp-opt", "--help")
    assert r.returncode == 0
    assert re.search(r"^\s+keep=0\.7\s+tuple\[float, \.\.\.\]", r.stdout, re.M)  # token-prune


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(WispError) as info:
        parse_pipeline("canonicalize,token-prune{keep=0.5 shedule=ramp}")
    message = str(info.value)
    valid = ", ".join(f.name for f in dataclasses.fields(PASSES["token-prune"]()))  # type: ignore[arg-type]
    assert message == (
        f"pass 'token-prune': unknown option 'shedule'; valid options: {valid} "
        "(see `wisp passes token-prune`)"
    )
