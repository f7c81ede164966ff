// The npu ops' custom syntax (backend/npu_syntax.py): the assembly's operands after the op name.
// %roundtrip checks custom == custom -> generic -> custom; the CHECK lines check the canonical form:
// fields holding their default are dropped, offsets print in hex, floats carry a dot, the header
// follows the operands and the nn op an instruction came from is the `comment` attribute.
// The generic form spells every property (ten `: i64` annotations on a load).
// RUN: wisp-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC
// (lit's out-of-process `diff` resets PYTHONPATH for the RUN lines after it: %roundtrip comes last.)
// RUN: %roundtrip | filecheck %s

// CHECK:      builtin.module {
// CHECK-NEXT:   npu.load dtype=fp16, dst=vec[0x10], dst_stride=16, src_addr=0x45740, src_stride=64, rows=8, cols=16 signal(vector) {comment = "embed nn.patch_embed#2"}
// GENERIC:      "npu.load"() <{dtype = "fp16", dst_buf = "vec", dst_off = 16 : i64, dst_stride = 16 : i64, src_addr = 284480 : i64, src_stride = 64 : i64, rows = 8 : i64, cols = 16 : i64, pred = 0 : i64, pneg = 0 : i64, wait = 0 : i64, signal = 8 : i64}> {comment = "embed nn.patch_embed#2"} : () -> ()
npu.load dtype=fp16, dst=vec[16], dst_stride=16, src_addr=284480, src_stride=64, rows=8, cols=16 signal(vector) {comment = "embed nn.patch_embed#2"}

// transpose=0 and scale=1.0 are MOVE's defaults: dropped
// CHECK-NEXT:   npu.move src_dtype=fp32, dst_dtype=fp16, dst=act[0x0], dst_stride=4, src=acc[0x40], src_stride=2, rows=64, cols=2 wait(load, matrix)
npu.move src_dtype=fp32, dst_dtype=fp16, transpose=0, dst=act[0x0], dst_stride=4, src=acc[0x40], src_stride=2, rows=64, cols=2, scale=1.0 wait(load, matrix)

// a float immediate in exponent form, and a negated predicate
// CHECK-NEXT:   npu.row op=layernorm, dtype=fp16, dst=wgt[0x2280], dst_stride=64, src=wgt[0x2280], src_stride=64, rows=16, cols=64, eps=1.0e-06, g=idx[0x0] pred(not p2) wait(load) signal(matrix)
npu.row op=layernorm, dtype=fp16, dst=wgt[0x2280], dst_stride=64, src=wgt[0x2280], src_stride=64, rows=16, cols=64, eps=0.000001, g=idx[0] pred(not p2) wait(load) signal(matrix)

// infinities, predicate registers, an instruction without operands
// CHECK-NEXT:   npu.cmp reduce=max, cmp=lt, dtype=fp16, src=vec[0x0], src_stride=8, rows=1, cols=8, imm=-inf, pdst=p3
// CHECK-NEXT:   npu.vec op=add, bcast=scalar, dtype=fp32, dst=acc[0x0], dst_stride=8, a=acc[0x0], a_stride=8, rows=1, cols=8, imm=inf pred(p3)
// CHECK-NEXT:   npu.finish
// CHECK-NEXT: }
npu.cmp reduce=max, cmp=lt, dtype=fp16, src=vec[0x0], src_stride=8, rows=1, cols=8, imm=-inf, pdst=p3
npu.vec op=add, bcast=scalar, dtype=fp32, dst=acc[0x0], dst_stride=8, a=acc[0x0], a_stride=8, rows=1, cols=8, imm=inf pred(p3)
npu.finish
