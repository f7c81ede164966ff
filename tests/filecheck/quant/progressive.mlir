// quant.progressive_attention: custom form round-trips through the generic form; verifier errors.
// RUN: %roundtrip | filecheck %s
// RUN: wisp-opt %S/Inputs/progressive-invalid.mlir --split-input-file --verify-diagnostics | filecheck %S/Inputs/progressive-invalid.mlir

// CHECK: %o = quant.progressive_attention %qq, %kq, %v, %sq, %sk {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = 0.1, block = 16} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
func.func @main(%qq: tensor<65x64xi8>, %kq: tensor<65x64xi8>, %v: tensor<65x64xf32>, %sq: tensor<1xf32>, %sk: tensor<1xf32>) -> tensor<65x64xf32> {
  %o = quant.progressive_attention %qq, %kq, %v, %sq, %sk {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, threshold = 0.1, block = 16} : (tensor<65x64xi8>, tensor<65x64xi8>, tensor<65x64xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return %o : tensor<65x64xf32>
}

// -----

// CHECK: causal = true, threshold = 1.0, block = 8
func.func @causal(%qq: tensor<8x32xi8>, %kq: tensor<12x32xi8>, %v: tensor<12x32xf32>, %sq: tensor<1xf32>, %sk: tensor<1xf32>) -> tensor<8x32xf32> {
  %o = quant.progressive_attention %qq, %kq, %v, %sq, %sk {heads = 2, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true, threshold = 1.0, block = 8} : (tensor<8x32xi8>, tensor<12x32xi8>, tensor<12x32xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<8x32xf32>
  func.return %o : tensor<8x32xf32>
}
