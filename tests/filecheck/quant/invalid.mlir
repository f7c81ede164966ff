// Verifier errors of the quant ops (quantize, dequantize, linear, requantize): one malformed op per
// chunk; each error names the op, what was wrong and what was expected.
// RUN: wisp-opt %s --split-input-file --verify-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line (and a failure exit).
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// quant.quantize: the input must be floating point
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 3]]:3: quant.quantize: input must be a floating-point tensor, got tensor<65x64xi8>
// CLI: wisp-opt: error: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.quantize: input must be a floating-point tensor, got tensor<65x64xi8>
func.func @case0(%x: tensor<65x64xi8>, %s: tensor<1xf32>) {
  %q = quant.quantize %x, %s : (tensor<65x64xi8>, tensor<1xf32>) -> tensor<65x64xi8>
  func.return
}

// -----

// quant.quantize: the scale must be floating point
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.quantize: scale must be a floating-point tensor, got tensor<1xi32>
func.func @case1(%x: tensor<65x64xf32>, %s: tensor<1xi32>) {
  %q = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xi32>) -> tensor<65x64xi8>
  func.return
}

// -----

// quant.quantize: one scale per tensor only
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.quantize: scale must be [1] (per tensor), got [64]
func.func @case2(%x: tensor<65x64xf32>, %s: tensor<64xf32>) {
  %q = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<64xf32>) -> tensor<65x64xi8>
  func.return
}

// -----

// quant.quantize: the result must be i8 or i4
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.quantize: result must be an i4 or i8 tensor, got tensor<65x64xi16>
func.func @case3(%x: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %q = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xi16>
  func.return
}

// -----

// quant.quantize: a float result is not a quantized tensor
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.quantize: result must be an i4 or i8 tensor, got tensor<65x64xf32>
func.func @case4(%x: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %q = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<65x64xf32>
  func.return
}

// -----

// quant.quantize: the result keeps the input's shape
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.quantize: result shape [64, 65] differs from the input's [65, 64]
func.func @case5(%x: tensor<65x64xf32>, %s: tensor<1xf32>) {
  %q = quant.quantize %x, %s : (tensor<65x64xf32>, tensor<1xf32>) -> tensor<64x65xi8>
  func.return
}

// -----

// quant.dequantize: the input must be an integer tensor
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.dequantize: input must be an i4 or i8 or i32 tensor, got tensor<65x128xf32>
func.func @case6(%a: tensor<65x128xf32>, %s: tensor<128xf32>) {
  %y = quant.dequantize %a, %s : (tensor<65x128xf32>, tensor<128xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// quant.dequantize: the scale must be floating point
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.dequantize: scale must be a floating-point tensor, got tensor<128xi32>
func.func @case7(%a: tensor<65x128xi32>, %s: tensor<128xi32>) {
  %y = quant.dequantize %a, %s : (tensor<65x128xi32>, tensor<128xi32>) -> tensor<65x128xf32>
  func.return
}

// -----

// quant.dequantize: per-channel scales are one per output channel
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.dequantize: scale must be [1] or [128], got [64]
func.func @case8(%a: tensor<65x128xi32>, %s: tensor<64xf32>) {
  %y = quant.dequantize %a, %s : (tensor<65x128xi32>, tensor<64xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// quant.dequantize: grouped scales must match the accumulator's groups
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.dequantize: grouped scales [3, 128] need an input [3, …, 128], got [2, 65, 128]
func.func @case9(%a: tensor<2x65x128xi32>, %s: tensor<3x128xf32>) {
  %y = quant.dequantize %a, %s : (tensor<2x65x128xi32>, tensor<3x128xf32>) -> tensor<65x128xf32>
  func.return
}

// -----

// quant.dequantize: the result type is inferred
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.dequantize: result type tensor<65x128xi32> does not match inferred tensor<65x128xf32>
func.func @case10(%a: tensor<65x128xi32>, %s: tensor<128xf32>) {
  %y = quant.dequantize %a, %s : (tensor<65x128xi32>, tensor<128xf32>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: activations must be i8
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: input must be an i8 tensor, got tensor<65x64xi4>
func.func @case11(%x: tensor<65x64xi4>, %w: tensor<128x64xi8>) {
  %a = quant.linear %x, %w {groups = 1} : (tensor<65x64xi4>, tensor<128x64xi8>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: weights must be i8 or i4
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: weight must be an i4 or i8 tensor, got tensor<128x64xf32>
func.func @case12(%x: tensor<65x64xi8>, %w: tensor<128x64xf32>) {
  %a = quant.linear %x, %w {groups = 1} : (tensor<65x64xi8>, tensor<128x64xf32>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: K of input and weight disagree
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: weight must be [out, 64] for input [65, 64], got [128, 32]
func.func @case13(%x: tensor<65x64xi8>, %w: tensor<128x32xi8>) {
  %a = quant.linear %x, %w {groups = 1} : (tensor<65x64xi8>, tensor<128x32xi8>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: groups must divide K
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: groups 3 must be >= 1 and divide K = 64
func.func @case14(%x: tensor<65x64xi8>, %w: tensor<128x64xi4>) {
  %a = quant.linear %x, %w {groups = 3} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<3x65x128xi32>
  func.return
}

// -----

// quant.linear: groups must be positive
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: groups 0 must be >= 1 and divide K = 64
func.func @case15(%x: tensor<65x64xi8>, %w: tensor<128x64xi4>) {
  %a = quant.linear %x, %w {groups = 0} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: a bias with groups > 1
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: a bias needs groups = 1 (add it after quant.dequantize)
func.func @case16(%x: tensor<65x64xi8>, %w: tensor<128x64xi4>, %b: tensor<128xi32>) {
  %a = quant.linear %x, %w, %b {groups = 2} : (tensor<65x64xi8>, tensor<128x64xi4>, tensor<128xi32>) -> tensor<2x65x128xi32>
  func.return
}

// -----

// quant.linear: the bias is an int32 accumulator value
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: bias must be an i32 tensor, got tensor<128xf32>
func.func @case17(%x: tensor<65x64xi8>, %w: tensor<128x64xi8>, %b: tensor<128xf32>) {
  %a = quant.linear %x, %w, %b {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi8>, tensor<128xf32>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: one bias per output channel
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: bias must be [128], got [64]
func.func @case18(%x: tensor<65x64xi8>, %w: tensor<128x64xi8>, %b: tensor<64xi32>) {
  %a = quant.linear %x, %w, %b {groups = 1} : (tensor<65x64xi8>, tensor<128x64xi8>, tensor<64xi32>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.linear: a grouped result has a leading group dim
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.linear: result type tensor<65x128xi32> does not match inferred tensor<2x65x128xi32>
func.func @case19(%x: tensor<65x64xi8>, %w: tensor<128x64xi4>) {
  %a = quant.linear %x, %w {groups = 2} : (tensor<65x64xi8>, tensor<128x64xi4>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.requantize: shift above 63
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: shift must be in [0, 63], got 64
func.func @case20(%a: tensor<65x128xi32>, %m: tensor<128xi32>) {
  %q = quant.requantize %a, %m {shift = 64} : (tensor<65x128xi32>, tensor<128xi32>) -> tensor<65x128xi8>
  func.return
}

// -----

// quant.requantize: negative shift
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: shift must be in [0, 63], got -1
func.func @case21(%a: tensor<65x128xi32>, %m: tensor<128xi32>) {
  %q = quant.requantize %a, %m {shift = -1} : (tensor<65x128xi32>, tensor<128xi32>) -> tensor<65x128xi8>
  func.return
}

// -----

// quant.requantize: the input is an int32 accumulator
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: input must be an i32 tensor, got tensor<65x128xi8>
func.func @case22(%a: tensor<65x128xi8>, %m: tensor<128xi32>) {
  %q = quant.requantize %a, %m {shift = 8} : (tensor<65x128xi8>, tensor<128xi32>) -> tensor<65x128xi8>
  func.return
}

// -----

// quant.requantize: integer multipliers
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: multiplier must be an i32 tensor, got tensor<128xf32>
func.func @case23(%a: tensor<65x128xi32>, %m: tensor<128xf32>) {
  %q = quant.requantize %a, %m {shift = 8} : (tensor<65x128xi32>, tensor<128xf32>) -> tensor<65x128xi8>
  func.return
}

// -----

// quant.requantize: multipliers per tensor or per channel
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: multiplier must be [1] or [128], got [65]
func.func @case24(%a: tensor<65x128xi32>, %m: tensor<65xi32>) {
  %q = quant.requantize %a, %m {shift = 8} : (tensor<65x128xi32>, tensor<65xi32>) -> tensor<65x128xi8>
  func.return
}

// -----

// quant.requantize: the result must be i8 or i4
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: result must be an i4 or i8 tensor, got tensor<65x128xi32>
func.func @case25(%a: tensor<65x128xi32>, %m: tensor<1xi32>) {
  %q = quant.requantize %a, %m {shift = 8} : (tensor<65x128xi32>, tensor<1xi32>) -> tensor<65x128xi32>
  func.return
}

// -----

// quant.requantize: the result keeps the input's shape
// CHECK: {{.*}}invalid.mlir:[[# @LINE + 2]]:3: quant.requantize: result shape [65, 64] differs from the input's [65, 128]
func.func @case26(%a: tensor<65x128xi32>, %m: tensor<1xi32>) {
  %q = quant.requantize %a, %m {shift = 8} : (tensor<65x128xi32>, tensor<1xi32>) -> tensor<65x64xi8>
  func.return
}
