// canonicalize: nn's folds (identity reshape/transpose/slice/concat, reshape∘reshape,
// transpose∘transpose) followed by removal of what became dead.
// RUN: wisp-opt %s -p canonicalize | filecheck %s

// CHECK-LABEL: func.func @identity_reshape
// CHECK-NEXT:    func.return %x : tensor<4x8xf32>
func.func @identity_reshape(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = nn.reshape %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}

// reshape(reshape(x)) reads x directly; the inner reshape dies.
// CHECK-LABEL: func.func @reshape_reshape
// CHECK-NEXT:    %b = nn.reshape %x : (tensor<4x8xf32>) -> tensor<2x16xf32>
// CHECK-NEXT:    func.return %b : tensor<2x16xf32>
func.func @reshape_reshape(%x: tensor<4x8xf32>) -> tensor<2x16xf32> {
  %a = nn.reshape %x : (tensor<4x8xf32>) -> tensor<32xf32>
  %b = nn.reshape %a : (tensor<32xf32>) -> tensor<2x16xf32>
  func.return %b : tensor<2x16xf32>
}

// A chain that ends in the input type folds away completely.
// CHECK-LABEL: func.func @reshape_roundtrip
// CHECK-NEXT:    func.return %x : tensor<4x8xf32>
func.func @reshape_roundtrip(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = nn.reshape %x : (tensor<4x8xf32>) -> tensor<32xf32>
  %b = nn.reshape %a : (tensor<32xf32>) -> tensor<2x4x4xf32>
  %c = nn.reshape %b : (tensor<2x4x4xf32>) -> tensor<4x8xf32>
  func.return %c : tensor<4x8xf32>
}

// The inner reshape stays while something else uses it.
// CHECK-LABEL: func.func @reshape_shared
// CHECK-NEXT:    %a = nn.reshape %x : (tensor<4x8xf32>) -> tensor<32xf32>
// CHECK-NEXT:    %b = nn.reshape %x : (tensor<4x8xf32>) -> tensor<2x16xf32>
// CHECK-NEXT:    func.return %a, %b : tensor<32xf32>, tensor<2x16xf32>
func.func @reshape_shared(%x: tensor<4x8xf32>) -> (tensor<32xf32>, tensor<2x16xf32>) {
  %a = nn.reshape %x : (tensor<4x8xf32>) -> tensor<32xf32>
  %b = nn.reshape %a : (tensor<32xf32>) -> tensor<2x16xf32>
  func.return %a, %b : tensor<32xf32>, tensor<2x16xf32>
}

// CHECK-LABEL: func.func @identity_transpose
// CHECK-NEXT:    func.return %x : tensor<2x3x4xf32>
func.func @identity_transpose(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %a = nn.transpose %x {perm = [0, 1, 2]} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  func.return %a : tensor<2x3x4xf32>
}

// transpose(transpose(x, [1, 0, 2]), [0, 2, 1]) == transpose(x, [1, 2, 0]).
// CHECK-LABEL: func.func @transpose_transpose
// CHECK-NEXT:    %b = nn.transpose %x {perm = [1, 2, 0]} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
// CHECK-NEXT:    func.return %b : tensor<3x4x2xf32>
func.func @transpose_transpose(%x: tensor<2x3x4xf32>) -> tensor<3x4x2xf32> {
  %a = nn.transpose %x {perm = [1, 0, 2]} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %b = nn.transpose %a {perm = [0, 2, 1]} : (tensor<3x2x4xf32>) -> tensor<3x4x2xf32>
  func.return %b : tensor<3x4x2xf32>
}

// Two transposes that compose to the identity vanish.
// CHECK-LABEL: func.func @transpose_inverse
// CHECK-NEXT:    func.return %x : tensor<4x8xf32>
func.func @transpose_inverse(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = nn.transpose %x {perm = [1, 0]} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %b = nn.transpose %a {perm = [1, 0]} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  func.return %b : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @full_slice
// CHECK-NEXT:    func.return %x : tensor<4x8xf32>
func.func @full_slice(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = nn.slice %x {offsets = [0, 0]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}

// A proper slice stays.
// CHECK-LABEL: func.func @partial_slice
// CHECK-NEXT:    %a = nn.slice %x {offsets = [0, 4]} : (tensor<4x8xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    func.return %a : tensor<4x4xf32>
func.func @partial_slice(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  %a = nn.slice %x {offsets = [0, 4]} : (tensor<4x8xf32>) -> tensor<4x4xf32>
  func.return %a : tensor<4x4xf32>
}

// CHECK-LABEL: func.func @single_concat
// CHECK-NEXT:    func.return %x : tensor<4x8xf32>
func.func @single_concat(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = nn.concat %x {axis = 1} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %a : tensor<4x8xf32>
}

// A real concat stays.
// CHECK-LABEL: func.func @two_concat
// CHECK-NEXT:    %a = nn.concat %x, %x {axis = 1} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x16xf32>
// CHECK-NEXT:    func.return %a : tensor<4x16xf32>
func.func @two_concat(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %a = nn.concat %x, %x {axis = 1} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x16xf32>
  func.return %a : tensor<4x16xf32>
}

// Folds cascade: full slice -> identity transpose pair -> identity reshape; unused ops are removed.
// CHECK-LABEL: func.func @cascade
// CHECK-NEXT:    func.return %x : tensor<4x8xf32>
func.func @cascade(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %dead = nn.relu %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = nn.slice %x {offsets = [0, 0]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %t = nn.transpose %s {perm = [1, 0]} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %u = nn.transpose %t {perm = [1, 0]} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %r = nn.reshape %u : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %r : tensor<4x8xf32>
}
