// Round trip of the elementwise and normalisation nn ops (binary ops with numpy broadcasting).
// RUN: %roundtrip | filecheck %s

// CHECK-LABEL: func.func @binary
// CHECK-NEXT:    %0 = nn.add %x, %x : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %1 = nn.add %x, %row : (tensor<65x64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %2 = nn.sub %col, %row : (tensor<65x1xf32>, tensor<64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %3 = nn.mul %x, %one : (tensor<65x64xf32>, tensor<1x64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %4 = nn.div %x, %col : (tensor<65x64xf32>, tensor<65x1xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %5 = nn.add %x3, %x : (tensor<4x65x64xf32>, tensor<65x64xf32>) -> tensor<4x65x64xf32>
// CHECK-NEXT:    %6 = nn.mul %s, %x3 : (tensor<f32>, tensor<4x65x64xf32>) -> tensor<4x65x64xf32>
// CHECK-NEXT:    %7 = nn.sub %i, %i : (tensor<8xi32>, tensor<8xi32>) -> tensor<8xi32>
func.func @binary(%x: tensor<65x64xf32>, %row: tensor<64xf32>, %col: tensor<65x1xf32>, %one: tensor<1x64xf32>, %x3: tensor<4x65x64xf32>, %s: tensor<f32>, %i: tensor<8xi32>) {
  %0 = nn.add %x, %x : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
  %1 = nn.add %x, %row : (tensor<65x64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  %2 = nn.sub %col, %row : (tensor<65x1xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  %3 = nn.mul %x, %one : (tensor<65x64xf32>, tensor<1x64xf32>) -> tensor<65x64xf32>
  %4 = nn.div %x, %col : (tensor<65x64xf32>, tensor<65x1xf32>) -> tensor<65x64xf32>
  %5 = nn.add %x3, %x : (tensor<4x65x64xf32>, tensor<65x64xf32>) -> tensor<4x65x64xf32>
  %6 = nn.mul %s, %x3 : (tensor<f32>, tensor<4x65x64xf32>) -> tensor<4x65x64xf32>
  %7 = nn.sub %i, %i : (tensor<8xi32>, tensor<8xi32>) -> tensor<8xi32>
  func.return
}

// -----

// CHECK-LABEL: func.func @layer_norm
// CHECK-NEXT:    %y = nn.layer_norm %x, %g, %b {eps = 1.0e-06} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %z = nn.layer_norm %x, %g, %b {eps = 1.0e-05} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %u = nn.layer_norm %v, %g, %b {eps = 0.001} : (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
// CHECK-NEXT:    %w = nn.layer_norm %h, %gh, %gh {eps = 1.0e-12} : (tensor<2x7x16xf16>, tensor<16xf16>, tensor<16xf16>) -> tensor<2x7x16xf16>
func.func @layer_norm(%x: tensor<65x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>, %v: tensor<64xf32>, %h: tensor<2x7x16xf16>, %gh: tensor<16xf16>) {
  %y = nn.layer_norm %x, %g, %b {eps = 1.0e-06} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  %z = nn.layer_norm %x, %g, %b {eps = 0.00001} : (tensor<65x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<65x64xf32>
  %u = nn.layer_norm %v, %g, %b {eps = 1.0e-3} : (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %w = nn.layer_norm %h, %gh, %gh {eps = 1.0e-12} : (tensor<2x7x16xf16>, tensor<16xf16>, tensor<16xf16>) -> tensor<2x7x16xf16>
  func.return
}

// -----

// CHECK-LABEL: func.func @activations
// CHECK-NEXT:    %0 = nn.gelu %x {approximate = "none"} : (tensor<65x128xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %1 = nn.gelu %x {approximate = "tanh"} : (tensor<65x128xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %2 = nn.tanh %p : (tensor<1x128xf32>) -> tensor<1x128xf32>
// CHECK-NEXT:    %3 = nn.relu %x : (tensor<65x128xf32>) -> tensor<65x128xf32>
// CHECK-NEXT:    %4 = nn.relu %h : (tensor<3x4x5xf16>) -> tensor<3x4x5xf16>
func.func @activations(%x: tensor<65x128xf32>, %p: tensor<1x128xf32>, %h: tensor<3x4x5xf16>) {
  %0 = nn.gelu %x {approximate = "none"} : (tensor<65x128xf32>) -> tensor<65x128xf32>
  %1 = nn.gelu %x {approximate = "tanh"} : (tensor<65x128xf32>) -> tensor<65x128xf32>
  %2 = nn.tanh %p : (tensor<1x128xf32>) -> tensor<1x128xf32>
  %3 = nn.relu %x : (tensor<65x128xf32>) -> tensor<65x128xf32>
  %4 = nn.relu %h : (tensor<3x4x5xf16>) -> tensor<3x4x5xf16>
  func.return
}

// -----

// CHECK-LABEL: func.func @softmax
// CHECK-NEXT:    %0 = nn.softmax %x {axis = -1} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
// CHECK-NEXT:    %1 = nn.softmax %x {axis = 0} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
// CHECK-NEXT:    %2 = nn.softmax %x {axis = 2} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
// CHECK-NEXT:    %3 = nn.softmax %x {axis = -3} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
func.func @softmax(%x: tensor<4x65x65xf32>) {
  %0 = nn.softmax %x {axis = -1} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
  %1 = nn.softmax %x {axis = 0} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
  %2 = nn.softmax %x {axis = 2} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
  %3 = nn.softmax %x {axis = -3} : (tensor<4x65x65xf32>) -> tensor<4x65x65xf32>
  func.return
}
