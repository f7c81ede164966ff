// sparsify-2-4: linear / patch_embed weights whose in-features are a multiple of 4 become 2:4 sparse and
// their nn.weight is marked {sparsity = "2:4"}; others stay dense with a note, or are an error when named.
// RUN: %python -c "import numpy as np; f = np.float32; r = np.random.default_rng(0); np.savez('%t.npz', **{'fc.weight': r.standard_normal((6, 8)).astype(f), 'fc.bias': np.zeros(6, f), 'head.weight': r.standard_normal((4, 6)).astype(f)})"
// RUN: wisp-opt %s -p sparsify-2-4 --weights %t.npz | filecheck %s
// RUN: wisp-opt %s -p 'sparsify-2-4{refit=true}' --weights %t.npz | filecheck %s --check-prefix=REFIT
// RUN: not wisp-opt %s -p 'sparsify-2-4{layers=head}' --weights %t.npz 2>&1 | filecheck %s --check-prefix=NAMED
// RUN: not wisp-opt %s -p 'sparsify-2-4{bogus=1}' --weights %t.npz 2>&1 | filecheck %s --check-prefix=OPTION

// CHECK:        [sparsify-2-4]
// CHECK:          nonzero_params    72 -> 48
// CHECK:          weight_bytes     312 -> 222
// CHECK:          2:4 on 1 weight{{$}}
// CHECK-NEXT:     left dense: head (in-features 6 is not a multiple of 4)
// CHECK-LABEL:  func.func @main
// CHECK-NEXT:     %w = nn.weight @fc.weight attributes {sparsity = "2:4"} : tensor<6x8xf32>
// CHECK-NEXT:     %b = nn.weight @fc.bias : tensor<6xf32>
// CHECK:          %w2 = nn.weight @head.weight : tensor<4x6xf32>

// REFIT:        refit on 32 samples: calibration reconstruction error
// REFIT:        nn.weight @fc.weight attributes {sparsity = "2:4"}

// NAMED:  wisp-opt: error: pass 'sparsify-2-4': layer 'head' cannot be 2:4 sparse: in-features 6 is not a multiple of 4
// OPTION: wisp-opt: error: pass 'sparsify-2-4': unknown option 'bogus'; valid options: refit, layers, min_in, samples, damp, hw (see `wisp passes sparsify-2-4`)
func.func @main(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = nn.weight @fc.weight : tensor<6x8xf32>
  %b = nn.weight @fc.bias : tensor<6xf32>
  %y = nn.linear %x, %w, %b : (tensor<2x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<2x6xf32>
  %w2 = nn.weight @head.weight : tensor<4x6xf32>
  %z = nn.linear %y, %w2 : (tensor<2x6xf32>, tensor<4x6xf32>) -> tensor<2x4xf32>
  func.return %z : tensor<2x4xf32>
}
