// Verifier errors of quant.attention (checked by ../attention.mlir).

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.attention: value must be an i8 tensor, got tensor<65x64xf32>
func.func @float_value(%qq: tensor<65x64xi8>, %v: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %o = quant.attention %qq, %qq, %v, %s, %s, %s {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.attention: v_scale must be a [1] float tensor, got tensor<64xf32>
func.func @per_channel(%qq: tensor<65x64xi8>, %s: tensor<1xf32>, %sc: tensor<64xf32>) {
  %o = quant.attention %qq, %qq, %qq, %s, %s, %sc {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xi8>, tensor<1xf32>, tensor<1xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.attention: key must be [tokens, 64] (heads=4), got [65, 32]
func.func @width(%qq: tensor<65x64xi8>, %kq: tensor<65x32xi8>, %s: tensor<1xf32>) {
  %o = quant.attention %qq, %kq, %qq, %s, %s, %s {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xi8>, tensor<65x32xi8>, tensor<65x64xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.attention: causal attention needs at least as many keys as queries (12 queries, 8 keys)
func.func @causal_short(%qq: tensor<12x32xi8>, %kq: tensor<8x32xi8>, %s: tensor<1xf32>) {
  %o = quant.attention %qq, %kq, %kq, %s, %s, %s {heads = 2, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true} : (tensor<12x32xi8>, tensor<8x32xi8>, tensor<8x32xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<12x32xf32>
  func.return
}
