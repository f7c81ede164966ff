"""`wisp eval MODEL --input x.npz`: one run of a model without a bundled dataset (an imported ONNX
model, its .mlir or a compile OUTDIR of it) on the NPU interpreter and the reference executor; prints
each output's summary, their agreement and the modeled cost."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from compiler.errors import WispError
from compiler.model import Model


def model_inputs(
    model: Model, arrays: Mapping[str, np.ndarray], source: str
) -> dict[str, np.ndarray]:
    """The model's inputs from `arrays` by name: a leading batch dim of 1 is dropped, integer ids
    become the model's integer type (checked to fit)."""
    specs = model.input_specs()
    extra = sorted(set(arrays) - set(specs))
    if extra:
        raise WispError(
            f"{source}: unknown input(s) {', '.join(extra)} (the model takes {', '.join(specs)})"
        )
    out: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in specs.items():
        if name not in arrays:
            raise WispError(
                f"{source}: missing input '{name}' (the model takes {', '.join(specs)})"
            )
        x = np.asarray(arrays[name])
        if x.shape == (1, *shape):
            x = x[0]
        if x.shape != shape:
            raise WispError(
                f"{source}: input '{name}' has shape {list(x.shape)}, the model expects "
                f"{list(shape)} (or [1, {', '.join(map(str, shape))}])"
            )
        if np.dtype(dtype).kind in "iu":
            if x.dtype.kind not in "iub":
                raise WispError(f"{source}: input '{name}' must be integer ids, got {x.dtype}")
            info = np.iinfo(dtype)
            if x.size and (x.min() < info.min or x.max() > info.max):
                raise WispError(f"{source}: input '{name}' has ids outside {np.dtype(dtype)}")
        elif x.dtype.kind not in "fiu":
            raise WispError(f"{source}: input '{name}' must be numeric, got {x.dtype}")
        out[name] = x.astype(dtype)
    return out


def _summary(name: str, x: np.ndarray) -> str:
    flat = x.reshape(-1).astype(np.float64)
    return (
        f"  {name}: {list(x.shape)} {x.dtype}  min {flat.min():.4g}  max {flat.max():.4g}  "
        f"mean {flat.mean():.4g}  argmax {int(np.argmax(flat))}"
    )


def run_on_inputs(args: argparse.Namespace) -> int:
    from compiler import reference
    from compiler.api import compile_model, load_compiled
    from compiler.cli.model_args import model_from_args
    from compiler.io_util import load_npz

    if Path(args.model).is_dir() and (Path(args.model) / "program.npubin").exists():
        compiled = load_compiled(args.model)
    else:
        model = model_from_args(args)
        compiled = compile_model(model, "", None if args.target == "none" else args.target)
    model = compiled.model
    inputs = model_inputs(model, load_npz(args.input, "inputs"), args.input)
    ref = reference.run(model, inputs)
    print(f"{model.name} on {args.input} (reference executor)")
    for name, x in ref.items():
        print(_summary(name, np.asarray(x)))
    if compiled.compiled is None:
        return 0
    result = compiled.run(inputs)
    print(f"on the NPU interpreter ({compiled.target}):")
    for name, x in result.outputs.items():
        want = np.asarray(ref[name])
        span = float(want.max() - want.min()) or 1.0
        err = float(np.abs(np.asarray(x, np.float64) - want).max())
        print(
            f"{_summary(name, np.asarray(x))}  max |npu - ref| {err:.3g} ({err / span:.2e} of range)"
        )
    r = result.report
    print(
        f"  per inference: {r.cycles:,.0f} cycles ({r.time_us:,.2f} us), "
        f"DRAM {r.dram_read + r.dram_write:,.0f} B, energy {r.energy_total_pj / 1e6:,.2f} uJ "
        "(measured: interpreter)"
    )
    return 0
