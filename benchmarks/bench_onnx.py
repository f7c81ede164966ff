"""Import + raise time of a 12-layer DeiT-small-sized ONNX graph (dynamo form, built with onnx.helper),
and its max error against onnxruntime and against a float64 evaluation of the same graph
(`onnx_f64.py`: onnx.reference in double, independent of both), all relative to the output range.

The issue's target (|wisp fp32 - onnxruntime| ≤ 1e-4 of the range) is not reachable by any fp32
evaluation of this graph: onnxruntime's own fp32 output is ~3e-4 of the range off the float64 result,
as is wisp's; the two fp32 errors are independent, so they differ from each other by up to their sum.
(The graph's synthetic std-0.2 weights make activations large; a real timm DeiT-tiny with 12 blocks
matches onnxruntime to 5e-7 of the range, see docs/onnx.md.)

    PYTHONPATH=. python benchmarks/bench_onnx.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "onnx_frontend"))

import onnx_graphs  # noqa: E402
from onnx_f64 import run_float64  # noqa: E402

from compiler import reference  # noqa: E402
from compiler.frontends.onnx import import_onnx  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = onnx_graphs.vit(
            Path(d) / "deit-small.onnx",
            "dynamo",
            dim=384,
            heads=6,
            layers=12,
            image=224,
            patch=16,
            classes=1000,
        )
        start = time.perf_counter()
        model = import_onnx(path)
        seconds = time.perf_counter() - start
        nodes = model.meta["onnx_nodes"]
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        want = ort.InferenceSession(str(path)).run(None, {"pixel_values": x})[0][0]
        got = reference.run(model, {"pixel_values": x[0]})["out0"]
        span = float(want.max() - want.min())
        got64 = reference.run(model, {"pixel_values": x[0]}, dtype=np.float64)["out0"]
        truth = run_float64(path, {"pixel_values": x})[0][0]

    def rel(a: np.ndarray, b: np.ndarray) -> str:
        return f"{float(np.abs(a.astype(np.float64) - b).max()) / span:.2e}"

    print(
        f"deit-small (12 layers, dynamo form): {nodes} ONNX nodes imported + raised in {seconds:.2f} s"
        f" ({seconds / nodes * 1e6:.0f} us/node)\n"
        f"max abs error / output range ({span:.2f}):\n"
        f"  wisp fp32 reference vs onnxruntime fp32 : {rel(got, want)}\n"
        f"  wisp fp32 reference vs float64 (onnx.reference) : {rel(got, truth)}\n"
        f"  onnxruntime fp32    vs float64 (onnx.reference) : {rel(want, truth)}\n"
        f"  wisp fp64 reference vs float64 (onnx.reference) : {rel(got64, truth)}"
    )


if __name__ == "__main__":
    main()
