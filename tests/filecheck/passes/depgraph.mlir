// depgraph: group ids attached to the ops that own group members (and to the ops that block groups).
// RUN: wisp-opt %s --split-input-file -p depgraph | filecheck %s

// A pre-LN block whose residual stream is the function's input and result: heads, QK/V dims and FFN
// units are prunable; the embed dim is blocked by the function boundary.
// CHECK-LABEL: func.func @block(%x: tensor<4x8xf32>) -> tensor<4x8xf32> attributes {depgraph.blocks = ["embed0"]}
// CHECK:         %h = nn.layer_norm {{.*}} attributes {depgraph.blocked = ["embed0"]}
// CHECK:         %q = nn.linear %h, %wq attributes {depgraph.groups = ["head0", "head1", "qk_dim0", "qk_dim1"], depgraph.blocked = ["embed0"]}
// CHECK:         %k = nn.linear %h, %wk attributes {depgraph.groups = ["head0", "head1", "qk_dim0", "qk_dim1"], depgraph.blocked = ["embed0"]}
// CHECK:         %v = nn.linear %h, %wv attributes {depgraph.groups = ["head0", "head1", "v_dim0", "v_dim1"], depgraph.blocked = ["embed0"]}
// CHECK:         %a = nn.attention %q, %k, %v {{{.*}}} attributes {depgraph.groups = ["head0", "head1", "qk_dim0", "qk_dim1", "v_dim0", "v_dim1"]}
// CHECK:         %o = nn.linear %a, %wo attributes {depgraph.groups = ["head0", "head1", "v_dim0", "v_dim1"], depgraph.blocked = ["embed0"]}
// CHECK:         %r = nn.add %x, %o :
// CHECK:         %f = nn.linear %r, %w1 attributes {depgraph.groups = ["ffn0"], depgraph.blocked = ["embed0"]}
// CHECK:         %gl = nn.gelu %f {approximate = "none"} :
// CHECK:         %f2 = nn.linear %gl, %w2 attributes {depgraph.groups = ["ffn0"], depgraph.blocked = ["embed0"]}
// CHECK:         func.return {depgraph.blocks = ["embed0"]} %y
func.func @block(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %g = nn.weight @ln.weight : tensor<8xf32>
  %b = nn.weight @ln.bias : tensor<8xf32>
  %h = nn.layer_norm %x, %g, %b {eps = 1.0e-05} : (tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %wq = nn.weight @q.weight : tensor<8x8xf32>
  %q = nn.linear %h, %wq : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %wk = nn.weight @k.weight : tensor<8x8xf32>
  %k = nn.linear %h, %wk : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %wv = nn.weight @v.weight : tensor<6x8xf32>
  %v = nn.linear %h, %wv : (tensor<4x8xf32>, tensor<6x8xf32>) -> tensor<4x6xf32>
  %a = nn.attention %q, %k, %v {heads = 2, qk_dim = 4, v_dim = 3, scale = 0.5, causal = false} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %wo = nn.weight @o.weight : tensor<8x6xf32>
  %o = nn.linear %a, %wo : (tensor<4x6xf32>, tensor<8x6xf32>) -> tensor<4x8xf32>
  %r = nn.add %x, %o : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %w1 = nn.weight @fc1.weight : tensor<16x8xf32>
  %f = nn.linear %r, %w1 : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  %gl = nn.gelu %f {approximate = "none"} : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %w2 = nn.weight @fc2.weight : tensor<8x16xf32>
  %f2 = nn.linear %gl, %w2 : (tensor<4x16xf32>, tensor<8x16xf32>) -> tensor<4x8xf32>
  %y = nn.add %r, %f2 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}

// -----

// An op without a rule (arith.addf) blocks the groups on both of its sides and says so; the branch
// that avoids it (c → relu → d) stays prunable. Group ids are in IR order per kind.
// CHECK-LABEL: func.func @unknown
// CHECK:         %h = nn.linear %x, %wa attributes {depgraph.blocked = ["channel0", "channel1"]}
// CHECK-NEXT:    %s = arith.addf %h, %h {depgraph.blocks = ["channel1", "channel2"]} : tensor<4x6xf32>
// CHECK:         %u = nn.linear %x, %wc attributes {depgraph.groups = ["hidden0"], depgraph.blocked = ["channel0"]}
// CHECK:         %v = nn.linear %r, %wd attributes {depgraph.groups = ["hidden0"], depgraph.blocked = ["channel3"]}
// CHECK:         %y0 = nn.linear %s, %wb attributes {depgraph.blocked = ["channel2", "channel3"]}
func.func @unknown(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %wa = nn.weight @a.weight : tensor<6x8xf32>
  %h = nn.linear %x, %wa : (tensor<4x8xf32>, tensor<6x8xf32>) -> tensor<4x6xf32>
  %s = arith.addf %h, %h : tensor<4x6xf32>
  %wb = nn.weight @b.weight : tensor<3x6xf32>
  %wc = nn.weight @c.weight : tensor<7x8xf32>
  %u = nn.linear %x, %wc : (tensor<4x8xf32>, tensor<7x8xf32>) -> tensor<4x7xf32>
  %r = nn.relu %u : (tensor<4x7xf32>) -> tensor<4x7xf32>
  %wd = nn.weight @d.weight : tensor<3x7xf32>
  %v = nn.linear %r, %wd : (tensor<4x7xf32>, tensor<3x7xf32>) -> tensor<4x3xf32>
  %y0 = nn.linear %s, %wb : (tensor<4x6xf32>, tensor<3x6xf32>) -> tensor<4x3xf32>
  %y = nn.add %y0, %v : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
  func.return %y : tensor<4x3xf32>
}
