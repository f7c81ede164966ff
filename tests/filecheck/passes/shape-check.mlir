// shape-check: verifies every op (and, with weights, that the store matches each nn.weight); it changes
// nothing. wisp-opt itself checks a weights file against the IR before any pass runs, so a mismatched
// store is reported by the driver, naming the weight. (Without --weights: shape-check-no-weights.mlir.)
// RUN: %python -c "import numpy as np; f = np.float32; np.savez('%t.ok.npz', **{'fc.weight': np.zeros((8, 4), f), 'fc.bias': np.zeros(8, f)}); np.savez('%t.shape.npz', **{'fc.weight': np.zeros((4, 8), f), 'fc.bias': np.zeros(8, f)}); np.savez('%t.missing.npz', **{'fc.weight': np.zeros((8, 4), f)}); np.savez('%t.dtype.npz', **{'fc.weight': np.zeros((8, 4), np.float16), 'fc.bias': np.zeros(8, f)})"
// RUN: wisp-opt %s -p shape-check --weights %t.ok.npz | filecheck %s
// RUN: not wisp-opt %s -p shape-check --weights %t.shape.npz 2>&1 | filecheck %s --check-prefix=SHAPE
// RUN: not wisp-opt %s -p shape-check --weights %t.missing.npz 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not wisp-opt %s -p shape-check --weights %t.dtype.npz 2>&1 | filecheck %s --check-prefix=DTYPE

// CHECK-LABEL: func.func @mlp
// CHECK-NEXT:    %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:    %b = nn.weight @fc.bias : tensor<8xf32>
// CHECK-NEXT:    %y = nn.linear %x, %w, %b : (tensor<2x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    %r = nn.reshape %y : (tensor<2x8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    %g = nn.gelu %r {approximate = "none"} : (tensor<2x8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    func.return %g : tensor<2x8xf32>

// SHAPE:   wisp-opt: error: {{.*}}shape-check.mlir:{{[0-9]+}}:3: nn.weight @fc.weight: the store holds shape [4, 8] but the IR declares [8, 4]
// MISSING: wisp-opt: error: {{.*}}shape-check.mlir:{{[0-9]+}}:3: nn.weight @fc.bias: missing from the weight store
// DTYPE:   wisp-opt: error: {{.*}}shape-check.mlir:{{[0-9]+}}:3: nn.weight @fc.weight: the store holds float16 but the IR declares float32
func.func @mlp(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %w = nn.weight @fc.weight : tensor<8x4xf32>
  %b = nn.weight @fc.bias : tensor<8xf32>
  %y = nn.linear %x, %w, %b : (tensor<2x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  %r = nn.reshape %y : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %g = nn.gelu %r {approximate = "none"} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  func.return %g : tensor<2x8xf32>
}
