// Under --split-input-file, verifier errors carry the line in the whole file, as parse errors do, in every
// chunk and for any op of a chunk (regression test: wisp-opt's frontend used to ignore the chunk's line
// offset, so these lines were chunk-relative).
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s

// CHECK: {{.*}}split-locations.mlir:[[# @LINE + 2]]:3: nn.relu: expected a floating-point tensor, got tensor<4xi32>
func.func @first(%x: tensor<4xi32>) {
  %y = nn.relu %x : (tensor<4xi32>) -> tensor<4xi32>
  func.return
}

// -----

// CHECK: {{.*}}split-locations.mlir:[[# @LINE + 2]]:3: nn.softmax: axis 1 out of range for rank 1
func.func @second(%x: tensor<4xf32>) {
  %y = nn.softmax %x {axis = 1} : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}

// -----

// CHECK: {{.*}}split-locations.mlir:[[# @LINE + 3]]:5: nn.tanh: result type tensor<5xf32> does not match inferred tensor<4xf32>
func.func @third(%x: tensor<4xf32>) {
  %c = nn.relu %x : (tensor<4xf32>) -> tensor<4xf32>
    %y = nn.tanh %c : (tensor<4xf32>) -> tensor<5xf32>
  func.return
}
