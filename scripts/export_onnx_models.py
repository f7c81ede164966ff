"""Export a timm DeiT-tiny, an HF BERT and an HF GPT-2 (random weights, built from configs: no hub
downloads) with both torch exporters, then import each into wisp, run the reference executor and the
compiled NPU program on the interpreter, and compare with onnxruntime.

    pip install 'wisp[export]'          # torch, timm, transformers, onnxscript (never needed by tests)
    PYTHONPATH=. python scripts/export_onnx_models.py [--layers 2] [--out DIR]

Prints one line per (model, exporter): ONNX nodes, import time, nn.attention count, max |ref - ort| and
max |npu - ort| relative to the output range; a failed export or import is recorded with its reason.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _AnyMeta(type):
    """Placeholder classes whose attributes are placeholder classes (`InterpolationMode.NEAREST`)."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _AnyMeta(name, (), {})


class _Stub(types.ModuleType):
    """A torchvision module whose every attribute is a placeholder class (never used by DeiT)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _AnyMeta(name, (), {})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = _Stub(spec.name)
        module.__path__ = []  # a package, so submodules import
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _shim_torchvision() -> None:
    """timm imports torchvision (datasets, transforms, FrozenBatchNorm2d) at import time; a torchvision
    wheel built for another torch (the PyPI one is a CUDA build, torch here is +cpu) fails to import
    (`operator torchvision::nms does not exist`). DeiT's forward uses none of it: stub the package."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - RuntimeError from a mismatched C extension, or not installed
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.meta_path.insert(0, _StubFinder())


def deit(layers: int | None) -> tuple[Any, tuple[Any, ...], list[str], list[str]]:
    _shim_torchvision()
    import timm
    import torch

    kw = {} if layers is None else {"depth": layers}
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, **kw).eval()
    x = torch.randn(1, 3, 224, 224)
    return model, (x,), ["pixel_values"], ["logits"]


class _Wrap:
    """Positional inputs → HF keyword inputs, tuple outputs (what both exporters trace)."""

    @staticmethod
    def make(model: Any, names: list[str], outs: list[str], ones_mask: bool = False) -> Any:
        import torch

        class M(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.m = model

            def forward(self, *args: Any) -> Any:
                kw = dict(zip(names, args, strict=True))
                if ones_mask:  # see gpt2()
                    kw["attention_mask"] = torch.ones_like(kw["input_ids"])
                r = self.m(**kw, return_dict=True)
                return tuple(r[o] for o in outs)

        return M().eval()


def bert(layers: int | None) -> tuple[Any, tuple[Any, ...], list[str], list[str]]:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(
        vocab_size=1000,
        hidden_size=128,
        num_hidden_layers=layers or 2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=64,
        num_labels=3,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg).eval()
    seq = 16
    ids = torch.randint(0, 1000, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.int64)
    mask[0, 12:] = 0
    types_ = torch.zeros(1, seq, dtype=torch.int64)
    types_[0, 8:] = 1
    names = ["input_ids", "attention_mask", "token_type_ids"]
    return _Wrap.make(model, names, ["logits"]), (ids, mask, types_), names, ["logits"]


def gpt2(layers: int | None) -> tuple[Any, tuple[Any, ...], list[str], list[str]]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=1000,
        n_positions=64,
        n_embd=128,
        n_layer=layers or 2,
        n_head=2,
        use_cache=False,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 1000, (1, 16))
    # Without an attention_mask, transformers 5 looks for packed sequences with torch.diff, which the
    # TorchScript exporter cannot export (aten::diff): pass an all-ones mask (a constant in the graph).
    wrapped = _Wrap.make(model, ["input_ids"], ["logits"], ones_mask=True)
    return wrapped, (ids,), ["input_ids"], ["logits"]


MODELS: dict[str, Callable[[int | None], tuple[Any, tuple[Any, ...], list[str], list[str]]]] = {
    "deit-tiny (timm)": deit,
    "bert (HF)": bert,
    "gpt2 (HF)": gpt2,
}


def export(
    model: Any, args: tuple[Any, ...], ins: list[str], outs: list[str], path: Path, how: str
) -> None:
    import torch

    with torch.no_grad():
        if how == "torchscript":
            torch.onnx.export(
                model,
                args,
                str(path),
                input_names=ins,
                output_names=outs,
                opset_version=17,
                dynamo=False,
            )
        else:
            prog = torch.onnx.export(model, args, input_names=ins, output_names=outs, dynamo=True)
            prog.save(str(path), external_data=True)  # type: ignore[union-attr]


def check(path: Path, feeds: dict[str, np.ndarray], layers: int) -> str:
    import onnxruntime as ort

    from compiler import reference
    from compiler.api import compile_model
    from compiler.frontends.onnx import import_onnx

    want = np.asarray(ort.InferenceSession(str(path)).run(None, feeds)[0])[0]
    span = float(want.max() - want.min()) or 1.0
    start = time.perf_counter()
    model = import_onnx(path)
    seconds = time.perf_counter() - start
    attn = sum(1 for op in model.module.walk() if op.name == "nn.attention")
    inputs = {k: v[0] for k, v in feeds.items() if k in model.input_specs()}
    ref = reference.run(model, inputs)["out0"]
    ref64 = reference.run(model, inputs, dtype=np.float64)["out0"]
    err = float(np.abs(ref - want).max()) / span
    err64 = float(np.abs(ref64 - want).max()) / span
    prog = compile_model(model, "canonicalize,cse", "spatten")
    npu = prog.run(inputs)
    err_npu = float(np.abs(npu.outputs["out0"].astype(np.float64) - want).max()) / span
    return (
        f"{model.meta['onnx_nodes']} nodes, opset {model.meta['opset']}, import {seconds:.2f} s, "
        f"nn.attention {attn}/{layers}; |ref-ort|/range {err:.1e} (fp64 ref {err64:.1e}), "
        f"|npu-ort|/range {err_npu:.1e}, {npu.report.cycles:,.0f} cycles"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--layers", type=int, default=None, help="blocks per model (default: config)"
    )
    parser.add_argument(
        "--out", default=None, help="keep the .onnx files here (default: a temp dir)"
    )
    parser.add_argument("--only", default=None, help="run models whose name contains this")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of failures")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="wisp-export-"))
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, build in MODELS.items():
        if args.only and args.only not in name:
            continue
        model, inputs, ins, outs = build(args.layers)
        layers = args.layers or (12 if "deit" in name else 2)
        feeds = {n: t.numpy() for n, t in zip(ins, inputs, strict=True)}
        for how in ("torchscript", "dynamo"):
            path = out / f"{name.split()[0]}-{how}.onnx"
            stage = "export"
            try:
                export(model, inputs, ins, outs, path, how)
                stage = "import/compile/run"
                line = check(path, feeds, layers)
            except Exception as e:  # noqa: BLE001 - a failure is a finding to record, not a crash
                failures += 1
                why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                line = f"FAILED at {stage}: {type(e).__name__}: {why[:300]}"
                if args.debug:
                    traceback.print_exc()
            print(f"{name:18s} {how:11s} {line}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
