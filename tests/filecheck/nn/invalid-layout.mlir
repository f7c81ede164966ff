// Verifier errors of nn.reshape, nn.transpose, nn.concat, nn.slice, nn.gather and nn.scatter.
// Each chunk of --split-input-file holds one malformed op; --verify-diagnostics prints its one-line
// error (FILE:LINE:COL: nn.op: message, LINE counted in the whole file) and goes on with the next chunk.
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line (and a failure exit).
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// nn.reshape: element counts differ
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 3]]:3: nn.reshape: cannot reshape [65, 64] (4160 elements) to [65, 4, 17] (4420 elements)
// CLI: wisp-opt: error: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.reshape: cannot reshape [65, 64] (4160 elements) to [65, 4, 17] (4420 elements)
func.func @case0(%x: tensor<65x64xf32>) {
  %y = nn.reshape %x : (tensor<65x64xf32>) -> tensor<65x4x17xf32>
  func.return
}

// -----

// nn.reshape: element type changes
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.reshape: element types differ (f32 vs f16)
func.func @case1(%x: tensor<65x64xf32>) {
  %y = nn.reshape %x : (tensor<65x64xf32>) -> tensor<4160xf16>
  func.return
}

// -----

// nn.transpose: perm repeats a dim
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.transpose: perm [0, 0, 2] is not a permutation of rank 3
func.func @case2(%x: tensor<65x4x16xf32>) {
  %y = nn.transpose %x {perm = [0, 0, 2]} : (tensor<65x4x16xf32>) -> tensor<65x65x16xf32>
  func.return
}

// -----

// nn.transpose: perm is shorter than the rank
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.transpose: perm [1, 0] is not a permutation of rank 3
func.func @case3(%x: tensor<65x4x16xf32>) {
  %y = nn.transpose %x {perm = [1, 0]} : (tensor<65x4x16xf32>) -> tensor<4x65xf32>
  func.return
}

// -----

// nn.transpose: perm names a dim past the rank
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.transpose: perm [1, 2, 3] is not a permutation of rank 3
func.func @case4(%x: tensor<65x4x16xf32>) {
  %y = nn.transpose %x {perm = [1, 2, 3]} : (tensor<65x4x16xf32>) -> tensor<4x16x65xf32>
  func.return
}

// -----

// nn.transpose: result shape is not the permuted input shape
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.transpose: result type tensor<65x4x16xf32> does not match inferred tensor<4x65x16xf32>
func.func @case5(%x: tensor<65x4x16xf32>) {
  %y = nn.transpose %x {perm = [1, 0, 2]} : (tensor<65x4x16xf32>) -> tensor<65x4x16xf32>
  func.return
}

// -----

// nn.concat: shapes differ off the concat axis
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.concat: shapes [1, 64] and [64, 32] differ outside axis 0
func.func @case6(%a: tensor<1x64xf32>, %b: tensor<64x32xf32>) {
  %y = nn.concat %a, %b {axis = 0} : (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.concat: ranks differ
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.concat: shapes [1, 64] and [64] differ outside axis 0
func.func @case7(%a: tensor<1x64xf32>, %b: tensor<64xf32>) {
  %y = nn.concat %a, %b {axis = 0} : (tensor<1x64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.concat: axis out of range
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.concat: axis 2 out of range for rank 2
func.func @case8(%a: tensor<1x64xf32>, %b: tensor<64x64xf32>) {
  %y = nn.concat %a, %b {axis = 2} : (tensor<1x64xf32>, tensor<64x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.concat: result size along the axis is not the sum
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.concat: result type tensor<64x64xf32> does not match inferred tensor<65x64xf32>
func.func @case9(%a: tensor<1x64xf32>, %b: tensor<64x64xf32>) {
  %y = nn.concat %a, %b {axis = 0} : (tensor<1x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  func.return
}

// -----

// nn.concat: element types differ
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.concat: element types differ (f32 vs f16)
func.func @case10(%a: tensor<1x64xf32>, %b: tensor<64x64xf16>) {
  %y = nn.concat %a, %b {axis = 0} : (tensor<1x64xf32>, tensor<64x64xf16>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.slice: offset + size past the end of dim 0
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.slice: dim 0: offset 64 + size 2 exceeds input size 65
func.func @case11(%x: tensor<65x64xf32>) {
  %y = nn.slice %x {offsets = [64, 0]} : (tensor<65x64xf32>) -> tensor<2x64xf32>
  func.return
}

// -----

// nn.slice: negative offset
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.slice: dim 1: offset -1 is negative
func.func @case12(%x: tensor<65x64xf32>) {
  %y = nn.slice %x {offsets = [0, -1]} : (tensor<65x64xf32>) -> tensor<1x64xf32>
  func.return
}

// -----

// nn.slice: one offset per dim
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.slice: input rank 2, result rank 2 and 1 offsets must agree
func.func @case13(%x: tensor<65x64xf32>) {
  %y = nn.slice %x {offsets = [0]} : (tensor<65x64xf32>) -> tensor<1x64xf32>
  func.return
}

// -----

// nn.slice: result larger than the input
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.slice: dim 0: offset 0 + size 66 exceeds input size 65
func.func @case14(%x: tensor<65x64xf32>) {
  %y = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<66x64xf32>
  func.return
}

// -----

// nn.slice: element type changes
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.slice: element types differ (f32 vs i32)
func.func @case15(%x: tensor<65x64xf32>) {
  %y = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<1x64xi32>
  func.return
}

// -----

// nn.gather: float indices
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.gather: indices must be an integer tensor, got tensor<8xf32>
func.func @case16(%t: tensor<100x16xf32>, %ids: tensor<8xf32>) {
  %y = nn.gather %t, %ids : (tensor<100x16xf32>, tensor<8xf32>) -> tensor<8x16xf32>
  func.return
}

// -----

// nn.gather: result is not indices.shape + row shape
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.gather: result type tensor<8x100xf32> does not match inferred tensor<8x16xf32>
func.func @case17(%t: tensor<100x16xf32>, %ids: tensor<8xi32>) {
  %y = nn.gather %t, %ids : (tensor<100x16xf32>, tensor<8xi32>) -> tensor<8x100xf32>
  func.return
}

// -----

// nn.gather: a rank-0 table has no rows
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.gather: table must have rank >= 1, got []
func.func @case18(%t: tensor<f32>, %ids: tensor<8xi32>) {
  %y = nn.gather %t, %ids : (tensor<f32>, tensor<8xi32>) -> tensor<8xf32>
  func.return
}

// -----

// nn.scatter: one row per index
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.scatter: rows must be [2, 16] (one table row per index), got [1, 16]
func.func @case19(%t: tensor<33x16xf32>, %i: tensor<2xi32>, %r: tensor<1x16xf32>) {
  %y = nn.scatter %t, %i, %r : (tensor<33x16xf32>, tensor<2xi32>, tensor<1x16xf32>) -> tensor<33x16xf32>
  func.return
}

// -----

// nn.scatter: float indices
// CHECK: {{.*}}invalid-layout.mlir:[[# @LINE + 2]]:3: nn.scatter: indices must be a rank-1 integer tensor, got tensor<1xf32>
func.func @case20(%t: tensor<33x16xf32>, %i: tensor<1xf32>, %r: tensor<1x16xf32>) {
  %y = nn.scatter %t, %i, %r : (tensor<33x16xf32>, tensor<1xf32>, tensor<1x16xf32>) -> tensor<33x16xf32>
  func.return
}

// Every chunk failed: no module was printed.
// CHECK-NOT: builtin.module
