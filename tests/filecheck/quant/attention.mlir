// quant.attention: custom form round-trips through the generic form; verifier errors.
// RUN: %roundtrip | filecheck %s
// RUN: wisp-opt %S/Inputs/attention-invalid.mlir --split-input-file --verify-diagnostics | filecheck %S/Inputs/attention-invalid.mlir

// CHECK: %o = quant.attention %qq, %kq, %vq, %sq, %sk, %sv {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
func.func @main(%qq: tensor<65x64xi8>, %kq: tensor<65x64xi8>, %vq: tensor<65x64xi8>, %sq: tensor<1xf32>, %sk: tensor<1xf32>, %sv: tensor<1xf32>) -> tensor<65x64xf32> {
  %o = quant.attention %qq, %kq, %vq, %sq, %sk, %sv {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return %o : tensor<65x64xf32>
}

// -----

// CHECK: %o = quant.attention %qq, %kq, %vq, %sq, %sk, %sv {heads = 2, qk_dim = 16, v_dim = 8, scale = 0.125, causal = true} : (tensor<8x32xi8>, tensor<12x32xi8>, tensor<12x16xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<8x16xf32>
func.func @causal(%qq: tensor<8x32xi8>, %kq: tensor<12x32xi8>, %vq: tensor<12x16xi8>, %sq: tensor<1xf32>, %sk: tensor<1xf32>, %sv: tensor<1xf32>) -> tensor<8x16xf32> {
  %o = quant.attention %qq, %kq, %vq, %sq, %sk, %sv {heads = 2, qk_dim = 16, v_dim = 8, scale = 0.125, causal = true} : (tensor<8x32xi8>, tensor<12x32xi8>, tensor<12x16xi8>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<8x16xf32>
  func.return %o : tensor<8x16xf32>
}
