// Verifier errors of nn.add/sub/mul/div, nn.layer_norm, nn.gelu, nn.tanh, nn.relu and nn.softmax.
// Each chunk of --split-input-file holds one malformed op; --verify-diagnostics prints its one-line
// error (FILE:LINE:COL: nn.op: message, LINE counted in the whole file) and goes on with the next chunk.
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line (and a failure exit).
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// nn.add: 64 and 32 do not broadcast
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 3]]:3: nn.add: shapes [65, 64] and [65, 32] do not broadcast
// CLI: wisp-opt: error: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.add: shapes [65, 64] and [65, 32] do not broadcast
func.func @case0(%a: tensor<65x64xf32>, %b: tensor<65x32xf32>) {
  %c = nn.add %a, %b : (tensor<65x64xf32>, tensor<65x32xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.sub: a rank-2 operand broadcasts from the right: 65 vs 3
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.sub: shapes [4, 65, 64] and [3, 64] do not broadcast
func.func @case1(%a: tensor<4x65x64xf32>, %b: tensor<3x64xf32>) {
  %c = nn.sub %a, %b : (tensor<4x65x64xf32>, tensor<3x64xf32>) -> tensor<4x65x64xf32>
  func.return
}

// -----

// nn.mul: element types differ
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.mul: element types differ (f32 vs f16)
func.func @case2(%a: tensor<65x64xf32>, %b: tensor<64xf16>) {
  %c = nn.mul %a, %b : (tensor<65x64xf32>, tensor<64xf16>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.div: the result must have the broadcast shape
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.div: result type tensor<65x1xf32> does not match inferred tensor<65x64xf32>
func.func @case3(%a: tensor<65x64xf32>, %b: tensor<65x1xf32>) {
  %c = nn.div %a, %b : (tensor<65x64xf32>, tensor<65x1xf32>) -> tensor<65x1xf32>
  func.return
}

// -----

// nn.add: [65, 1] + [1, 64] broadcasts to [65, 64], not [65, 1]
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.add: result type tensor<65x1xf32> does not match inferred tensor<65x64xf32>
func.func @case4(%a: tensor<65x1xf32>, %b: tensor<1x64xf32>) {
  %c = nn.add %a, %b : (tensor<65x1xf32>, tensor<1x64xf32>) -> tensor<65x1xf32>
  func.return
}

// -----

// nn.layer_norm: gamma is not [last dim]
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.layer_norm: gamma must be [64], got [65]
func.func @case5(%x: tensor<65x64xf32>, %g: tensor<65xf32>, %b: tensor<64xf32>) {
  %y = nn.layer_norm %x, %g, %b {eps = 1.0e-06} : (tensor<65x64xf32>, tensor<65xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.layer_norm: beta is not [last dim]
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.layer_norm: beta must be [64], got [1, 64]
func.func @case6(%x: tensor<65x64xf32>, %g: tensor<64xf32>, %b: tensor<1x64xf32>) {
  %y = nn.layer_norm %x, %g, %b {eps = 1.0e-06} : (tensor<65x64xf32>, tensor<64xf32>, tensor<1x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.layer_norm: eps = 0 is not positive
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.layer_norm: eps must be a positive float, got 0.0
func.func @case7(%x: tensor<65x64xf32>, %g: tensor<64xf32>) {
  %y = nn.layer_norm %x, %g, %g {eps = 0.0} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.layer_norm: eps < 0
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.layer_norm: eps must be a positive float, got -1e-05
func.func @case8(%x: tensor<65x64xf32>, %g: tensor<64xf32>) {
  %y = nn.layer_norm %x, %g, %g {eps = -1.0e-05} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.layer_norm: an integer eps is not a float
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.layer_norm: property 'eps' must be a float
func.func @case9(%x: tensor<65x64xf32>, %g: tensor<64xf32>) {
  %y = nn.layer_norm %x, %g, %g {eps = 1} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.layer_norm: integer tensors are rejected
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.layer_norm: expected a floating-point tensor, got tensor<65x64xi8>
func.func @case10(%x: tensor<65x64xi8>, %g: tensor<64xi8>) {
  %y = nn.layer_norm %x, %g, %g {eps = 1.0e-06} : (tensor<65x64xi8>, tensor<64xi8>, tensor<64xi8>) -> tensor<65x64xi8>
  func.return
}

// -----

// nn.gelu: approximate must be "none" or "tanh"
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.gelu: approximate must be "none" or "tanh", got 'foo'
func.func @case11(%x: tensor<65x128xf32>) {
  %y = nn.gelu %x {approximate = "foo"} : (tensor<65x128xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.gelu: approximate must be a string
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.gelu: property 'approximate' must be a string, got 1
func.func @case12(%x: tensor<65x128xf32>) {
  %y = nn.gelu %x {approximate = 1} : (tensor<65x128xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.gelu: integer tensors are rejected
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.gelu: expected a floating-point tensor, got tensor<65x128xi32>
func.func @case13(%x: tensor<65x128xi32>) {
  %y = nn.gelu %x {approximate = "tanh"} : (tensor<65x128xi32>) -> tensor<65x128xi32>
  func.return
}

// -----

// nn.tanh: result shape differs from the input's
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.tanh: result type tensor<128xf32> does not match inferred tensor<1x128xf32>
func.func @case14(%x: tensor<1x128xf32>) {
  %y = nn.tanh %x : (tensor<1x128xf32>) -> tensor<128xf32>
  func.return
}

// -----

// nn.tanh: result element type differs from the input's
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.tanh: result type tensor<1x128xf16> does not match inferred tensor<1x128xf32>
func.func @case15(%x: tensor<1x128xf32>) {
  %y = nn.tanh %x : (tensor<1x128xf32>) -> tensor<1x128xf16>
  func.return
}

// -----

// nn.relu: integer tensors are rejected
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.relu: expected a floating-point tensor, got tensor<65x128xi8>
func.func @case16(%x: tensor<65x128xi8>) {
  %y = nn.relu %x : (tensor<65x128xi8>) -> tensor<65x128xi8>
  func.return
}

// -----

// nn.softmax: axis out of range (rank 2)
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.softmax: axis 2 out of range for rank 2
func.func @case17(%x: tensor<65x65xf32>) {
  %y = nn.softmax %x {axis = 2} : (tensor<65x65xf32>) -> tensor<65x65xf32>
  func.return
}

// -----

// nn.softmax: negative axis out of range (rank 2)
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.softmax: axis -3 out of range for rank 2
func.func @case18(%x: tensor<65x65xf32>) {
  %y = nn.softmax %x {axis = -3} : (tensor<65x65xf32>) -> tensor<65x65xf32>
  func.return
}

// -----

// nn.softmax: a float axis is not an int
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.softmax: property 'axis' must be an integer
func.func @case19(%x: tensor<65x65xf32>) {
  %y = nn.softmax %x {axis = 1.0} : (tensor<65x65xf32>) -> tensor<65x65xf32>
  func.return
}

// -----

// nn.softmax: result type differs from the input's
// CHECK: {{.*}}invalid-elementwise.mlir:[[# @LINE + 2]]:3: nn.softmax: result type tensor<65x64xf32> does not match inferred tensor<65x65xf32>
func.func @case20(%x: tensor<65x65xf32>) {
  %y = nn.softmax %x {axis = -1} : (tensor<65x65xf32>) -> tensor<65x64xf32>
  func.return
}

// Every chunk failed: no module was printed.
// CHECK-NOT: builtin.module
