// Verifier errors of the tokens ops: one malformed op per chunk, one error line each.
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.importance: kind must be one of ('received', 'cls'), got 'max'
func.func @case0(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>) {
  %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "max"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.importance: kind "cls" needs a CLS token every query sees; causal attention has none
func.func @case1(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>) {
  %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true, kind = "cls"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.importance: key must be [tokens, 64] (heads=4), got [65, 32]
func.func @case2(%q: tensor<65x64xf32>, %k: tensor<65x32xf32>) {
  %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x32xf32>) -> tensor<65xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.importance: result type tensor<64xf32> does not match inferred tensor<65xf32>
func.func @case3(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>) {
  %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<64xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.head_importance: heads=3 must be positive and divide the width 64
func.func @case4(%o: tensor<65x64xf32>) {
  %h = tokens.head_importance %o {heads = 3} : (tensor<65x64xf32>) -> tensor<3xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.select: k must be in [1, 65] (the number of scores), got 66
func.func @case5(%s: tensor<65xf32>) {
  %i = tokens.select %s {k = 66, protect = [0]} : (tensor<65xf32>) -> tensor<66xi32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.select: protected token 65 does not exist (there are 65 tokens; use 0..64 or -1..-65)
func.func @case6(%s: tensor<65xf32>) {
  %i = tokens.select %s {k = 10, protect = [65]} : (tensor<65xf32>) -> tensor<10xi32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.select: token 64 is protected twice
func.func @case7(%s: tensor<65xf32>) {
  %i = tokens.select %s {k = 10, protect = [64, -1]} : (tensor<65xf32>) -> tensor<10xi32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.select: 2 protected tokens do not fit in k=1
func.func @case8(%s: tensor<65xf32>) {
  %i = tokens.select %s {k = 1, protect = [0, -1]} : (tensor<65xf32>) -> tensor<1xi32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.select: scores must be a vector [n], got [65, 1]
func.func @case9(%s: tensor<65x1xf32>) {
  %i = tokens.select %s {k = 1, protect = []} : (tensor<65x1xf32>) -> tensor<1xi32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.select: property 'protect' must be a list of integers, got 0
func.func @case10(%s: tensor<65xf32>) {
  %i = tokens.select %s {k = 1, protect = 0} : (tensor<65xf32>) -> tensor<1xi32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.squeeze: indices must be an integer vector [k], got tensor<45xf32>
func.func @case11(%x: tensor<65x64xf32>, %i: tensor<45xf32>) {
  %y = tokens.squeeze %x, %i {protect = [0]} : (tensor<65x64xf32>, tensor<45xf32>) -> tensor<45x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.squeeze: all 1 kept rows are protected, so pruned rows have no host
func.func @case12(%x: tensor<65x64xf32>, %i: tensor<1xi32>) {
  %y = tokens.squeeze %x, %i {protect = [0]} : (tensor<65x64xf32>, tensor<1xi32>) -> tensor<1x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.fuse: 65 kept rows of 65 leave nothing to fuse (expected 1..64)
func.func @case13(%x: tensor<65x64xf32>, %i: tensor<65xi32>, %a: tensor<65xf32>) {
  %y = tokens.fuse %x, %i, %a : (tensor<65x64xf32>, tensor<65xi32>, tensor<65xf32>) -> tensor<66x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.fuse: CLS attention must be [65] (one per row), got [64]
func.func @case14(%x: tensor<65x64xf32>, %i: tensor<40xi32>, %a: tensor<64xf32>) {
  %y = tokens.fuse %x, %i, %a : (tensor<65x64xf32>, tensor<40xi32>, tensor<64xf32>) -> tensor<41x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.predict: wk must be [64, 64] ([heads·qk_dim, features]), got [32, 64]
func.func @case15(%x: tensor<65x64xi8>, %wq: tensor<64x64xi8>, %wk: tensor<32x64xi8>) {
  %m = tokens.predict %x, %wq, %wk {heads = 4, qk_dim = 16, scale = 0.25, causal = false, topk = 8, margin = 3.0, q_shift = 6, k_shift = 6, unit = 0.0625} : (tensor<65x64xi8>, tensor<64x64xi8>, tensor<32x64xi8>) -> tensor<4x65x65xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.predict: topk must be in [1, 65] (the tokens), got 0
func.func @case16(%x: tensor<65x64xi8>, %wq: tensor<64x64xi8>, %wk: tensor<64x64xi8>) {
  %m = tokens.predict %x, %wq, %wk {heads = 4, qk_dim = 16, scale = 0.25, causal = false, topk = 0, margin = 3.0, q_shift = 6, k_shift = 6, unit = 0.0625} : (tensor<65x64xi8>, tensor<64x64xi8>, tensor<64x64xi8>) -> tensor<4x65x65xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.masked_attention: mask must be [4, 65, 65] ([heads, queries, keys]), got [65, 65]
func.func @case17(%x: tensor<65x64xf32>, %m: tensor<65x65xf32>) {
  %a = tokens.masked_attention %x, %x, %x, %m {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x65xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: tokens.head_attention: 5 kept heads of 4 (expected 1..4)
func.func @case18(%x: tensor<65x64xf32>, %h: tensor<5xi32>) {
  %a = tokens.head_attention %x, %x, %x, %h {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<5xi32>) -> tensor<65x64xf32>
  func.return
}

// Every chunk failed: no module was printed.
// CHECK-NOT: builtin.module
