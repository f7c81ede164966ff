"""The ONNX frontend: `import_onnx(path)` turns an exported transformer into nn IR plus a WeightStore.

    from compiler.frontends.onnx import import_onnx
    model = import_onnx("deit.onnx", input_shapes={"pixel_values": (1, 3, 224, 224)})

Loading (external data, opset, input shapes) is in `load.py`, constant folding of shape arithmetic in
`fold.py`, op-by-op conversion in `convert.py`, raising of decomposed subgraphs (linear, layer norm,
GELU, attention, patch embedding) in `raise_*.py`, and the walk that ties them together in `importer.py`.
`onnx` is an optional dependency (`pip install 'wisp[onnx]'`).
"""

from compiler.frontends.onnx.importer import import_onnx, parse_input_shapes

__all__ = ["import_onnx", "parse_input_shapes"]
