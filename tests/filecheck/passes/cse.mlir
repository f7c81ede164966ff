// cse: identical pure ops merge (same op, operands, properties and types); different ones stay.
// RUN: wisp-opt %s -p cse | filecheck %s

// Two nn.weight of one symbol merge; then the two linears read the same operands and merge as well.
// CHECK-LABEL: func.func @duplicate_weight
// CHECK-NEXT:    %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:    %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    func.return %y, %y : tensor<2x8xf32>, tensor<2x8xf32>
func.func @duplicate_weight(%x: tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %w = nn.weight @fc.weight : tensor<8x4xf32>
  %w2 = nn.weight @fc.weight : tensor<8x4xf32>
  %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  %z = nn.linear %x, %w2 : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  func.return %y, %z : tensor<2x8xf32>, tensor<2x8xf32>
}

// Different properties or operands keep ops apart.
// CHECK-LABEL: func.func @distinct
// CHECK-NEXT:    %a = nn.weight @a : tensor<4xf32>
// CHECK-NEXT:    %b = nn.weight @b : tensor<4xf32>
// CHECK-NEXT:    %s0 = nn.softmax %x {axis = 0} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %s1 = nn.softmax %x {axis = 1} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %p = nn.add %x, %a : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %q = nn.add %x, %b : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    func.return %s0, %s1, %p, %p, %q
func.func @distinct(%x: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) {
  %a = nn.weight @a : tensor<4xf32>
  %b = nn.weight @b : tensor<4xf32>
  %s0 = nn.softmax %x {axis = 0} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %s1 = nn.softmax %x {axis = 1} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %p = nn.add %x, %a : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  %p2 = nn.add %x, %a : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  %q = nn.add %x, %b : (tensor<4x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  func.return %s0, %s1, %p, %p2, %q : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>
}

// Same symbol, different declared type: not the same value.
// CHECK-LABEL: func.func @same_symbol_other_type
// CHECK-NEXT:    %a = nn.weight @w : tensor<4xf32>
// CHECK-NEXT:    %b = nn.weight @w : tensor<4xf16>
func.func @same_symbol_other_type() -> (tensor<4xf32>, tensor<4xf16>) {
  %a = nn.weight @w : tensor<4xf32>
  %b = nn.weight @w : tensor<4xf16>
  func.return %a, %b : tensor<4xf32>, tensor<4xf16>
}
