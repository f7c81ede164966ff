// Round trip of the quant ops: the custom form prints back unchanged (CHECK lines), and
// custom -> generic -> custom is the identity (%roundtrip).
// RUN: %roundtrip | filecheck %s

// CHECK-LABEL: func.func @quantize
// CHECK-NEXT:    %s = nn.weight @fc.input_scale : tensor<1xf32>
// CHECK-NEXT:    %q8 = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xi8>
// CHECK-NEXT:    %q4 = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xi4>
// CHECK-NEXT:    %h = quant.quantize %xh, %s : (tensor<64xf16>, tensor<1xf32>) -> tensor<64xi8>
func.func @quantize(%x: tensor<65x64xf32>, %xh: tensor<64xf16>) {
  %s = nn.weight @fc.input_scale : tensor<1xf32>
  %q8 = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xi8>
  %q4 = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xi4>
  %h = quant.quantize %xh, %s : (tensor<64xf16>, tensor<1xf32>) -> tensor<64xi8>
  func.return
}

// -----

// CHECK-LABEL: func.func @linear
// CHECK-NEXT:    %w = nn.weight @fc.weight.q : tensor<128x64xi8>
// CHECK-NEXT:    %w4 = nn.weight @fc4.weight.q : tensor<128x64xi4>
// CHECK-NEXT:    %b = nn.weight @fc.bias.q : tensor<128xi32>
// CHECK-NEXT:    %a = quant.linear %x, %w, %b {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi8>, tensor<128xi32>) -> tensor<65x128xi32>
// CHECK-NEXT:    %n = quant.linear %x, %w4 {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<65x128xi32>
// CHECK-NEXT:    %g = quant.linear %x, %w4 {groups = 2} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<2x65x128xi32>
// CHECK-NEXT:    %v = quant.linear %x3, %w {groups = 4} : (tensor<3x65x64xi8>, tensor<128x64xi8>) -> tensor<4x3x65x128xi32>
// CHECK-NEXT:    %u = quant.linear %x1, %w, %b {groups = 1} : (tensor<64xi8>, tensor<128x64xi8>, tensor<128xi32>) -> tensor<128xi32>
func.func @linear(%x: tensor<65x64xi8>, %x3: tensor<3x65x64xi8>, %x1: tensor<64xi8>) {
  %w = nn.weight @fc.weight.q : tensor<128x64xi8>
  %w4 = nn.weight @fc4.weight.q : tensor<128x64xi4>
  %b = nn.weight @fc.bias.q : tensor<128xi32>
  %a = quant.linear %x, %w, %b {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi8>, tensor<128xi32>) -> tensor<65x128xi32>
  %n = quant.linear %x, %w4 {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<65x128xi32>
  %g = quant.linear %x, %w4 {groups = 2} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<2x65x128xi32>
  %v = quant.linear %x3, %w {groups = 4} : (tensor<3x65x64xi8>, tensor<128x64xi8>) -> tensor<4x3x65x128xi32>
  %u = quant.linear %x1, %w, %b {groups = 1} : (tensor<64xi8>, tensor<128x64xi8>, tensor<128xi32>) -> tensor<128xi32>
  func.return
}

// -----

// CHECK-LABEL: func.func @dequantize
// CHECK-NEXT:    %c = nn.weight @fc.dequant : tensor<128xf32>
// CHECK-NEXT:    %t = nn.weight @fc.scale : tensor<1xf32>
// CHECK-NEXT:    %gs = nn.weight @fc4.dequant : tensor<2x128xf32>
// CHECK-NEXT:    %y = quant.dequantize %acc, %c : (tensor<65x128xi32>, tensor<128xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %z = quant.dequantize %q, %t : (tensor<65x128xi8>, tensor<1xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %h = quant.dequantize %q4, %t : (tensor<65x128xi4>, tensor<1xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %g = quant.dequantize %gacc, %gs : (tensor<2x65x128xi32>, tensor<2x128xf32>) -> tensor<65x128xf32>
func.func @dequantize(%acc: tensor<65x128xi32>, %q: tensor<65x128xi8>, %q4: tensor<65x128xi4>, %gacc: tensor<2x65x128xi32>) {
  %c = nn.weight @fc.dequant : tensor<128xf32>
  %t = nn.weight @fc.scale : tensor<1xf32>
  %gs = nn.weight @fc4.dequant : tensor<2x128xf32>
  %y = quant.dequantize %acc, %c : (tensor<65x128xi32>, tensor<128xf32>) -> tensor<65x128xf32>
  %z = quant.dequantize %q, %t : (tensor<65x128xi8>, tensor<1xf32>) -> tensor<65x128xf32>
  %h = quant.dequantize %q4, %t : (tensor<65x128xi4>, tensor<1xf32>) -> tensor<65x128xf32>
  %g = quant.dequantize %gacc, %gs : (tensor<2x65x128xi32>, tensor<2x128xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @requantize
// CHECK-NEXT:    %m = nn.weight @fc.requant : tensor<128xi32>
// CHECK-NEXT:    %m1 = nn.weight @fc.requant1 : tensor<1xi32>
// CHECK-NEXT:    %q = quant.requantize %acc, %m {shift = 38} : (tensor<65x128xi32>, tensor<128xi32>) -> tensor<65x128xi8>
// CHECK-NEXT:    %r = quant.requantize %acc, %m1 {shift = 0} : (tensor<65x128xi32>, tensor<1xi32>) -> tensor<65x128xi4>
// CHECK-NEXT:    %t = quant.requantize %acc, %m1 {shift = 63} : (tensor<65x128xi32>, tensor<1xi32>) -> tensor<65x128xi8>
func.func @requantize(%acc: tensor<65x128xi32>) {
  %m = nn.weight @fc.requant : tensor<128xi32>
  %m1 = nn.weight @fc.requant1 : tensor<1xi32>
  %q = quant.requantize %acc, %m {shift = 38} : (tensor<65x128xi32>, tensor<128xi32>) -> tensor<65x128xi8>
  %r = quant.requantize %acc, %m1 {shift = 0} : (tensor<65x128xi32>, tensor<1xi32>) -> tensor<65x128xi4>
  %t = quant.requantize %acc, %m1 {shift = 63} : (tensor<65x128xi32>, tensor<1xi32>) -> tensor<65x128xi8>
  func.return
}
