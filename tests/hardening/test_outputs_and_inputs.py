"""Data loss on output, and inputs/weights/configs that would be silently misread (issue 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from backend.config import MAX_SRAM_BYTES, bundled_config, config_from_dict, load_config
from backend.convert import lossy_reason
from backend.errors import ConfigError, SimError
from compiler.errors import WispError, WispWarning
from compiler.io_util import load_npz, save_npz
from compiler.output_guard import check_replaceable

ROOT = Path(__file__).parents[2]


# ---- -o: never replace what the user did not ask to lose ----------------------------------------


def test_output_guard_refuses_user_data(tmp_path: Path) -> None:
    f = tmp_path / "model.mlir"
    f.write_text("user data")
    with pytest.raises(WispError, match="regular file.*--force"):
        check_replaceable(f)
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    with pytest.raises(WispError, match="not a wisp output"):
        check_replaceable(d)
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(WispError, match="symbolic link"):
        check_replaceable(link)
    for bad in (".", ".."):
        with pytest.raises(WispError, match="refusing"):
            check_replaceable(bad, force=True)
    check_replaceable(f, force=True)  # the user asked
    check_replaceable(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty")
    (d / ".wisp-output").write_text("")
    check_replaceable(d)  # an earlier output


def test_compile_api_keeps_user_file(tmp_path: Path) -> None:
    from compiler.api import compile_model

    target = tmp_path / "model.mlir"
    target.write_text("precious")
    compiled = compile_model("digits-vit", "", None)
    with pytest.raises(WispError, match="regular file"):
        compiled.save(target)
    assert target.read_text() == "precious"
    out = tmp_path / "out"
    compiled.save(out)
    compiled.save(out)  # replacing its own output is fine
    assert (out / ".wisp-output").exists()


def test_sigterm_during_compile_leaves_no_staging(tmp_path: Path) -> None:
    """A compile killed with SIGTERM removes its staging directory and leaves OUTDIR absent."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    code = (
        "import sys, time\n"
        "import compiler.io_util as io\n"
        "orig = io.staged_directory\n"
        "from contextlib import contextmanager\n"
        "@contextmanager\n"
        "def slow(t):\n"
        "    with orig(t) as s:\n"
        "        print('staging', flush=True); time.sleep(30); yield s\n"
        "io.staged_directory = slow\n"
        "from compiler.cli.wisp import main\n"
        "sys.exit(main(['compile', 'digits-vit', '--target', 'none', '-o', 'out']))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    ) as p:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "staging"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 128 + signal.SIGTERM
    assert sorted(x.name for x in tmp_path.iterdir()) == []


# ---- inputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, target, why",
    [
        (np.array([300.0]), np.int8, "do not fit"),
        (np.array([2**40], np.int64), np.int8, "do not fit"),
        (np.array([1.5]), np.int32, "truncated"),
        (np.array([np.nan]), np.int8, "non-finite"),
        (np.array([1 + 2j]), np.float32, "complex"),
        (np.array([1e6]), np.float16, "overflows"),
        (np.array([70000], np.int32), np.float16, "overflows"),
        (np.array(["a"]), np.float32, "not numbers"),
    ],
)
def test_lossy_conversions_are_named(values: np.ndarray, target: type, why: str) -> None:
    reason = lossy_reason(values, np.dtype(target))
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "values, target",
    [
        (np.array([-128, 127]), np.int8),
        (np.array([3.0, -4.0]), np.int8),
        (np.array([0.1, 65504.0]), np.float16),  # rounding is the machine's arithmetic
        (np.array([np.inf, np.nan]), np.float16),  # already non-finite: nothing lost
        (np.array([True]), np.int8),
    ],
)
def test_lossless_conversions_pass(values: np.ndarray, target: type) -> None:
    assert lossy_reason(values, np.dtype(target)) is None


def test_interpreter_refuses_wrapping_input() -> None:
    from backend.asm import assemble
    from backend.interpreter import run

    src = ROOT / "examples" / "int8_matmul_requant.s"
    prog = assemble(src.read_text(), str(src))
    with pytest.raises(SimError, match=r"input 'A' \(float64\) cannot become int8: values in"):
        run(prog, {"A": np.full((8, 16), 200.0)})
    with pytest.raises(SimError, match="complex"):
        run(prog, {"A": np.ones((8, 16), np.complex64)})
    run(prog, {"A": np.ones((8, 16), np.int64)})  # exact: fine


@pytest.mark.parametrize(
    "payload, needle",
    [
        (b"", "not a valid .npz"),
        (b"PK\x03\x04" + b"\x00" * 10, "not a valid .npz"),
        (b"\x93NUMPY\x01\x00", "not a valid .npz"),
    ],
)
def test_bad_input_npz_names_the_file(tmp_path: Path, payload: bytes, needle: str) -> None:
    p = tmp_path / "in.npz"
    p.write_bytes(payload)
    with pytest.raises(WispError, match=r"in\.npz: " + needle.replace(".", r"\.")):
        load_npz(p, "input")


def test_bad_npz_member_names_file_and_array(tmp_path: Path) -> None:
    p = tmp_path / "in.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("good.npy", b"")  # not a .npy (numpy would hand back raw bytes)
    with pytest.raises(WispError, match=r"in\.npz: array 'good': cannot read"):
        load_npz(p)


def test_device_npz_is_refused() -> None:
    start = time.monotonic()
    with pytest.raises(WispError, match="not a regular file"):
        load_npz("/dev/zero", "input")
    assert time.monotonic() - start < 30  # a hang guard, not a speed test


@pytest.mark.parametrize("name", ["../../x", "a/b", ".."])
def test_output_member_names_are_plain(tmp_path: Path, name: str) -> None:
    with pytest.raises(WispError, match="not a plain name"):
        save_npz(tmp_path / "o.npz", {name: np.zeros(1)})
    assert not (tmp_path / "o.npz").exists()


# ---- weights -------------------------------------------------------------------------------------


def _saved_model(tmp_path: Path) -> tuple[Path, Path]:
    from compiler.models import build

    model = build("digits-vit")
    mlir = model.save(tmp_path, "m")
    return mlir, tmp_path / "m.weights.npz"


def test_nan_weights_and_unused_keys_warn(tmp_path: Path) -> None:
    from compiler.model import Model

    mlir, wpath = _saved_model(tmp_path)
    arrays = load_npz(wpath)
    name = next(k for k, v in arrays.items() if v.dtype.kind == "f")
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    arrays["typo.weight"] = np.zeros(2, np.float32)
    np.savez(wpath, **arrays)  # pyright: ignore[reportArgumentType]
    with pytest.warns(WispWarning) as got:
        Model.load(mlir)
    texts = [str(w.message) for w in got]
    assert any(f"weight '{name}' has 1 NaN" in t and "m.weights.npz" in t for t in texts), texts
    assert any("typo.weight" in t for t in texts), texts


def test_clean_weights_do_not_warn(tmp_path: Path) -> None:
    import warnings

    from compiler.model import Model

    mlir, _ = _saved_model(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Model.load(mlir)


# ---- configs -------------------------------------------------------------------------------------


def _spatten_dict() -> dict:
    import json

    return json.loads(bundled_config("spatten").canonical)


def test_config_sram_beyond_the_offset_field_is_refused() -> None:
    d = _spatten_dict()
    d["sram"]["acc"] = MAX_SRAM_BYTES + 1
    with pytest.raises(ConfigError, match="'sram.acc'.*22-bit"):
        config_from_dict(d, "big.toml")
    d["sram"]["acc"] = 2**63
    with pytest.raises(ConfigError, match="sram.acc"):
        config_from_dict(d, "big.toml")
    d = _spatten_dict()
    d["matrix"]["rows"] = 10**12
    with pytest.raises(ConfigError, match="'matrix.rows'"):
        config_from_dict(d, "big.toml")


@pytest.mark.parametrize("name", ["/dev/zero", "../configs/spatten", "spatten.toml", ""])
def test_bundled_config_takes_bare_names_only(name: str) -> None:
    with pytest.raises(ConfigError, match="not a bundled config"):
        bundled_config(name)


def test_config_path_must_be_a_regular_small_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * ((1 << 20) + 2))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(big)


def test_compiled_outdir_config_is_its_saved_copy(tmp_path: Path) -> None:
    """`wisp eval OUTDIR` never opens a path written in compile.json."""
    import json

    from compiler.api import compile_model, load_compiled

    out = tmp_path / "out"
    compile_model("digits-vit", "", "edge").save(out)
    manifest = json.loads((out / "compile.json").read_text())
    manifest["target"] = "/dev/zero"
    (out / "compile.json").write_text(json.dumps(manifest))
    assert load_compiled(out).config.hash == bundled_config("edge").hash
