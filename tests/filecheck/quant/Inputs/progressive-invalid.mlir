// Verifier errors of quant.progressive_attention (checked by ../progressive.mlir).

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.progressive_attention: key must be an i8 tensor, got tensor<65x64xf32>
func.func @float_key(%qq: tensor<65x64xi8>, %k: tensor<65x64xf32>, %v: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %o = quant.progressive_attention %qq, %k, %v, %s, %s {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = 0.1, block = 16} : (tensor<65x64xi8>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.progressive_attention: threshold must be a float >= 0, got -0.5
func.func @negative(%qq: tensor<65x64xi8>, %v: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %o = quant.progressive_attention %qq, %qq, %v, %s, %s {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = -0.5, block = 16} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK: {{.*}}:[[# @LINE + 2]]:3: quant.progressive_attention: key must be [tokens, 64] (heads=4), got [65, 32]
func.func @width(%qq: tensor<65x64xi8>, %kq: tensor<65x32xi8>, %v: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %o = quant.progressive_attention %qq, %kq, %v, %s, %s {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = 0.1, block = 16} : (tensor<65x64xi8>, tensor<65x32xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return
}
