"""The model zoo: kebab-case names → builders with configurable shape and seeded init."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from compiler.errors import WispError
from compiler.model import Model
from compiler.models.bert import Bert, BertConfig
from compiler.models.builder import trace
from compiler.models.gpt2 import GPT2, GPT2Config
from compiler.models.shape_options import derive_shape_options
from compiler.models.vit import ViT, ViTConfig
from compiler.weights import WeightStore

# Options users may set from the CLI / API, mapped onto config fields.
OPTIONS: dict[str, str] = {
    "layers": "number of transformer blocks",
    "dim": "embedding width",
    "heads": "attention heads",
    "mlp_dim": "FFN hidden width",
    "seq": "sequence length (bert, gpt2)",
    "image": "image size (vit)",
    "patch": "patch size (vit)",
    "classes": "output classes (vit, bert)",
    "vocab": "vocabulary size (bert, gpt2)",
}

# Non-integer options (BERT's extra inputs and outputs), by config field.
FLAG_OPTIONS: dict[str, str] = {
    "attention_mask": "take an attention_mask input, 1 = token, 0 = padding (bert)",
    "token_types": "take a token_type_ids input, the segment of each token (bert)",
}
STR_OPTIONS: dict[str, str] = {
    "outputs": "comma-separated outputs out0, out1, ... from logits, hidden, pooled (bert)",
}


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str
    description: str
    config: Any
    trained: str | None = None  # packaged weights file (a trained model: shape options are fixed)
    dataset: str | None = None  # bundled evaluation set


def _vit(**kw: Any) -> ViTConfig:
    return ViTConfig(**kw)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "deit-tiny",
            "vit",
            "DeiT-Tiny: 224², patch 16, 192 wide, 12 layers, 3 heads",
            _vit(dim=192, heads=3, mlp_dim=768),
        ),
        ZooEntry(
            "deit-small",
            "vit",
            "DeiT-Small: 224², patch 16, 384 wide, 12 layers, 6 heads",
            _vit(dim=384, heads=6, mlp_dim=1536),
        ),
        ZooEntry(
            "vit-base",
            "vit",
            "ViT-B/16 (= DeiT-Base): 224², 768 wide, 12 layers, 12 heads",
            _vit(dim=768, heads=12, mlp_dim=3072),
        ),
        ZooEntry(
            "bert-tiny",
            "bert",
            "BERT-Tiny: 2 layers, 128 wide, 2 heads, sequence 128",
            BertConfig(dim=128, layers=2, heads=2, mlp_dim=512),
        ),
        ZooEntry(
            "bert-base",
            "bert",
            "BERT-Base: 12 layers, 768 wide, 12 heads, sequence 128",
            BertConfig(),
        ),
        ZooEntry(
            "gpt2",
            "gpt2",
            "GPT-2 small (124M): 12 layers, 768 wide, 12 heads, sequence 128",
            GPT2Config(),
        ),
        ZooEntry(
            "digits-vit",
            "vit",
            "ViT trained on scikit-learn digits: 16², patch 2, 64 wide, 4 layers (bundled weights)",
            _vit(image=16, channels=1, patch=2, dim=64, layers=4, heads=4, mlp_dim=128, classes=10),
            trained="digits_vit.weights.npz",
            dataset="digits",
        ),
        ZooEntry(
            "char-gpt",
            "gpt2",
            "character-level GPT-2 trained on Python stdlib source: 4 layers, 128 wide, 4 heads, "
            "context 256, 96 symbols (bundled weights)",
            GPT2Config(
                vocab=96, max_positions=256, seq=256, dim=128, layers=4, heads=4, mlp_dim=512
            ),
            trained="char_gpt.weights.npz",
            dataset="char-python",
        ),
    ]
}

DEFAULT_MODEL = "digits-vit"

_FAMILIES: Mapping[str, tuple[Callable[[Any], Any], Callable[[Any], dict[str, Any]]]] = {
    "vit": (ViT, lambda c: {"image": ((c.channels, c.image, c.image), np.float32)}),
    "bert": (Bert, lambda c: {n: ((c.seq,), np.int32) for n in c.input_names()}),
    "gpt2": (GPT2, lambda c: {"ids": ((c.seq,), np.int32)}),
}


def zoo_names() -> list[str]:
    return list(ZOO)


def build(name: str, *, seed: int = 0, **options: int) -> Model:
    """Build a zoo model by name, overriding shape options (e.g. `layers=2, dim=128`)."""
    entry = ZOO.get(name)
    if entry is None:
        raise WispError(f"unknown model '{name}'; known models: {', '.join(ZOO)}")
    options = {k: v for k, v in options.items() if v is not None}
    known = set(OPTIONS) | set(FLAG_OPTIONS) | set(STR_OPTIONS)
    fields = {f.name for f in dataclasses.fields(entry.config)} & known
    for key, value in options.items():
        if key not in fields:
            raise WispError(
                f"{name}: option '{key}' does not apply (it takes: {', '.join(sorted(fields))})"
            )
        if key in FLAG_OPTIONS:
            if not isinstance(value, bool):
                raise WispError(f"{name}: option '{key}' must be true or false, got {value!r}")
        elif key in STR_OPTIONS:
            if not isinstance(value, str):
                raise WispError(f"{name}: option '{key}' must be a string, got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise WispError(f"{name}: option '{key}' must be a positive integer, got {value!r}")
    if entry.trained and options:
        raise WispError(f"{name} is a trained model; its shape options cannot be changed")
    config = dataclasses.replace(entry.config, **derive_shape_options(name, entry.config, options))
    cls, inputs = _FAMILIES[entry.family]
    try:
        root = cls(config)
    except ValueError as e:
        raise WispError(f"{name}: {e}") from None
    meta: dict[str, Any] = {"family": entry.family, "config": dataclasses.asdict(config)}
    if entry.dataset:
        meta["dataset"] = entry.dataset
    model = trace(root, inputs(config), seed=seed, name=name, meta=meta)
    if entry.trained:
        model.weights = _trained_weights(name, entry.trained)
        model.weights.check(model.module)
    return model


def _trained_weights(name: str, filename: str) -> WeightStore:
    path = resources.files("compiler") / "data" / filename
    with resources.as_file(path) as p:
        if not p.exists():
            raise WispError(
                f"{name}: its bundled weights {filename} are missing from the installed package"
            )
        store = WeightStore.load(p)
    for key in store:  # shipped as float16 (char-gpt): the IR's weights are float32
        if store[key].dtype == np.float16:
            store[key] = store[key].astype(np.float32)
    return store
