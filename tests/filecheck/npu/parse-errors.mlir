// Parse errors of the npu custom syntax: each names the instruction and what is wrong (the ISA
// table's field ranges, the queues); one per --split-input-file chunk.
// RUN: wisp-opt %s --split-input-file --parsing-diagnostics | filecheck %s
// Without --split-input-file the first error is the CLI's one error line.
// RUN: not wisp-opt %s 2>&1 | filecheck %s --check-prefix=CLI

// an operand the instruction does not have
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 3]]:51{{$}}
// CHECK: npu.load: unknown operand 'src' (operands: dtype, dst, dst_stride, src_addr, src_stride, rows, cols)
// CLI: wisp-opt: error: {{.*}}parse-errors.mlir:[[# @LINE + 1]]:51: npu.load: unknown operand 'src' (operands: dtype, dst, dst_stride, src_addr, src_stride, rows, cols)
npu.load dtype=fp16, dst=vec[0x0], dst_stride=16, src=vec[0x0], rows=8, cols=16

// -----

// a required field missing: the ISA table says which and its range
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 2]]:10{{$}}
// CHECK: LOAD: missing required field 'src_stride'
npu.load dtype=fp16, dst=vec[0x0], dst_stride=16, src_addr=0x0, rows=8, cols=16

// -----

// a value out of its field's range
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 2]]:10{{$}}
// CHECK: LOAD: field 'dtype' {{.*}}fp64
npu.load dtype=fp64, dst=vec[0x0], dst_stride=16, src_addr=0x0, src_stride=64, rows=8, cols=16

// -----

// a queue that does not exist
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 2]]:{{[0-9]+}}{{$}}
// CHECK: unknown queue 'dma' (queues: load, store, matrix, vector, select)
npu.load dtype=fp16, dst=vec[0x0], dst_stride=16, src_addr=0x0, src_stride=64, rows=8, cols=16 wait(dma)

// -----

// an operand given twice
// CHECK: {{.*}}parse-errors.mlir:[[# @LINE + 2]]:{{[0-9]+}}{{$}}
// CHECK: npu.setp: operand 'value' given twice
npu.setp pdst=p1, value=1, value=0
