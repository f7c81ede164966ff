// shape-check without weights only verifies the IR (regression test: wisp-opt used to hand the pipeline
// an empty WeightStore when no weights file was given, so every nn.weight was "missing from the store").
// RUN: wisp-opt %s -p shape-check | filecheck %s

// CHECK-LABEL: func.func @mlp
// CHECK-NEXT:    %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:    %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8xf32>
func.func @mlp(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %w = nn.weight @fc.weight : tensor<8x4xf32>
  %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}
