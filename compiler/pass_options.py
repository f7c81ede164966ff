"""Pass options as data, read from the pass dataclasses (the one source): name, type, default and the
one-line help each field carries as ``field(metadata={"help": ...})``.

Used by `wisp passes` (listing and per-pass doc) and by the pipeline parser's unknown-option error.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from dataclasses import dataclass

from xdsl.passes import ModulePass
from xdsl.utils.arg_spec import parse_pipeline

from compiler.errors import WispError
from compiler.registry import PASSES, pass_doc


@dataclass(frozen=True)
class PassOption:
    """One option of a pass: `name: type = default` and its help line."""

    name: str
    type: str
    default: object
    help: str

    def spec_default(self) -> str:
        """The default as written in a pipeline spec (`true`, `4,8`, `""`)."""
        return spec_value(self.default)


def spec_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(spec_value(v) for v in value) if value else "(none)"  # not writable
    if isinstance(value, str):
        return value if value else '""'
    return str(value)


def options_of(cls: type[ModulePass]) -> list[PassOption]:
    """The options of a pass class, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default is not dataclasses.MISSING else None
        typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append(PassOption(f.name, typ, default, str(f.metadata.get("help", ""))))
    return out


def pass_options(name: str) -> list[PassOption]:
    """The options of the registered pass `name`."""
    return options_of(PASSES[name]())


def pass_help(name: str) -> str:
    """The whole doc of a pass: its module docstring (what it does, with an example), then its options."""
    cls = PASSES[name]()
    module_doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
    lines = [module_doc or f"{name}: {pass_doc(name)}", ""]
    opts = options_of(cls)
    lines.append("Options:" if opts else "Options: none")
    lines += option_lines(opts, indent="  ")
    return "\n".join(lines).rstrip() + "\n"


def option_lines(opts: list[PassOption], indent: str) -> list[str]:
    """One aligned line per option: `name=default  type  help`."""
    if not opts:
        return []
    heads = [f"{o.name}={o.spec_default()}" for o in opts]
    w1 = max(len(h) for h in heads)
    w2 = max(len(o.type) for o in opts)
    return [
        f"{indent}{h:<{w1}}  {o.type:<{w2}}  {o.help}".rstrip()
        for h, o in zip(heads, opts, strict=True)
    ]


def passes_listing() -> str:
    """Every registered pass: its one-line doc, then its options (for `wisp passes`, `wisp-opt --help`)."""
    width = max(len(n) for n in PASSES)
    lines = []
    for name in sorted(PASSES):
        lines.append(f"{name:<{width}}  {pass_doc(name)}")
        lines += option_lines(pass_options(name), indent=" " * (width + 4))
    lines.append("")
    lines.append(
        "options are given as NAME{opt=value opt=value}; `wisp passes NAME` prints a pass's doc"
    )
    return "\n".join(lines) + "\n"


def check_option_names(spec: str) -> None:
    """An unknown pass or option in a pipeline spec is a WispError that lists the valid ones.

    Specs xDSL cannot parse are left to the caller's parse (which reports the column)."""
    try:
        specs = list(parse_pipeline(spec))
    except BaseException:  # noqa: BLE001 - ArgSpecParseError is a BaseException in xDSL 0.74
        return
    for s in specs:
        if s.name not in PASSES:
            continue
        known = [o.name for o in pass_options(s.name)]
        unknown = [a for a in s.parameters if a not in known]
        if unknown:
            valid = ", ".join(known) if known else "none (it takes no options)"
            raise WispError(
                f"pass '{s.name}': unknown option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; valid options: {valid} "
                f"(see `wisp passes {s.name}`)"
            )
