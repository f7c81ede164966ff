// Round trip of the contraction-like nn ops: the custom form prints back unchanged (CHECK lines), and
// custom -> generic -> custom is the identity (%roundtrip).
// RUN: %roundtrip | filecheck %s

// CHECK-LABEL: func.func @weight
// CHECK-NEXT:    %w = nn.weight @blocks.0.attn.q.weight : tensor<64x64xf32>
// CHECK-NEXT:    %e = nn.weight @tok_embed : tensor<100x16xf16>
// CHECK-NEXT:    %i = nn.weight @ids : tensor<8xi32>
// CHECK-NEXT:    func.return %w, %e, %i : tensor<64x64xf32>, tensor<100x16xf16>, tensor<8xi32>
func.func @weight() -> (tensor<64x64xf32>, tensor<100x16xf16>, tensor<8xi32>) {
  %w = nn.weight @blocks.0.attn.q.weight : tensor<64x64xf32>
  %e = nn.weight @tok_embed : tensor<100x16xf16>
  %i = nn.weight @ids : tensor<8xi32>
  func.return %w, %e, %i : tensor<64x64xf32>, tensor<100x16xf16>, tensor<8xi32>
}

// -----

// CHECK-LABEL: func.func @linear
// CHECK-NEXT:    %w = nn.weight @fc.weight : tensor<128x64xf32>
// CHECK-NEXT:    %b = nn.weight @fc.bias : tensor<128xf32>
// CHECK-NEXT:    %y = nn.linear %x, %w, %b : (tensor<65x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %z = nn.linear %x, %w : (tensor<65x64xf32>, tensor<128x64xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %v = nn.linear %x3, %w : (tensor<2x65x64xf32>, tensor<128x64xf32>) -> tensor<2x65x128xf32>
// CHECK-NEXT:    %u = nn.linear %x1, %w, %b : (tensor<64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<128xf32>
func.func @linear(%x: tensor<65x64xf32>, %x3: tensor<2x65x64xf32>, %x1: tensor<64xf32>) {
  %w = nn.weight @fc.weight : tensor<128x64xf32>
  %b = nn.weight @fc.bias : tensor<128xf32>
  %y = nn.linear %x, %w, %b : (tensor<65x64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<65x128xf32>
  %z = nn.linear %x, %w : (tensor<65x64xf32>, tensor<128x64xf32>) -> tensor<65x128xf32>
  %v = nn.linear %x3, %w : (tensor<2x65x64xf32>, tensor<128x64xf32>) -> tensor<2x65x128xf32>
  %u = nn.linear %x1, %w, %b : (tensor<64xf32>, tensor<128x64xf32>, tensor<128xf32>) -> tensor<128xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @matmul
// CHECK-NEXT:    %c = nn.matmul %a, %b {transpose_b = false} : (tensor<65x16xf32>, tensor<16x32xf32>) -> tensor<65x32xf32>
// CHECK-NEXT:    %s = nn.matmul %q, %k {transpose_b = true} : (tensor<4x65x16xf32>, tensor<4x65x16xf32>) -> tensor<4x65x65xf32>
// CHECK-NEXT:    %o = nn.matmul %s, %k {transpose_b = false} : (tensor<4x65x65xf32>, tensor<4x65x16xf32>) -> tensor<4x65x16xf32>
// CHECK-NEXT:    %h = nn.matmul %a16, %b16 {transpose_b = true} : (tensor<2x3x8x4xf16>, tensor<2x3x5x4xf16>) -> tensor<2x3x8x5xf16>
func.func @matmul(%a: tensor<65x16xf32>, %b: tensor<16x32xf32>, %q: tensor<4x65x16xf32>, %k: tensor<4x65x16xf32>, %a16: tensor<2x3x8x4xf16>, %b16: tensor<2x3x5x4xf16>) {
  %c = nn.matmul %a, %b {transpose_b = false} : (tensor<65x16xf32>, tensor<16x32xf32>) -> tensor<65x32xf32>
  %s = nn.matmul %q, %k {transpose_b = true} : (tensor<4x65x16xf32>, tensor<4x65x16xf32>) -> tensor<4x65x65xf32>
  %o = nn.matmul %s, %k {transpose_b = false} : (tensor<4x65x65xf32>, tensor<4x65x16xf32>) -> tensor<4x65x16xf32>
  %h = nn.matmul %a16, %b16 {transpose_b = true} : (tensor<2x3x8x4xf16>, tensor<2x3x5x4xf16>) -> tensor<2x3x8x5xf16>
  func.return
}

// -----

// CHECK-LABEL: func.func @patch_embed
// CHECK-NEXT:    %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<1x16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
// CHECK-NEXT:    %r = nn.patch_embed %rgb, %w3, %b {patch = 4} : (tensor<3x8x12xf32>, tensor<64x48xf32>, tensor<64xf32>) -> tensor<6x64xf32>
func.func @patch_embed(%img: tensor<1x16x16xf32>, %w: tensor<64x4xf32>, %b: tensor<64xf32>, %rgb: tensor<3x8x12xf32>, %w3: tensor<64x48xf32>) {
  %t = nn.patch_embed %img, %w, %b {patch = 2} : (tensor<1x16x16xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<64x64xf32>
  %r = nn.patch_embed %rgb, %w3, %b {patch = 4} : (tensor<3x8x12xf32>, tensor<64x48xf32>, tensor<64xf32>) -> tensor<6x64xf32>
  func.return
}

// -----

// Properties print in declaration order (heads, qk_dim, v_dim, scale, causal) whatever order they were
// written in; scale keeps all the digits of a 64-bit float.
// CHECK-LABEL: func.func @attention
// CHECK-NEXT:    %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %c = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %d = nn.attention %q2, %k2, %v2 {heads = 2, qk_dim = 32, v_dim = 8, scale = 0.1767766952966369, causal = true} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>) -> tensor<3x16xf32>
// CHECK-NEXT:    %e = nn.attention %q2, %k2, %v2 {heads = 2, qk_dim = 32, v_dim = 8, scale = 1.0, causal = false} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>) -> tensor<3x16xf32>
func.func @attention(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>, %v: tensor<65x64xf32>, %q2: tensor<3x64xf32>, %k2: tensor<10x64xf32>, %v2: tensor<10x16xf32>) {
  %a = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
  %c = nn.attention %q, %k, %v {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
  %d = nn.attention %q2, %k2, %v2 {causal = true, scale = 0.1767766952966369, v_dim = 8, qk_dim = 32, heads = 2} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>) -> tensor<3x16xf32>
  %e = nn.attention %q2, %k2, %v2 {heads = 2, qk_dim = 32, v_dim = 8, scale = 1.0, causal = false} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>) -> tensor<3x16xf32>
  func.return
}

// A key-padding mask is the optional fourth operand (i32, one entry per key).
// CHECK-LABEL: func.func @attention_mask
// CHECK-NEXT:    %a = nn.attention %q, %k, %v, %m {heads = 2, qk_dim = 32, v_dim = 8, scale = 0.125, causal = false} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>, tensor<10xi32>) -> tensor<3x16xf32>
// CHECK-NEXT:    %c = nn.attention %k, %k, %v, %m {heads = 2, qk_dim = 32, v_dim = 8, scale = 0.125, causal = true} : (tensor<10x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>, tensor<10xi32>) -> tensor<10x16xf32>
func.func @attention_mask(%q: tensor<3x64xf32>, %k: tensor<10x64xf32>, %v: tensor<10x16xf32>, %m: tensor<10xi32>) {
  %a = nn.attention %q, %k, %v, %m {heads = 2, qk_dim = 32, v_dim = 8, scale = 0.125, causal = false} : (tensor<3x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>, tensor<10xi32>) -> tensor<3x16xf32>
  %c = nn.attention %k, %k, %v, %m {heads = 2, qk_dim = 32, v_dim = 8, scale = 0.125, causal = true} : (tensor<10x64xf32>, tensor<10x64xf32>, tensor<10x16xf32>, tensor<10xi32>) -> tensor<10x16xf32>
  func.return
}
