// `wisp depgraph --format text` on a .mlir without weights (the analysis needs none): a two-head
// attention whose heads, QK dims and V dims are prunable, a tensor concatenated with itself (each unit
// reaches two columns of its reader), and a reshape that mixes tokens with channels (blocked).
// RUN: wisp depgraph %s --format text | filecheck %s

// CHECK:      depgraph: depgraph-text: 11 groups (6 prunable, 5 blocked)
// CHECK:        kind     groups prunable   units
// CHECK-NEXT:   head          2        2       2
// CHECK-NEXT:   qk_dim        2        2       4
// CHECK-NEXT:   v_dim         2        2       4
// CHECK-NEXT:   hidden        1        0       0
// CHECK-NEXT:   channel       4        0       0
// CHECK:      prunable groups:
// CHECK-NEXT:   head0      head    size 1     4 weights, 4 value dims; head 0 of %a; parts qk_dim0, v_dim0
// CHECK-NEXT:       q.weight[axis 0] 0:2
// CHECK-NEXT:       k.weight[axis 0] 0:2
// CHECK-NEXT:       v.weight[axis 0] 0:2
// CHECK-NEXT:       o.weight[axis 1] 0:2
// CHECK-NEXT:   head1      head    size 1     4 weights, 4 value dims; head 1 of %a; parts qk_dim1, v_dim1
// CHECK-NEXT:       q.weight[axis 0] 2:4
// CHECK-NEXT:       k.weight[axis 0] 2:4
// CHECK-NEXT:       v.weight[axis 0] 2:4
// CHECK-NEXT:       o.weight[axis 1] 2:4
// CHECK-NEXT:   qk_dim0    qk_dim  size 2     2 weights, 2 value dims; head 0 of %a; tie %a.qk
// CHECK:        v_dim1     v_dim   size 2     2 weights, 2 value dims; head 1 of %a; tie %a.v
// CHECK-NEXT:       v.weight[axis 0] 2:4
// CHECK-NEXT:       o.weight[axis 1] 2:4
// CHECK:      blocked groups:
// CHECK-NEXT:   hidden0    hidden  size 3     2 weights, 2 value dims
// CHECK-NEXT:       t.weight[axis 0] 0:3
// CHECK-NEXT:       u.weight[axis 1] 0:3 & 3:6
// CHECK-NEXT:       BLOCKED by %m = nn.reshape: nn.reshape factors dims [0, 1] of %tt together, but dim 1 is also coupled on its own by %tt = nn.concat, %u = nn.linear (e.g. a token dim mixed with a channel dim)
// CHECK:        channel0   channel size 8     4 weights, 1 value dims
// CHECK:            BLOCKED by func.func @main: function input
// CHECK:        channel2   channel size 12    1 weights, 1 value dims
// CHECK-NEXT:       z.weight[axis 1] 0:12
// CHECK-NEXT:       BLOCKED by %m = nn.reshape:
func.func @main(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<2x16xf32>) {
  %wq = nn.weight @q.weight : tensor<4x8xf32>
  %q = nn.linear %x, %wq : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x4xf32>
  %wk = nn.weight @k.weight : tensor<4x8xf32>
  %k = nn.linear %x, %wk : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x4xf32>
  %wv = nn.weight @v.weight : tensor<4x8xf32>
  %v = nn.linear %x, %wv : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x4xf32>
  %a = nn.attention %q, %k, %v {heads = 2, qk_dim = 2, v_dim = 2, scale = 0.5, causal = false} : (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %wo = nn.weight @o.weight : tensor<8x4xf32>
  %o = nn.linear %a, %wo : (tensor<4x4xf32>, tensor<8x4xf32>) -> tensor<4x8xf32>
  %wt = nn.weight @t.weight : tensor<3x8xf32>
  %t = nn.linear %x, %wt : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x3xf32>
  %tt = nn.concat %t, %t {axis = 1} : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x6xf32>
  %wu = nn.weight @u.weight : tensor<8x6xf32>
  %u = nn.linear %tt, %wu : (tensor<4x6xf32>, tensor<8x6xf32>) -> tensor<4x8xf32>
  %m = nn.reshape %tt : (tensor<4x6xf32>) -> tensor<2x12xf32>
  %wz = nn.weight @z.weight : tensor<16x12xf32>
  %z = nn.linear %m, %wz : (tensor<2x12xf32>, tensor<16x12xf32>) -> tensor<2x16xf32>
  %y = nn.add %o, %u : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y, %z : tensor<4x8xf32>, tensor<2x16xf32>
}
