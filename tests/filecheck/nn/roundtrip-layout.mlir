// Round trip of the layout nn ops: reshape, transpose, concat, slice, gather, scatter.
// RUN: %roundtrip | filecheck %s

// CHECK-LABEL: func.func @reshape
// CHECK-NEXT:    %0 = nn.reshape %x : (tensor<65x64xf32>) -> tensor<65x4x16xf32>
// CHECK-NEXT:    %1 = nn.reshape %0 : (tensor<65x4x16xf32>) -> tensor<4160xf32>
// CHECK-NEXT:    %2 = nn.reshape %s : (tensor<1x1xf32>) -> tensor<f32>
// CHECK-NEXT:    %3 = nn.reshape %2 : (tensor<f32>) -> tensor<1x1x1xf32>
func.func @reshape(%x: tensor<65x64xf32>, %s: tensor<1x1xf32>) {
  %0 = nn.reshape %x : (tensor<65x64xf32>) -> tensor<65x4x16xf32>
  %1 = nn.reshape %0 : (tensor<65x4x16xf32>) -> tensor<4160xf32>
  %2 = nn.reshape %s : (tensor<1x1xf32>) -> tensor<f32>
  %3 = nn.reshape %2 : (tensor<f32>) -> tensor<1x1x1xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @transpose
// CHECK-NEXT:    %0 = nn.transpose %x {perm = [1, 0, 2]} : (tensor<65x4x16xf32>) -> tensor<4x65x16xf32>
// CHECK-NEXT:    %1 = nn.transpose %x {perm = [2, 0, 1]} : (tensor<65x4x16xf32>) -> tensor<16x65x4xf32>
// CHECK-NEXT:    %2 = nn.transpose %m {perm = [1, 0]} : (tensor<3x5xf16>) -> tensor<5x3xf16>
// CHECK-NEXT:    %3 = nn.transpose %x {perm = [0, 1, 2]} : (tensor<65x4x16xf32>) -> tensor<65x4x16xf32>
func.func @transpose(%x: tensor<65x4x16xf32>, %m: tensor<3x5xf16>) {
  %0 = nn.transpose %x {perm = [1, 0, 2]} : (tensor<65x4x16xf32>) -> tensor<4x65x16xf32>
  %1 = nn.transpose %x {perm = [2, 0, 1]} : (tensor<65x4x16xf32>) -> tensor<16x65x4xf32>
  %2 = nn.transpose %m {perm = [1,0]} : (tensor<3x5xf16>) -> tensor<5x3xf16>
  %3 = nn.transpose %x {perm = [0, 1, 2]} : (tensor<65x4x16xf32>) -> tensor<65x4x16xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @concat
// CHECK-NEXT:    %0 = nn.concat %cls, %p {axis = 0} : (tensor<1x64xf32>, tensor<64x64xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %1 = nn.concat %p, %p, %p {axis = 1} : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x192xf32>
// CHECK-NEXT:    %2 = nn.concat %p, %p {axis = -1} : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x128xf32>
// CHECK-NEXT:    %3 = nn.concat %cls {axis = 0} : (tensor<1x64xf32>) -> tensor<1x64xf32>
func.func @concat(%cls: tensor<1x64xf32>, %p: tensor<64x64xf32>) {
  %0 = nn.concat %cls, %p {axis = 0} : (tensor<1x64xf32>, tensor<64x64xf32>) -> tensor<65x64xf32>
  %1 = nn.concat %p, %p, %p {axis = 1} : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x192xf32>
  %2 = nn.concat %p, %p {axis = -1} : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x128xf32>
  %3 = nn.concat %cls {axis = 0} : (tensor<1x64xf32>) -> tensor<1x64xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @slice
// CHECK-NEXT:    %0 = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<1x64xf32>
// CHECK-NEXT:    %1 = nn.slice %x {offsets = [1, 16]} : (tensor<65x64xf32>) -> tensor<64x48xf32>
// CHECK-NEXT:    %2 = nn.slice %x {offsets = [64, 63]} : (tensor<65x64xf32>) -> tensor<1x1xf32>
// CHECK-NEXT:    %3 = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<65x64xf32>
func.func @slice(%x: tensor<65x64xf32>) {
  %0 = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<1x64xf32>
  %1 = nn.slice %x {offsets = [1, 16]} : (tensor<65x64xf32>) -> tensor<64x48xf32>
  %2 = nn.slice %x {offsets = [64, 63]} : (tensor<65x64xf32>) -> tensor<1x1xf32>
  %3 = nn.slice %x {offsets = [0, 0]} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @gather
// CHECK-NEXT:    %t = nn.weight @tok_embed : tensor<30522x128xf32>
// CHECK-NEXT:    %0 = nn.gather %t, %ids : (tensor<30522x128xf32>, tensor<16xi32>) -> tensor<16x128xf32>
// CHECK-NEXT:    %1 = nn.gather %t, %ids2 : (tensor<30522x128xf32>, tensor<2x8xi64>) -> tensor<2x8x128xf32>
// CHECK-NEXT:    %2 = nn.gather %v, %ids : (tensor<10xf16>, tensor<16xi32>) -> tensor<16xf16>
func.func @gather(%ids: tensor<16xi32>, %ids2: tensor<2x8xi64>, %v: tensor<10xf16>) {
  %t = nn.weight @tok_embed : tensor<30522x128xf32>
  %0 = nn.gather %t, %ids : (tensor<30522x128xf32>, tensor<16xi32>) -> tensor<16x128xf32>
  %1 = nn.gather %t, %ids2 : (tensor<30522x128xf32>, tensor<2x8xi64>) -> tensor<2x8x128xf32>
  %2 = nn.gather %v, %ids : (tensor<10xf16>, tensor<16xi32>) -> tensor<16xf16>
  func.return
}

// -----

// CHECK-LABEL: func.func @scatter
// CHECK-NEXT:    %0 = nn.scatter %k_cache0, %slot, %k : (tensor<33x128xf32>, tensor<1xi32>, tensor<1x128xf32>) -> tensor<33x128xf32>
// CHECK-NEXT:    %1 = nn.scatter %0, %slots, %rows : (tensor<33x128xf32>, tensor<4xi32>, tensor<4x128xf32>) -> tensor<33x128xf32>
func.func @scatter(%k_cache0: tensor<33x128xf32>, %slot: tensor<1xi32>, %k: tensor<1x128xf32>, %slots: tensor<4xi32>, %rows: tensor<4x128xf32>) {
  %0 = nn.scatter %k_cache0, %slot, %k : (tensor<33x128xf32>, tensor<1xi32>, tensor<1x128xf32>) -> tensor<33x128xf32>
  %1 = nn.scatter %0, %slots, %rows : (tensor<33x128xf32>, tensor<4xi32>, tensor<4x128xf32>) -> tensor<33x128xf32>
  func.return
}
