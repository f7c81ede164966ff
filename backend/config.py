"""Hardware configs: load a TOML/JSON file (or a bundled name), validate it, hash it.

A config is data: ``backend/configs/{spatten,fact,edge}.toml`` are bundled and users may pass
their own file. Every error is a `ConfigError` naming the file and the dotted key. The meaning
and the sources of every key are in ``docs/hardware.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.errors import ConfigError
from backend.isa import Buf

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

CONFIG_DIR = Path(__file__).parent / "configs"

# section -> key -> (type, must be positive). Top-level keys live in section "".
_INT, _FLOAT, _STR, _BOOL, _FLOWS = int, float, str, bool, tuple
DATAFLOWS = ("os", "ws", "is")  # SCALE-Sim's output-, weight- and input-stationary dataflows
# optional keys and their defaults (a config written before they existed keeps its meaning)
OPTIONAL: dict[str, dict[str, Any]] = {
    "matrix": {"dataflows": ["os"], "double_buffered": False},
}
SCHEMA: dict[str, dict[str, tuple[type, bool]]] = {
    "": {"name": (_STR, False), "clock_mhz": (_FLOAT, True)},
    "matrix": {
        "rows": (_INT, True),
        "cols": (_INT, True),
        "arrays": (_INT, True),
        "fp16_rate": (_FLOAT, True),
        "int8_rate": (_FLOAT, True),
        "int4_rate": (_FLOAT, True),
        "dataflows": (_FLOWS, False),
        "double_buffered": (_BOOL, False),
    },
    "sram": {b.asm_name: (_INT, True) for b in Buf},
    "dram": {
        "kind": (_STR, False),
        "channels": (_INT, True),
        "burst_bytes": (_INT, True),
        "bytes_per_cycle": (_FLOAT, True),
        "latency_cycles": (_INT, False),
    },
    "vector": {"lanes": (_INT, True)},
    "select": {"comparators": (_INT, True), "lanes": (_INT, True), "predict_lanes": (_INT, True)},
    "energy": {
        k: (_FLOAT, False)
        for k in (
            "mac_int4",
            "mac_int8",
            "mac_fp16",
            "mac_fp32",
            "sram_byte",
            "dram_byte",
            "vector_op",
            "select_op",
        )
    },
}


@dataclass(frozen=True)
class MatrixConfig:
    """Systolic array(s): R×C PEs each, ``arrays`` of them, running the ``dataflows`` it supports
    (SCALE-Sim's "os", "ws", "is"); ``double_buffered``: the PEs' stationary-operand registers
    are double-buffered, so the next fold's preload overlaps the current fold (ws, is)."""

    rows: int
    cols: int
    arrays: int
    fp16_rate: float
    int8_rate: float
    int4_rate: float
    dataflows: tuple[str, ...] = ("os",)
    double_buffered: bool = False

    @property
    def macs_per_cycle(self) -> int:
        """Peak MACs per cycle at rate 1 (all arrays)."""
        return self.rows * self.cols * self.arrays


@dataclass(frozen=True)
class DramConfig:
    """One shared DRAM channel resource: bandwidth, transaction size, fixed latency."""

    kind: str
    channels: int
    burst_bytes: int
    bytes_per_cycle: float
    latency_cycles: int


@dataclass(frozen=True)
class SelectConfig:
    """Select unit: top-k comparators, reduction adders, predictor shift-add units."""

    comparators: int
    lanes: int
    predict_lanes: int


@dataclass(frozen=True)
class EnergyTable:
    """Energy per event in picojoules."""

    mac_int4: float
    mac_int8: float
    mac_fp16: float
    mac_fp32: float
    sram_byte: float
    dram_byte: float
    vector_op: float
    select_op: float

    def mac(self, precision: str) -> float:
        """pJ per MAC for a precision name (int4, int8, fp16, fp32)."""
        return float(getattr(self, "mac_" + precision))


@dataclass(frozen=True)
class Config:
    """A validated hardware config. ``sram`` is indexed by `Buf` id."""

    name: str
    clock_mhz: float
    matrix: MatrixConfig
    sram: tuple[int, ...]
    dram: DramConfig
    vector_lanes: int
    select: SelectConfig
    energy: EnergyTable
    source: str
    canonical: str

    @property
    def hash(self) -> bytes:
        """8-byte hash of the canonical contents (independent of file layout and comments)."""
        return config_hash(self)

    def sram_size(self, buf: int) -> int:
        """Size in bytes of SRAM buffer ``buf``."""
        return self.sram[buf]


def config_hash(config: Config) -> bytes:
    """Stable 8-byte hash (sha256 prefix) of a config's canonical JSON contents."""
    return hashlib.sha256(config.canonical.encode()).digest()[:8]


def available_configs() -> list[str]:
    """Names of the bundled configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; refuse anything this large
MAX_SRAM_BYTES = 1 << 22  # SRAM byte offsets are 22-bit instruction fields (docs/npu.md)
MAX_UNITS = 1 << 20  # array rows/cols/arrays, lanes, comparators, burst, channels, latency
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


def bundled_config(name: str) -> Config:
    """A bundled config by bare name only: never a path (a program's ``.config`` name is untrusted)."""
    if not _NAME.match(name) or name not in available_configs():
        raise ConfigError(
            f"{name!r}: not a bundled config (bundled: {', '.join(available_configs())}); "
            "pass a config file explicitly (--config FILE) to use another"
        )
    return _load_file(CONFIG_DIR / f"{name}.toml")


def load_config(name_or_path: str | Path | Config) -> Config:
    """Load a bundled config by name (``"spatten"``) or a ``.toml``/``.json`` file by path.

    Only for names the user gave (command line, API); a name read from a program goes through
    `bundled_config`. A path must be a regular file of at most `MAX_CONFIG_BYTES`.
    """
    if isinstance(name_or_path, Config):
        return name_or_path
    text = str(name_or_path)
    if isinstance(name_or_path, str) and _NAME.match(text) and text in available_configs():
        return bundled_config(text)
    path = Path(text)
    if not (path.suffix in (".toml", ".json") or path.exists()):
        raise ConfigError(
            f"{text}: no such config (bundled: {', '.join(available_configs())}; "
            "or pass a .toml/.json file path)"
        )
    return _load_file(path)


def _load_file(path: Path) -> Config:
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{path}: not a regular file")
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_CONFIG_BYTES} bytes")
    try:
        if path.suffix == ".json":
            data = json.loads(raw.decode())
        else:
            data = tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix[1:] or 'toml'}: {e}") from None
    return config_from_dict(data, str(path))


def _check_value(src: str, key: str, value: Any, typ: type, positive: bool) -> Any:
    if typ is _BOOL:
        if not isinstance(value, bool):
            raise ConfigError(f"{src}: key '{key}' must be true or false, got {value!r}")
        return value
    if typ is _FLOWS:
        names = "|".join(DATAFLOWS)
        if (
            not isinstance(value, list)
            or not value
            or any(not isinstance(v, str) or v not in DATAFLOWS for v in value)
            or len(set(value)) != len(value)
        ):
            raise ConfigError(
                f"{src}: key '{key}' must be a non-empty list of distinct dataflows "
                f"({names}), got {value!r}"
            )
        return sorted(value, key=DATAFLOWS.index)
    if typ is _STR:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{src}: key '{key}' must be a non-empty string, got {value!r}")
        return value
    ok_types: tuple[type, ...] = (int,) if typ is _INT else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        want = "an integer" if typ is _INT else "a number"
        raise ConfigError(f"{src}: key '{key}' must be {want}, got {value!r}")
    if typ is _FLOAT:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{src}: key '{key}' must be finite, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{src}: key '{key}' must be positive, got {value!r}")
    if not positive and value < 0:
        raise ConfigError(f"{src}: key '{key}' must not be negative, got {value!r}")
    return value


def _check_caps(source: str, out: dict[str, dict[str, Any]]) -> None:
    """Sizes the ISA can address and the host can hold; unit counts within `MAX_UNITS`."""
    for key, v in out["sram"].items():
        if v > MAX_SRAM_BYTES:
            raise ConfigError(
                f"{source}: key 'sram.{key}' = {v} exceeds {MAX_SRAM_BYTES} bytes "
                "(SRAM offsets are 22-bit instruction fields)"
            )
    for section, vals in out.items():
        for key, v in vals.items():
            if (
                section != "sram"
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
                and v > MAX_UNITS
            ):
                dotted = f"{section}.{key}" if section else key
                raise ConfigError(f"{source}: key '{dotted}' = {v} exceeds the limit {MAX_UNITS}")


def config_from_dict(data: Any, source: str = "<dict>") -> Config:
    """Validate a parsed config mapping; ConfigError names ``source`` and the dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a table/object at top level")
    out: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        table: Any = data if section == "" else data.get(section)
        if table is None:
            raise ConfigError(f"{source}: missing key '{section}' (a table)")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: key '{section}' must be a table")
        vals: dict[str, Any] = {}
        for key, (typ, positive) in keys.items():
            dotted = f"{section}.{key}" if section else key
            if key not in table:
                if key in OPTIONAL.get(section, {}):
                    vals[key] = OPTIONAL[section][key]
                    continue
                raise ConfigError(f"{source}: missing key '{dotted}'")
            vals[key] = _check_value(source, dotted, table[key], typ, positive)
        extra = set(table) - set(keys) - (set(SCHEMA) if section == "" else set())
        if extra:
            dotted = ", ".join(sorted(f"{section}.{k}" if section else k for k in extra))
            raise ConfigError(f"{source}: unknown key '{dotted}'")
        out[section] = vals
    _check_caps(source, out)
    top = out.pop("")
    # optional keys at their defaults are left out, so older configs keep their hash
    shown = {
        sec: {k: v for k, v in vals.items() if OPTIONAL.get(sec, {}).get(k, ...) != v}
        for sec, vals in out.items()
    }
    canonical = json.dumps({**top, **shown}, sort_keys=True, separators=(",", ":"))
    return Config(
        name=top["name"],
        clock_mhz=top["clock_mhz"],
        matrix=MatrixConfig(**{**out["matrix"], "dataflows": tuple(out["matrix"]["dataflows"])}),
        sram=tuple(out["sram"][b.asm_name] for b in Buf),
        dram=DramConfig(**out["dram"]),
        vector_lanes=out["vector"]["lanes"],
        select=SelectConfig(**out["select"]),
        energy=EnergyTable(**out["energy"]),
        source=source,
        canonical=canonical,
    )
