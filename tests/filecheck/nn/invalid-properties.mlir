// Property errors of nn ops: unknown, missing and mistyped properties, in custom and generic form.
// Each chunk of --split-input-file holds one malformed op; --verify-diagnostics prints its one-line
// error (FILE:LINE:COL: nn.op: message, LINE counted in the whole file) and goes on with the next chunk.
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line (and a failure exit).
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// unknown property on an op that has properties
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 3]]:3: nn.softmax: property 'dim' is not defined by the operation 'nn.softmax'. Use the dictionary attribute to add arbitrary information to the operation.
// CLI: wisp-opt: error: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.softmax: property 'dim' is not defined by the operation 'nn.softmax'. Use the dictionary attribute to add arbitrary information to the operation.
func.func @case0(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {axis = -1, dim = 1} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// unknown property on an op that has none
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.relu: property 'inplace' is not defined by the operation 'nn.relu'. Use the dictionary attribute to add arbitrary information to the operation.
func.func @case1(%x: tensor<65x64xf32>) {
  %y = nn.relu %x {inplace = true} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// missing property: nn.matmul transpose_b
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.matmul: property 'transpose_b' expected in operation 'nn.matmul'
func.func @case2(%a: tensor<65x16xf32>, %b: tensor<16x32xf32>) {
  %c = nn.matmul %a, %b : (tensor<65x16xf32>, tensor<16x32xf32>) -> tensor<65x32xf32>
  func.return
}

// -----

// missing property: nn.layer_norm eps
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.layer_norm: property 'eps' expected in operation 'nn.layer_norm'
func.func @case3(%x: tensor<65x64xf32>, %g: tensor<64xf32>) {
  %y = nn.layer_norm %x, %g, %g : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// missing property: nn.gelu approximate
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.gelu: property 'approximate' expected in operation 'nn.gelu'
func.func @case4(%x: tensor<65x64xf32>) {
  %y = nn.gelu %x : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// missing property: nn.softmax axis
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.softmax: property 'axis' expected in operation 'nn.softmax'
func.func @case5(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// missing property: nn.transpose perm
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.transpose: property 'perm' expected in operation 'nn.transpose'
func.func @case6(%x: tensor<65x64xf32>) {
  %y = nn.transpose %x : (tensor<65x64xf32>) -> tensor<64x65xf32>
  func.return
}

// -----

// missing property: nn.concat axis
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.concat: property 'axis' expected in operation 'nn.concat'
func.func @case7(%x: tensor<65x64xf32>) {
  %y = nn.concat %x, %x : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<130x64xf32>
  func.return
}

// -----

// missing property: nn.slice offsets
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.slice: property 'offsets' expected in operation 'nn.slice'
func.func @case8(%x: tensor<65x64xf32>) {
  %y = nn.slice %x : (tensor<65x64xf32>) -> tensor<1x64xf32>
  func.return
}

// -----

// missing property: nn.patch_embed patch
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.patch_embed: property 'patch' expected in operation 'nn.patch_embed'
func.func @case9(%img: tensor<1x16x16xf32>, %w: tensor<64x4xf32>, %b: tensor<64xf32>) {
  %t = nn.patch_embed %img, %w, %b : (tensor<1x16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
  func.return
}

// -----

// missing property: nn.attention causal
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.attention: property 'causal' expected in operation 'nn.attention'
func.func @case10(%q: tensor<8x64xf32>) {
  %a = nn.attention %q, %q, %q {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// wrong property type: float for int
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.attention: property 'heads' must be an integer
func.func @case11(%q: tensor<8x64xf32>) {
  %a = nn.attention %q, %q, %q {heads = 4.0, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// wrong property type: int for float (nn.attention scale)
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.attention: property 'scale' must be a float
func.func @case12(%q: tensor<8x64xf32>) {
  %a = nn.attention %q, %q, %q {heads = 4, qk_dim = 16, v_dim = 16, scale = 1, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// wrong property type: bool for int
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.attention: property 'heads' must be an integer
func.func @case13(%q: tensor<8x64xf32>) {
  %a = nn.attention %q, %q, %q {heads = true, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// wrong property type: int for a list (perm)
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.transpose: property 'perm' must be a list of integers
func.func @case14(%x: tensor<65x64xf32>) {
  %y = nn.transpose %x {perm = 1} : (tensor<65x64xf32>) -> tensor<64x65xf32>
  func.return
}

// -----

// wrong property type: list for int (axis)
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.concat: property 'axis' must be an integer
func.func @case15(%x: tensor<65x64xf32>) {
  %y = nn.concat %x {axis = [0]} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// generic form: string for int
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.softmax: property 'axis' must be an integer
func.func @case16(%x: tensor<65x64xf32>) {
  %y = "nn.softmax"(%x) <{axis = "last"}> : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// generic form: nn.weight sym must be a symbol reference
// CHECK: {{.*}}invalid-properties.mlir:[[# @LINE + 2]]:3: nn.weight: "w" should be of base attribute symbol_ref
func.func @case17(%x: tensor<65x64xf32>) {
  %y = "nn.weight"() <{sym = "w"}> : () -> tensor<65x64xf32>
  func.return
}

// Every chunk failed: no module was printed.
// CHECK-NOT: builtin.module
