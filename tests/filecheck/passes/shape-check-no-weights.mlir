// shape-check without weights should only verify the IR ("when weights are present" in its docstring).
// (Fixed: this was a known bug.)
// (`self.weights or WeightStore()` in compiler/cli/wisp_opt.py), so shape-check reports
// "pass 'shape-check': nn.weight @fc.weight: missing from the weight store". Remove the XFAIL line once
// that is fixed (lit then reports this test as XPASS, i.e. a failure, as a reminder).
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
