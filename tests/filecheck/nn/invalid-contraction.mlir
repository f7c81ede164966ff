// Verifier errors of nn.weight, nn.linear, nn.matmul, nn.patch_embed and nn.attention.
// Each chunk of --split-input-file holds one malformed op; --verify-diagnostics prints its one-line
// error (FILE:LINE:COL: nn.op: message, LINE counted in the whole file) and goes on with the next chunk.
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line (and a failure exit).
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// nn.weight: the result must be a ranked tensor
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 3]]:3: nn.weight: expected a ranked tensor, got f32
// CLI: wisp-opt: error: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.weight: expected a ranked tensor, got f32
func.func @case0() {
  %w = nn.weight @w : f32
  func.return
}

// -----

// nn.weight: an unranked tensor is rejected too
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.weight: expected a ranked tensor, got tensor<*xf32>
func.func @case1() {
  %w = nn.weight @w : tensor<*xf32>
  func.return
}

// -----

// nn.linear: input features do not match the weight's in-features
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: input features 64 do not match weight in-features 32 (weight is [out=128, in=32])
func.func @case2(%x: tensor<65x64xf32>, %w: tensor<128x32xf32>) {
  %y = nn.linear %x, %w : (tensor<65x64xf32>, tensor<128x32xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.linear: bias size is not the out-features
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: bias must be [128], got [64]
func.func @case3(%x: tensor<65x64xf32>, %w: tensor<128x64xf32>, %b: tensor<64xf32>) {
  %y = nn.linear %x, %w, %b : (tensor<65x64xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.linear: weight must be 2-D [out, in]
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: weight must be [out, in], got [2, 128, 64]
func.func @case4(%x: tensor<65x64xf32>, %w: tensor<2x128x64xf32>) {
  %y = nn.linear %x, %w : (tensor<65x64xf32>, tensor<2x128x64xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.linear: result type disagrees with the inferred one
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: result type tensor<65x64xf32> does not match inferred tensor<65x128xf32>
func.func @case5(%x: tensor<65x64xf32>, %w: tensor<128x64xf32>) {
  %y = nn.linear %x, %w : (tensor<65x64xf32>, tensor<128x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.linear: element types differ
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: element types differ (f32 vs f16)
func.func @case6(%x: tensor<65x64xf32>, %w: tensor<128x64xf16>) {
  %y = nn.linear %x, %w : (tensor<65x64xf32>, tensor<128x64xf16>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.linear: too many operands (input, weight, optional bias)
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: Expected 2 or 3 operands, but got 4
func.func @case7(%x: tensor<65x64xf32>, %w: tensor<128x64xf32>, %b: tensor<128xf32>) {
  %y = nn.linear %x, %w, %b, %b : (tensor<65x64xf32>, tensor<128x64xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.linear: too few operands
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.linear: Expected 2 or 3 operands, but got 1
func.func @case8(%x: tensor<65x64xf32>) {
  %y = nn.linear %x : (tensor<65x64xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// nn.matmul: contraction mismatch (transpose_b = false)
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.matmul: contraction dims differ: lhs 16 vs rhs 32
func.func @case9(%a: tensor<65x16xf32>, %b: tensor<32x16xf32>) {
  %c = nn.matmul %a, %b {transpose_b = false} : (tensor<65x16xf32>, tensor<32x16xf32>) -> tensor<65x16xf32>
  func.return
}

// -----

// nn.matmul: contraction mismatch (transpose_b = true contracts rhs's last dim)
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.matmul: contraction dims differ: lhs 24 vs rhs 32
func.func @case10(%a: tensor<65x24xf32>, %b: tensor<16x32xf32>) {
  %c = nn.matmul %a, %b {transpose_b = true} : (tensor<65x24xf32>, tensor<16x32xf32>) -> tensor<65x16xf32>
  func.return
}

// -----

// nn.matmul: batch dims differ
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.matmul: batch dims differ: [4] vs [2]
func.func @case11(%a: tensor<4x65x16xf32>, %b: tensor<2x16x65xf32>) {
  %c = nn.matmul %a, %b {transpose_b = false} : (tensor<4x65x16xf32>, tensor<2x16x65xf32>) -> tensor<4x65x65xf32>
  func.return
}

// -----

// nn.matmul: operands must be at least 2-D
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.matmul: lhs must have rank >= 2, got [16]
func.func @case12(%a: tensor<16xf32>, %b: tensor<16x32xf32>) {
  %c = nn.matmul %a, %b {transpose_b = false} : (tensor<16xf32>, tensor<16x32xf32>) -> tensor<32xf32>
  func.return
}

// -----

// nn.matmul: result type disagrees with the inferred one
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.matmul: result type tensor<65x16xf32> does not match inferred tensor<65x32xf32>
func.func @case13(%a: tensor<65x16xf32>, %b: tensor<16x32xf32>) {
  %c = nn.matmul %a, %b {transpose_b = false} : (tensor<65x16xf32>, tensor<16x32xf32>) -> tensor<65x16xf32>
  func.return
}

// -----

// nn.patch_embed: the patch does not divide the image height
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.patch_embed: patch 2 must divide image size 15x16
func.func @case14(%img: tensor<1x15x16xf32>, %w: tensor<64x4xf32>, %b: tensor<64xf32>) {
  %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<1x15x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<56x64xf32>
  func.return
}

// -----

// nn.patch_embed: weight in-features must be C*p*p
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.patch_embed: weight must be [dim, 12], got [64, 4]
func.func @case15(%img: tensor<3x16x16xf32>, %w: tensor<64x4xf32>, %b: tensor<64xf32>) {
  %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<3x16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
  func.return
}

// -----

// nn.patch_embed: bias size is not the embedding dim
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.patch_embed: bias must be [64], got [32]
func.func @case16(%img: tensor<1x16x16xf32>, %w: tensor<64x4xf32>, %b: tensor<32xf32>) {
  %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<1x16x16xf32>, tensor<64x4xf32>, tensor<32xf32>) -> tensor<64x64xf32>
  func.return
}

// -----

// nn.patch_embed: the image must be [C, H, W]
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.patch_embed: image must be [C, H, W], got [16, 16]
func.func @case17(%img: tensor<16x16xf32>, %w: tensor<64x4xf32>, %b: tensor<64xf32>) {
  %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
  func.return
}

// -----

// nn.patch_embed: patch must be positive
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.patch_embed: patch must be positive, got 0
func.func @case18(%img: tensor<1x16x16xf32>, %w: tensor<64x4xf32>, %b: tensor<64xf32>) {
  %t = nn.patch_embed %img, %w, %b {patch = 0} : (tensor<1x16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
  func.return
}

// -----

// nn.attention: query width is not heads*qk_dim
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: query must be [tokens, 48] (heads=3), got [65, 64]
func.func @case19(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>, %v: tensor<65x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 3, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x48xf32>
  func.return
}

// -----

// nn.attention: value width is not heads*v_dim
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: value must be [tokens, 32] (heads=4), got [65, 64]
func.func @case20(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>, %v: tensor<65x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 8, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x32xf32>
  func.return
}

// -----

// nn.attention: key width is not heads*qk_dim
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: key must be [tokens, 64] (heads=4), got [65, 32]
func.func @case21(%q: tensor<65x64xf32>, %k: tensor<65x32xf32>, %v: tensor<65x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x32xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn.attention: causal attention with more queries than keys
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: causal attention needs at least as many keys as queries
func.func @case22(%q: tensor<8x64xf32>, %k: tensor<4x64xf32>, %v: tensor<4x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true} : (tensor<8x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// nn.attention: key and value token counts differ
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: key has 8 tokens but value has 7
func.func @case23(%q: tensor<8x64xf32>, %k: tensor<8x64xf32>, %v: tensor<7x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<7x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// nn.attention: heads must be positive
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: heads, qk_dim and v_dim must be positive
func.func @case24(%q: tensor<8x64xf32>, %k: tensor<8x64xf32>, %v: tensor<8x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 0, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// nn.attention: qk_dim != v_dim, and the result uses the qk width instead of heads*v_dim
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: result type tensor<8x64xf32> does not match inferred tensor<8x32xf32>
func.func @case25(%q: tensor<8x64xf32>, %k: tensor<8x64xf32>, %v: tensor<8x32xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 8, scale = 0.25, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x32xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// nn.attention: causal must be a bool
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: property 'causal' must be a boolean
func.func @case26(%q: tensor<8x64xf32>, %k: tensor<8x64xf32>, %v: tensor<8x64xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = 1} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// nn.attention: the key-padding mask has one entry per key and is i32
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: mask must be tensor<8xi32> (one 0/1 entry per key), got tensor<8xf32>
func.func @case27(%q: tensor<8x64xf32>, %k: tensor<8x64xf32>, %v: tensor<8x64xf32>, %m: tensor<8xf32>) {
  %a = nn.attention %q, %k, %v, %m {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> tensor<8x64xf32>
  func.return
}

// -----

// nn.attention: a mask over the queries instead of the keys
// CHECK: {{.*}}invalid-contraction.mlir:[[# @LINE + 2]]:3: nn.attention: mask must be tensor<10xi32> (one 0/1 entry per key), got tensor<3xi32>
func.func @case28(%q: tensor<3x64xf32>, %k: tensor<10x64xf32>, %v: tensor<10x64xf32>, %m: tensor<3xi32>) {
  %a = nn.attention %q, %k, %v, %m {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x64xf32>, tensor<3xi32>) -> tensor<3x64xf32>
  func.return
}

// Every chunk failed: no module was printed.
// CHECK-NOT: builtin.module
