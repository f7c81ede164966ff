// Parse errors of the nn custom syntax.
// Each chunk of --split-input-file holds one syntax error; --parsing-diagnostics prints xDSL's
// diagnostic (FILE:LINE:COL, the source line, carets, the message) and goes on with the next chunk.
// Parse errors keep their absolute line under --split-input-file.
// RUN: wisp-opt %s --split-input-file --parsing-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line.
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// an unknown nn op
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 6]]:22{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Operation nn.frobnicate is not registered
// CLI: wisp-opt: error: {{.*}}parse-errors.mlir:[[# @LINE + 2]]:22: Operation nn.frobnicate is not registered
func.func @case0(%x: tensor<65x64xf32>) {
  %y = nn.frobnicate %x : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// an op of an unknown dialect
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:17{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Operation foo.relu is not registered
func.func @case1(%x: tensor<65x64xf32>) {
  %y = foo.relu %x : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: '=' missing
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:28{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected '='
func.func @case2(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {axis -1} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: value missing
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:30{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: expected a property value (integer, float, bool, string or [ints])
func.func @case3(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {axis = } : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: a symbol is not a property value
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:30{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: expected a property value (integer, float, bool, string or [ints])
func.func @case4(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {axis = @last} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: a list holds integers only
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:33{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected integer literal
func.func @case5(%x: tensor<65x64xf32>) {
  %y = nn.transpose %x {perm = [1.5, 0]} : (tensor<65x64xf32>) -> tensor<64x65xf32>
  func.return
}

// -----

// property syntax: unclosed list
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:37{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected ']'
func.func @case6(%x: tensor<65x64xf32>) {
  %y = nn.transpose %x {perm = [1, 0} : (tensor<65x64xf32>) -> tensor<64x65xf32>
  func.return
}

// -----

// property syntax: unclosed property dict
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:33{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected '}'
func.func @case7(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {axis = -1 : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: duplicate property
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:39{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: duplicate property 'axis'
func.func @case8(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {axis = -1, axis = 0} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: the name is a bare identifier
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:23{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: identifier expected for a property name
func.func @case9(%x: tensor<65x64xf32>) {
  %y = nn.softmax %x {"axis" = -1} : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// property syntax: floats need a '.' (MLIR float literal)
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:41{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected '}'
func.func @case10(%x: tensor<65x64xf32>) {
  %y = nn.layer_norm %x, %x, %x {eps = 1e-5} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// ':' missing before the type
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:42{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected ':'
func.func @case11(%x: tensor<65x64xf32>) {
  %y = nn.gelu %x {approximate = "none"} (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// the type must be a function type
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:21{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: function type expected
func.func @case12(%x: tensor<65x64xf32>) {
  %y = nn.relu %x : tensor<65x64xf32>
  func.return
}

// -----

// operand count vs type list: 2 operands, 1 type
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:24{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: nn.add has 2 operands but its type lists 1
func.func @case13(%x: tensor<65x64xf32>) {
  %y = nn.add %x, %x : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// operand count vs type list: 1 operand, 2 types
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:21{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: nn.relu has 1 operand but its type lists 2
func.func @case14(%x: tensor<65x64xf32>) {
  %y = nn.relu %x : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// nn ops have exactly one result
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:21{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: nn.relu has exactly one result
func.func @case15(%x: tensor<65x64xf32>) {
  %y = nn.relu %x : (tensor<65x64xf32>) -> (tensor<65x64xf32>, tensor<65x64xf32>)
  func.return
}

// -----

// an operand's type must agree with its definition
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:16{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: operand is used with type tensor<65x64xf16>, but has been previously used or defined with type tensor<65x64xf32>
func.func @case16(%x: tensor<65x64xf32>) {
  %y = nn.relu %x : (tensor<65x64xf16>) -> tensor<65x64xf16>
  func.return
}

// -----

// nn.weight: the symbol needs its '@'
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:18{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: expect symbol name
func.func @case17(%x: tensor<65x64xf32>) {
  %w = nn.weight w : tensor<65x64xf32>
  func.return
}

// -----

// nn.weight: ':' missing
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 5]]:21{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: Expected ':'
func.func @case18(%x: tensor<65x64xf32>) {
  %w = nn.weight @w tensor<65x64xf32>
  func.return
}

// -----

// an undefined value (xDSL reports it at the end of the chunk, column 1)
// CHECK: {{.*}}parse-errors.mlir:{{[0-9]+}}:1{{$}}
// CHECK-NEXT: {{.*}}
// CHECK-NEXT: {{\^+}}
// CHECK-NEXT: values used but not defined: [%z]
func.func @case19(%x: tensor<65x64xf32>) {
  %y = nn.relu %z : (tensor<65x64xf32>) -> tensor<65x64xf32>
  func.return
}

