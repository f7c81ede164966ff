// Details of the nn custom syntax: discardable attributes, the canonical property order and spelling,
// and the generic form, which takes properties in <{...}> (or, as xDSL does, in the attribute dict).
// RUN: %roundtrip | filecheck %s
// RUN: wisp-opt %s --split-input-file --print-op-generic | filecheck %s --check-prefix=GENERIC

// Discardable attributes print after the properties, with the `attributes` keyword, in their own order.
// CHECK-LABEL: func.func @attributes
// CHECK-NEXT:    %w = nn.weight @w attributes {wisp.tag = "keep"} : tensor<4x4xf32>
// CHECK-NEXT:    %r = nn.relu %x attributes {name = "blocks.0.mlp", layer = 3 : i64} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %s = nn.softmax %x {axis = -1} attributes {note = "rows"} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %m = nn.matmul %x, %w {transpose_b = true} attributes {fused} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
// GENERIC-LABEL: "func.func"() <{sym_name = "attributes"
// GENERIC:       %w = "nn.weight"() <{sym = @w}> {wisp.tag = "keep"} : () -> tensor<4x4xf32>
// GENERIC-NEXT:  %r = "nn.relu"(%x) {name = "blocks.0.mlp", layer = 3 : i64} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// GENERIC-NEXT:  %s = "nn.softmax"(%x) <{axis = -1 : i64}> {note = "rows"} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// GENERIC-NEXT:  %m = "nn.matmul"(%x, %w) <{transpose_b = true}> {fused} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
func.func @attributes(%x: tensor<4x4xf32>) {
  %w = nn.weight @w attributes {wisp.tag = "keep"} : tensor<4x4xf32>
  %r = nn.relu %x attributes {name = "blocks.0.mlp", layer = 3 : i64} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %s = nn.softmax %x {axis = -1} attributes {note = "rows"} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %m = nn.matmul %x, %w {transpose_b = true} attributes {fused} : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  func.return
}

// -----

// Property spelling is canonical: declaration order, floats always with a '.', lists with ", ".
// CHECK-LABEL: func.func @spelling
// CHECK-NEXT:    %0 = nn.attention %q, %q, %q {heads = 2, qk_dim = 2, v_dim = 2, scale = 0.5, causal = false} : (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
// CHECK-NEXT:    %1 = nn.layer_norm %q, %g, %g {eps = 1.0e+20} : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
// CHECK-NEXT:    %2 = nn.layer_norm %q, %g, %g {eps = 2.5} : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
// CHECK-NEXT:    %3 = nn.transpose %q {perm = [1, 0]} : (tensor<3x4xf32>) -> tensor<4x3xf32>
// CHECK-NEXT:    %4 = nn.concat %q, %q {axis = 1} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x8xf32>
// GENERIC-LABEL: "func.func"() <{sym_name = "spelling"
// The generic form keeps the properties in the order they were written.
// GENERIC:       <{causal = false, v_dim = 2 : i64, scale = 5.000000e-01 : f64, heads = 2 : i64, qk_dim = 2 : i64}>
// GENERIC:       <{eps = 1.000000e+20 : f64}>
// GENERIC:       <{eps = 2.500000e+00 : f64}>
// GENERIC:       <{perm = array<i64: 1, 0>}>
// GENERIC:       <{axis = 1 : i64}>
func.func @spelling(%q: tensor<3x4xf32>, %g: tensor<4xf32>) {
  %0 = nn.attention %q, %q, %q {causal = false, v_dim = 2, scale = 5.0e-1, heads = 2, qk_dim = 2} : (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %1 = nn.layer_norm %q, %g, %g {eps = 100000000000000000000.0} : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %2 = nn.layer_norm %q, %g, %g {eps = 2.50} : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %3 = nn.transpose %q {perm = [ 1 ,0 ]} : (tensor<3x4xf32>) -> tensor<4x3xf32>
  %4 = nn.concat %q, %q { axis = 1 } : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x8xf32>
  func.return
}

// -----

// Generic input: properties in <{...}>, or in the attribute dict (xDSL moves declared property names
// there into the properties); an array<i32> perm is read as its values and prints as [..].
// CHECK-LABEL: func.func @generic_input
// CHECK-NEXT:    %w = nn.weight @w : tensor<4x4xf32>
// CHECK-NEXT:    %0 = nn.softmax %x {axis = -1} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %1 = nn.softmax %x {axis = 0} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %2 = nn.transpose %x {perm = [1, 0]} : (tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:    %3 = nn.linear %x, %w : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
"func.func"() <{sym_name = "generic_input", function_type = (tensor<4x4xf32>) -> ()}> ({
^bb0(%x: tensor<4x4xf32>):
  %w = "nn.weight"() <{sym = @w}> : () -> tensor<4x4xf32>
  %0 = "nn.softmax"(%x) <{axis = -1 : i64}> : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %1 = "nn.softmax"(%x) {axis = 0 : i64} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %2 = "nn.transpose"(%x) <{perm = array<i32: 1, 0>}> : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %3 = "nn.linear"(%x, %w) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  "func.return"() : () -> ()
}) : () -> ()
