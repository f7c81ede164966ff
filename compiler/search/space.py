"""The joint search space, derived from the pass registry's search declarations (passes/search_decl.py).

Every registered pass with a `search_stage` contributes one pass instance (or one per value of a
`per` knob); its fields' `{"search": Knob(...)}` metadata are the dimensions. Passes of one stage
group are alternatives, chosen by a group dimension ("none" or a pass name) unless the group's only
pass can switch itself off (a knob with `off`). A point of the space is a pipeline string that
`wisp compile -p` accepts verbatim.

    space = derive_space()
    space.pipeline({"prune": ..., "structured-prune[ffn].ratio": 0.3, ...}, target="spatten")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.errors import WispError
from compiler.registry import PASSES
from passes.search_decl import TARGET, UNSET, Knob, Stage

NONE = "none"  # a group dimension's value: no pass of the group


@dataclass(frozen=True)
class Dim:
    """One dimension: its name and the values it takes (`ordinal`: numbers in order)."""

    name: str
    values: tuple[Any, ...]

    @property
    def ordinal(self) -> bool:
        return len(self.values) > 2 and all(_number(v) is not None for v in self.values)


@dataclass(frozen=True)
class Instance:
    """One pass instance of searched pipelines: fixed options and searched knobs (by option)."""

    pass_name: str
    label: str  # "structured-prune[ffn]" for a per-value instance, else the pass name
    stage: Stage
    options: tuple[tuple[str, Knob, Any], ...]  # (option, knob, per-value or UNSET), field order
    defaults: tuple[tuple[str, Any], ...] = ()  # the options' field defaults (left out when equal)

    def dim_name(self, option: str) -> str:
        knob = next(k for o, k, _ in self.options if o == option)
        return f"{self.pass_name if knob.shared else self.label}.{option}"


@dataclass(frozen=True)
class Space:
    """The joint space: pass instances in pipeline order and the group dimensions."""

    instances: tuple[Instance, ...]
    group_dims: tuple[Dim, ...]
    fixed: tuple[tuple[str, Any], ...] = ()  # dimensions pinned by the user (name, value)

    @property
    def dims(self) -> list[Dim]:
        """The searched dimensions (more than one value, not pinned), groups first."""
        pinned = dict(self.fixed)
        return [d for d in self.all_dims() if d.name not in pinned]

    def all_dims(self) -> list[Dim]:
        """Every dimension including pinned ones, groups first (a shared knob once)."""
        out = {d.name: d for d in self.group_dims}
        for inst in self.instances:
            for option, knob, per in inst.options:
                if per is UNSET and len(knob.values) > 1:
                    out.setdefault(inst.dim_name(option), Dim(inst.dim_name(option), knob.values))
        return list(out.values())

    def pin(self, values: Mapping[str, str]) -> Space:
        """A space with some dimensions fixed (`--set DIM=VALUE`); unknown names or values fail."""
        dims = {d.name: d for d in self.all_dims()}
        fixed = dict(self.fixed)
        for name, text in values.items():
            if name not in dims:
                raise WispError(f"unknown search knob '{name}' (knobs: {', '.join(dims)})")
            by_text = {format_value(v): v for v in dims[name].values}
            if text not in by_text:
                raise WispError(f"knob {name}={text}: not one of {', '.join(by_text)}")
            fixed[name] = by_text[text]
        return Space(self.instances, self.group_dims, tuple(sorted(fixed.items())))

    def pipeline(self, choice: Mapping[str, Any], target: str) -> str:
        """The pipeline string of a point (missing dimensions: their first value)."""
        full = {**choice, **dict(self.fixed)}

        def value(name: str, knob: Knob) -> Any:
            return full.get(name, knob.values[0])

        groups = {d.name: d for d in self.group_dims}
        parts: list[str] = []
        for inst in self.instances:
            group = groups.get(inst.stage.group)
            if group is not None and full.get(group.name, group.values[0]) != inst.pass_name:
                continue
            opts: list[str] = []
            off = False
            defaults = dict(inst.defaults)
            for option, knob, per in inst.options:
                v = per if per is not UNSET else value(inst.dim_name(option), knob)
                if knob.off is not UNSET and v == knob.off:
                    off = True
                if v == TARGET:
                    v = target
                if option not in defaults or defaults[option] != v:
                    opts.append(f"{option}={format_value(v)}")
            if not off:
                parts.append(f"{inst.pass_name}{{{' '.join(opts)}}}" if opts else inst.pass_name)
        return ",".join(parts)

    def signature(self) -> str:
        """A digest of the dimensions and fixed options (a study is resumed only on the same space)."""
        text = json.dumps(
            [
                [i.label, i.stage.order, [(o, k.values, format_value(p)) for o, k, p in i.options]]
                for i in self.instances
            ]
            + [[d.name, d.values] for d in self.group_dims]
            + [list(self.fixed)],
            default=repr,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_space(
    groups: Sequence[str] | None = None, registry: Mapping[str, Any] | None = None
) -> Space:
    """The space of every searchable pass in `registry` (default: the pass registry), restricted to
    the stage `groups` given (default: all)."""
    registry = PASSES if registry is None else registry
    instances: list[Instance] = []
    by_group: dict[str, list[str]] = {}
    for name in sorted(registry):
        cls = registry[name]()
        stage = getattr(cls, "search_stage", None)
        if not isinstance(stage, Stage):
            continue
        fields = [f for f in dataclasses.fields(cls) if isinstance(f.metadata.get("search"), Knob)]
        knobs = [(f.name, f.metadata["search"]) for f in fields]
        defaults = tuple(
            (f.name, f.default) for f in fields if f.default is not dataclasses.MISSING
        )
        if not knobs:
            continue
        by_group.setdefault(stage.group, []).append(name)
        per = [(o, k) for o, k in knobs if k.per]
        if len(per) > 1:
            raise WispError(f"pass '{name}': more than one search knob has per=True")
        per_values = per[0][1].values if per else (UNSET,)
        for pv in per_values:
            label = f"{name}[{format_value(pv)}]" if pv is not UNSET else name
            options = tuple((o, k, pv if k.per else UNSET) for o, k in knobs)
            instances.append(Instance(name, label, stage, options, defaults))
    known = sorted(by_group)
    if groups is not None:
        for g in groups:
            if g not in by_group:
                raise WispError(f"unknown search group '{g}' (groups: {', '.join(known)})")
        instances = [i for i in instances if i.stage.group in groups]
        by_group = {g: ps for g, ps in by_group.items() if g in groups}
    instances.sort(key=lambda i: (i.stage.order, i.label))
    group_dims = []
    for group, names in sorted(by_group.items()):
        self_off = len(names) == 1 and any(
            k.off is not UNSET
            for i in instances
            if i.pass_name == names[0]
            for _, k, _ in i.options
        )
        if not self_off:
            group_dims.append(Dim(group, (NONE, *names)))
    return Space(tuple(instances), tuple(group_dims))


_PLAIN = re.compile(r"^[\w.:-]+$")


def format_value(v: Any) -> str:
    """An option value as the pipeline syntax writes it."""
    if v is UNSET:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple | list):
        return ",".join(format_value(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str) and not _PLAIN.match(v):
        return json.dumps(v)
    return str(v)


def _number(v: Any) -> float | None:
    if isinstance(v, tuple) and len(v) == 1:
        v = v[0]
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return None
