"""Hardware configs: bundled files load, errors name the file and key, hash is stable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from backend.config import CONFIG_DIR, available_configs, config_hash, load_config
from backend.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]


def test_bundled_configs() -> None:
    assert {"spatten", "fact", "edge"} <= set(available_configs())
    sp = load_config("spatten")
    assert sp.clock_mhz == 1000 and sp.matrix.macs_per_cycle == 1024
    assert sp.sram[1] == sp.sram[3] == 196 * 1024  # K and V SRAM
    assert sp.dram.channels == 16 and sp.dram.burst_bytes == 32 and sp.dram.bytes_per_cycle == 512
    assert sp.select.comparators == 16
    fact = load_config("fact")
    assert fact.clock_mhz == 500 and fact.matrix.macs_per_cycle == 512


def test_hash_is_stable_and_content_based(tmp_path: Path) -> None:
    sp = load_config("spatten")
    assert len(sp.hash) == 8 and sp.hash == config_hash(load_config("spatten"))
    assert len({load_config(n).hash for n in ("spatten", "fact", "edge")}) == 3
    # same contents, different layout (JSON, no comments) → same hash
    data = tomllib.loads((CONFIG_DIR / "spatten.toml").read_text())
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(data, indent=4))
    assert load_config(p).hash == sp.hash
    data["vector"]["lanes"] = 128
    p.write_text(json.dumps(data))
    assert load_config(p).hash != sp.hash


def _write(tmp_path: Path, edit) -> Path:
    data = tomllib.loads((CONFIG_DIR / "edge.toml").read_text())
    edit(data)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d["sram"].pop("acc"), "missing key 'sram.acc'"),
        (lambda d: d["matrix"].update(foo=1), "unknown key 'matrix.foo'"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d["sram"].update(act=0), "key 'sram.act' must be positive"),
        (lambda d: d["matrix"].update(rows=-16), "key 'matrix.rows' must be positive"),
        (lambda d: d["matrix"].update(rows=16.5), "key 'matrix.rows' must be an integer"),
        (lambda d: d["vector"].update(lanes=True), "key 'vector.lanes' must be an integer"),
        (lambda d: d["energy"].update(mac_int8="cheap"), "key 'energy.mac_int8' must be a number"),
        (lambda d: d.pop("dram"), "missing key 'dram'"),
        (lambda d: d.update(name=""), "key 'name' must be a non-empty string"),
        (lambda d: d["matrix"].update(dataflows=["os", "rs"]), "key 'matrix.dataflows' must be"),
        (lambda d: d["matrix"].update(dataflows=[]), "key 'matrix.dataflows' must be"),
        (lambda d: d["matrix"].update(dataflows="os"), "key 'matrix.dataflows' must be"),
        (lambda d: d["matrix"].update(double_buffered=1), "'matrix.double_buffered' must be true"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, edit, pattern: str) -> None:
    p = _write(tmp_path, edit)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value)
    assert pattern in str(e.value)


def test_bad_syntax_and_unknown_name(tmp_path: Path) -> None:
    p = tmp_path / "broken.toml"
    p.write_text("name = \n")
    with pytest.raises(ConfigError, match="broken.toml: not valid toml"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such config"):
        load_config("nonexistent-npu")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_dataflow_keys_are_optional_and_default_to_output_stationary(tmp_path: Path) -> None:
    data = tomllib.loads((CONFIG_DIR / "edge.toml").read_text())
    assert load_config("edge").matrix.dataflows == ("os", "ws")
    del data["matrix"]["dataflows"], data["matrix"]["double_buffered"]
    p = tmp_path / "old.json"
    p.write_text(json.dumps(data))
    old = load_config(p)
    assert old.matrix.dataflows == ("os",) and old.matrix.double_buffered is False
    # written out at their defaults, the keys change neither the meaning nor the hash
    data["matrix"].update(dataflows=["os"], double_buffered=False)
    p.write_text(json.dumps(data))
    assert load_config(p).hash == old.hash
    data["matrix"].update(dataflows=["ws", "os"])  # order-free: stored as os, ws
    p.write_text(json.dumps(data))
    assert load_config(p).matrix.dataflows == ("os", "ws")
