"""A program is untrusted data: the reproducers of issue 13's program-side findings.

Each case runs `wisp run` in-process (the same `main` the console script calls) and checks one error
line naming the place, exit status 1, no traceback, and that nothing outside the program was read.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest

from backend.asm import assemble
from backend.errors import AsmError, ConfigError, SimError
from backend.interpreter import run
from backend.interpreter.limits import Limits
from backend.npubin import write

HEADER = ".config spatten 0000000000000000\n.dram 0x400\n"


def wisp(*args: str | Path, cwd: Path) -> tuple[int, list[str]]:
    from compiler.cli.wisp import main

    err = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(old)
    return code, [ln for ln in err.getvalue().splitlines() if ln.strip()]


def one_error(code: int, lines: list[str], *needles: str) -> str:
    assert code == 1, lines
    errors = [ln for ln in lines if ": error: " in ln]
    assert len(errors) == 1 and not any("Traceback" in ln for ln in lines), lines
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("name", ["/dev/zero", "../../etc/passwd", "/etc/passwd", "x.toml"])
def test_program_config_name_is_never_opened(tmp_path: Path, name: str) -> None:
    text = f'.config "{name}" 0000000000000000\n.dram 0x100\nfinish\n'
    prog = tmp_path / "p.s"
    prog.write_text(text)
    (tmp_path / "x.toml").write_text("garbage = [")  # would be read if names were paths
    start = time.monotonic()
    code, lines = wisp("run", prog, cwd=tmp_path)
    one_error(code, lines, "not a bundled config", "--config")
    assert time.monotonic() - start < 30  # a hang guard, not a speed test
    binary = tmp_path / "p.npubin"
    binary.write_bytes(write(assemble(text)))
    one_error(*wisp("run", binary, cwd=tmp_path), "not a bundled config")
    with pytest.raises(ConfigError, match="not a bundled config"):
        run(assemble(text))


def test_explicit_config_file_is_used(tmp_path: Path) -> None:
    src = (Path(__file__).parents[2] / "backend" / "configs" / "edge.toml").read_text()
    (tmp_path / "mine.toml").write_text(src.replace('name = "edge"', 'name = "mine"'))
    (tmp_path / "p.s").write_text('.config "/dev/zero" 0000000000000000\nfinish\n')
    code, lines = wisp("run", "p.s", "--config", "mine.toml", "--timing-only", cwd=tmp_path)
    assert code == 0, lines


@pytest.mark.parametrize(
    "target, why",
    [
        ("../../etc/passwd", "without '..'"),
        ("/etc/passwd", "without '..'"),
        ("/dev/zero", "without '..'"),
        ("sub/../../x", "without '..'"),
        ("link", "outside"),
        ("fifo", "not a regular file"),
    ],
)
def test_incbin_stays_in_the_program_directory(tmp_path: Path, target: str, why: str) -> None:
    d = tmp_path / "prog"
    d.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"secret")
    (d / "link").symlink_to(tmp_path / "secret.bin")
    os.mkfifo(d / "fifo")
    (d / "p.s").write_text(f'.incbin "{target}"\nfinish\n')
    start = time.monotonic()
    one_error(*wisp("run", d / "p.s", cwd=tmp_path), "p.s:1:", "cannot read .incbin", why)
    assert time.monotonic() - start < 30  # a hang guard, not a speed test


def test_incbin_inside_the_directory_still_works(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x01\x02")
    (tmp_path / "p.s").write_text('.incbin "sub/w.bin"\nfinish\n')
    from backend.asm import assemble as asm

    assert asm((tmp_path / "p.s").read_text(), str(tmp_path / "p.s")).data == b"\x01\x02"
    with pytest.raises(AsmError, match="read from disk"):
        asm('.incbin "sub/w.bin"\n')  # no file, no directory to resolve against


STRIDE0 = (
    HEADER + "matmul mode=fp16, a=act[0], a_stride=0, b=wgt[0], b_stride=0, c=acc[0], "
    "c_stride=1, m=32768, n=1, k=65535\nfinish\n"
)


def test_stride0_huge_tile_is_refused_before_allocating(tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text(STRIDE0)
    for extra in ([], ["--timing-only"]):
        start = time.monotonic()
        line = one_error(*wisp("run", "p.s", *extra, cwd=tmp_path), "instruction 0", "matmul")
        assert "elements per tile" in line and "--max-memory" in line
        assert time.monotonic() - start < 30  # a hang guard, not a speed test


def test_cycle_limit(tmp_path: Path) -> None:
    text = (
        HEADER + "vec op=exp, dtype=fp16, dst=vec[0], dst_stride=64, a=vec[0], a_stride=64, "
        "rows=64, cols=64\n" * 3 + "finish\n"
    )
    (tmp_path / "p.s").write_text(text)
    assert wisp("run", "p.s", "--timing-only", cwd=tmp_path)[0] == 0
    line = one_error(*wisp("run", "p.s", "--max-cycles", "100", cwd=tmp_path), "instruction")
    assert "100" in line and "--max-cycles" in line


def test_memory_limit_checks_dram_before_allocating() -> None:
    prog = assemble(".config spatten 0000000000000000\n.dram 0x100000000\nfinish\n")
    with pytest.raises(SimError, match="more than the memory limit"):
        run(prog)
    run(prog, limits=Limits(max_memory=1 << 30), timing_only=True)  # no memory in timing mode


@pytest.mark.parametrize(
    "symbol", [".symbol out 0x0 [1000] fp32 output", ".symbol out 0x3ff [2] int8 output"]
)
def test_symbols_are_checked_against_dram(tmp_path: Path, symbol: str) -> None:
    (tmp_path / "p.s").write_text(HEADER + symbol + "\nfinish\n")
    one_error(*wisp("run", "p.s", cwd=tmp_path), "symbol 'out'", "beyond the DRAM size 1024")


def test_non_utf8_assembly_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "p.s").write_bytes(b"finish ; \xff\xfe\n")
    one_error(*wisp("run", "p.s", cwd=tmp_path), "p.s: not UTF-8", "byte 9")


def test_device_file_as_program_is_refused(tmp_path: Path) -> None:
    start = time.monotonic()
    one_error(*wisp("run", "/dev/zero", cwd=tmp_path), "/dev/zero", "not a regular file")
    assert time.monotonic() - start < 30  # a hang guard, not a speed test


def test_staging_leftover_is_not_an_output(tmp_path: Path) -> None:
    d = tmp_path / ".out.staging-abc123"
    d.mkdir()
    (d / "program.s").write_text("finish\n")
    one_error(*wisp("run", d, cwd=tmp_path), "leftover staging directory")


def test_normal_program_still_runs() -> None:
    src = Path(__file__).parents[2] / "examples" / "int8_matmul_requant.s"
    prog = assemble(src.read_text(), str(src))
    out = run(prog).outputs["out"]
    assert out.shape == (8, 8) and out.dtype == np.int8


def test_huge_zero_directive_is_refused_without_allocating() -> None:
    """Found by benchmarks/fuzz.py (seed 0, asm case 156): `.zero 2147483647`."""
    with pytest.raises(AsmError, match=r"1:7: \.zero count 2147483647 out of range"):
        assemble(".zero 2147483647\nfinish\n", "f.s")
