// The backend inside the pass pipeline: lower-to-npu{target=...} lowers @main to npu ops (program
// order, no dependency tokens yet), npu-schedule orders them over the queues, adds the wait/signal
// tokens and the final npu.finish. Same code as `wisp compile` (tests/backend/test_backend_passes.py
// checks the instructions are identical).
// RUN: %python -c "import numpy as np; f = np.float32; np.savez('%t.npz', **{'fc.weight': np.ones((64, 32), f), 'fc.bias': np.zeros(64, f)})"
// RUN: wisp-opt %s --weights %t.npz -p 'canonicalize,lower-to-npu{target=edge},npu-schedule' --print-ir-after-all | filecheck %s
// Errors: the backend passes in the wrong order, without weights, for an unknown config.
// RUN: not wisp-opt %s -p npu-schedule 2>&1 | filecheck %s --check-prefix=ORDER
// RUN: not wisp-opt %s -p lower-to-npu 2>&1 | filecheck %s --check-prefix=NOWEIGHTS
// RUN: not wisp-opt %s --weights %t.npz -p 'lower-to-npu{target=tpu}' 2>&1 | filecheck %s --check-prefix=TARGET
// The scheduled npu IR reads back and prints identically (it is a complete npu module; last: lit's
// out-of-process `diff` resets PYTHONPATH for later RUN lines).
// RUN: wisp-opt %s --weights %t.npz -p 'lower-to-npu{target=edge},npu-schedule' -o %t.npu.mlir && wisp-opt %t.npu.mlir | diff %t.npu.mlir -

// CHECK-LABEL: // -----// IR Dump After canonicalize //----- //
// CHECK:       nn.linear
// CHECK-LABEL: // -----// IR Dump After lower-to-npu //----- //
// CHECK-NEXT:  builtin.module attributes {npu.target = "edge", npu.data_end = {{[0-9]+}} : i64} {
// CHECK-NOT:   wait(
// CHECK-NOT:   signal(
// CHECK:       npu.matmul mode=fp16, {{.*}}m=2, n=64, k=32{{.*}}{comment = "{{.*}}nn.linear
// CHECK-NOT:   npu.finish
// CHECK-LABEL: // -----// IR Dump After npu-schedule //----- //
// CHECK-NEXT:  builtin.module attributes {npu.target = "edge", npu.data_end = {{[0-9]+}} : i64, npu.scheduled = "list"} {
// CHECK:       npu.matmul mode=fp16, {{.*}}m=2, n=64, k=32{{.*}} wait(load) signal(vector)
// CHECK:       npu.finish
// CHECK-NEXT:  }
// CHECK:       [npu-schedule]
// CHECK-NEXT:  {{[0-9]+}} instructions, {{[0-9,]+}} cycles (estimated: static cost model on edge; wisp run/eval measure them on the interpreter)

// ORDER:     wisp-opt: error: pass 'npu-schedule': the module is not lowered to npu ops: run lower-to-npu first
// NOWEIGHTS: wisp-opt: error: pass 'lower-to-npu': needs the model's weights (give FILE.weights.npz or --weights)
// TARGET:    wisp-opt: error: pass 'lower-to-npu': target=tpu: {{.*}}tpu
func.func @main(%x: tensor<2x32xf32>) -> tensor<2x64xf32> {
  %w = nn.weight @fc.weight : tensor<64x32xf32>
  %b = nn.weight @fc.bias : tensor<64xf32>
  %y = nn.linear %x, %w, %b : (tensor<2x32xf32>, tensor<64x32xf32>, tensor<64xf32>) -> tensor<2x64xf32>
  %r = nn.reshape %y : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %g = nn.gelu %r {approximate = "none"} : (tensor<2x64xf32>) -> tensor<2x64xf32>
  func.return %g : tensor<2x64xf32>
}
