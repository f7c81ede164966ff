// The pass pipeline flags: --print-ir-after-all prints the IR after every pass under an MLIR-style
// header, then the final output follows; -p rejects unknown passes and malformed specs with one line.
// RUN: wisp-opt %s -p canonicalize,cse,dce --print-ir-after-all | filecheck %s
// RUN: not wisp-opt %s -p canonicalize,bogus,other 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not wisp-opt %s -p canonicalize,,cse 2>&1 | filecheck %s --check-prefix=SYNTAX
// RUN: not wisp-opt %s -p "canonicalize{foo=1}" 2>&1 | filecheck %s --check-prefix=OPTION

// canonicalize folds the identity reshape; cse then merges the duplicate weight and the two linears.
// CHECK:       // -----// IR Dump After canonicalize //----- //
// CHECK-NEXT:  builtin.module {
// CHECK-NEXT:    func.func @f(%x: tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
// CHECK-NEXT:      %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:      %w2 = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:      %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:      %z = nn.linear %x, %w2 : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:      func.return %y, %z : tensor<2x8xf32>, tensor<2x8xf32>
// CHECK:       // -----// IR Dump After cse //----- //
// CHECK-NEXT:  builtin.module {
// CHECK-NEXT:    func.func @f(%x: tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
// CHECK-NEXT:      %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:      %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:      func.return %y, %y : tensor<2x8xf32>, tensor<2x8xf32>
// CHECK:       // -----// IR Dump After dce //----- //
// CHECK-NEXT:  builtin.module {
// CHECK:           func.return %y, %y : tensor<2x8xf32>, tensor<2x8xf32>
// The final output comes after the last dump, and there are exactly three dumps.
// CHECK-NOT:   IR Dump After
// CHECK:       builtin.module {
// CHECK-NEXT:    func.func @f(%x: tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
// CHECK-NEXT:      %w = nn.weight @fc.weight : tensor<8x4xf32>
// CHECK-NEXT:      %y = nn.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:      func.return %y, %y : tensor<2x8xf32>, tensor<2x8xf32>
// CHECK-NOT:   IR Dump After

// UNKNOWN:     wisp-opt: error: unknown pass bogus, other; known passes: {{.*}}canonicalize{{.*}}
// UNKNOWN-NOT: builtin.module

// SYNTAX:      wisp-opt: error: pass-pipeline:1:14: bad pipeline 'canonicalize,,cse': Expected pass name here
// SYNTAX-NOT:  builtin.module

// OPTION:      wisp-opt: error: pass 'canonicalize': unknown option 'foo'; valid options: none (it takes no options) (see `wisp passes canonicalize`)
// OPTION-NOT:  builtin.module
func.func @f(%x: tensor<2x4xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %r = nn.reshape %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %w = nn.weight @fc.weight : tensor<8x4xf32>
  %w2 = nn.weight @fc.weight : tensor<8x4xf32>
  %y = nn.linear %r, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  %z = nn.linear %x, %w2 : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  func.return %y, %z : tensor<2x8xf32>, tensor<2x8xf32>
}
