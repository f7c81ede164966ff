// dce: unused nn ops (all Pure) disappear, transitively; used ones and their producers stay.
// RUN: wisp-opt %s -p dce | filecheck %s

// CHECK-LABEL: func.func @dead_chain
// CHECK-NEXT:    %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:    %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8xf32>
// CHECK-NEXT:  }
func.func @dead_chain(%x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %w = nn.weight @fc.weight : tensor<8x4xf32>
  %unused_w = nn.weight @other : tensor<8x4xf32>
  %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  %g = nn.gelu %y {approximate = "tanh"} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %s = nn.softmax %g {axis = -1} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %z = nn.linear %x, %unused_w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}

// Nothing is returned: the whole body but the return goes.
// CHECK-LABEL: func.func @all_dead
// CHECK-NEXT:    func.return
// CHECK-NEXT:  }
func.func @all_dead(%x: tensor<2x4xf32>) {
  %r = nn.relu %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %t = nn.transpose %r {perm = [1, 0]} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  func.return
}

// Everything is used: nothing changes (and dce does not fold an identity reshape; canonicalize does).
// CHECK-LABEL: func.func @all_live
// CHECK-NEXT:    %r = nn.reshape %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT:    %a = nn.add %r, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT:    func.return %a : tensor<2x4xf32>
func.func @all_live(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %r = nn.reshape %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %a = nn.add %r, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %a : tensor<2x4xf32>
}
