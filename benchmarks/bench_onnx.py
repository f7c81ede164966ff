"""Import + raise time of a 12-layer DeiT-small-sized ONNX graph (dynamo form, built with onnx.helper),
and its max error against onnxruntime.

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
        err = float(np.abs(got - want).max()) / span
        got64 = reference.run(model, {"pixel_values": x[0]}, dtype=np.float64)["out0"]
        err64 = float(np.abs(got64 - want).max()) / span
    print(
        f"deit-small (12 layers, dynamo form): {nodes} ONNX nodes imported + raised in {seconds:.2f} s"
        f" ({seconds / nodes * 1e6:.0f} us/node); max |ref - onnxruntime| / range ="
        f" {err:.2e} (fp32 reference), {err64:.2e} (fp64 reference)"
    )


if __name__ == "__main__":
    main()
