// quantize: each float nn.linear becomes quant.quantize (once per shared input) -> quant.linear ->
// quant.dequantize, with the integer weights, bias and scales stored under `<layer>.*` symbols;
// int4 groups give a grouped accumulator, dequantized per group, plus the float bias.
// RUN: %python -c "import numpy as np; f = np.float32; r = np.random.default_rng(0); np.savez('%t.npz', **{'fc.weight': r.standard_normal((6, 8)).astype(f), 'fc.bias': np.zeros(6, f), 'gc.weight': r.standard_normal((4, 8)).astype(f), 'gc.bias': np.ones(4, f)})"
// RUN: wisp-opt %s -p 'quantize{samples=2}' --weights %t.npz | filecheck %s
// RUN: wisp-opt %s -p 'quantize{weights=int4 granularity=group:4 samples=2}' --weights %t.npz | filecheck %s --check-prefix=G4
// RUN: not wisp-opt %s -p 'quantize{granularity=group:3}' --weights %t.npz 2>&1 | filecheck %s --check-prefix=BAD
// RUN: not wisp-opt %s -p 'quantize{layers=nosuch}' --weights %t.npz 2>&1 | filecheck %s --check-prefix=NONE

// CHECK:       [quantize]
// CHECK:         2 linear layers to W8A8 (channel, rtn, calib=minmax)
// CHECK-LABEL: func.func @main
// CHECK:         %[[S:.*]] = nn.weight @fc.input_scale : tensor<1xf32>
// CHECK-NEXT:    %[[Q:.*]] = quant.quantize %x, %[[S]] : (tensor<2x8xf32>, tensor<1xf32>) -> tensor<2x8xi8>
// CHECK-NEXT:    %[[W:.*]] = nn.weight @fc.weight.q : tensor<6x8xi8>
// CHECK-NEXT:    %[[B:.*]] = nn.weight @fc.bias.q : tensor<6xi32>
// CHECK-NEXT:    %[[A:.*]] = quant.linear %[[Q]], %[[W]], %[[B]] {groups = 1} : (tensor<2x8xi8>, tensor<6x8xi8>, tensor<6xi32>) -> tensor<2x6xi32>
// CHECK-NEXT:    %[[D:.*]] = nn.weight @fc.dequant : tensor<6xf32>
// CHECK-NEXT:    %{{.*}} = quant.dequantize %[[A]], %[[D]] : (tensor<2x6xi32>, tensor<6xf32>) -> tensor<2x6xf32>
// CHECK-NOT:     @fc.input_scale
// CHECK:         quant.linear %[[Q]], %{{.*}}, %{{.*}} {groups = 1} : (tensor<2x8xi8>, tensor<4x8xi8>, tensor<4xi32>) -> tensor<2x4xi32>
// CHECK-NOT:     nn.linear

// G4:          2 linear layers to W4A8 (group:4, rtn, calib=minmax)
// G4:          %[[A:.*]] = quant.linear %{{.*}}, %{{.*}} {groups = 2} : (tensor<2x8xi8>, tensor<6x8xi4>) -> tensor<2x2x6xi32>
// G4-NEXT:     %[[D:.*]] = nn.weight @fc.dequant : tensor<2x6xf32>
// G4-NEXT:     %[[Y:.*]] = quant.dequantize %[[A]], %[[D]] : (tensor<2x2x6xi32>, tensor<2x6xf32>) -> tensor<2x6xf32>
// G4-NEXT:     %{{.*}} = nn.add %[[Y]], %{{.*}} : (tensor<2x6xf32>, tensor<6xf32>) -> tensor<2x6xf32>

// BAD:  wisp-opt: error: pass 'quantize': granularity=group:3: group size 3 does not divide K = 8 of layer 'fc'
// NONE: wisp-opt: error: pass 'quantize': layers=nosuch matches no float linear layer (layers: fc, gc)
func.func @main(%x: tensor<2x8xf32>) -> (tensor<2x6xf32>, tensor<2x4xf32>) {
  %w = nn.weight @fc.weight : tensor<6x8xf32>
  %b = nn.weight @fc.bias : tensor<6xf32>
  %y = nn.linear %x, %w, %b : (tensor<2x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<2x6xf32>
  %w2 = nn.weight @gc.weight : tensor<4x8xf32>
  %b2 = nn.weight @gc.bias : tensor<4xf32>
  %z = nn.linear %x, %w2, %b2 : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  func.return %y, %z : tensor<2x6xf32>, tensor<2x4xf32>
}
