; Causal softmax of a 4x64 fp16 score block (rows 60..63 of a 64-token sequence),
; scaled by 1/sqrt(64). The vector unit works in place on the vec buffer.
.config spatten 0000000000000000
.dram 0x400
.symbol scores 0x0 [4,64] fp16 input
.symbol probs 0x200 [4,64] fp16 output
.data 48c08f44cf38ddc18ebda9bf473827c2b14347bcb2b98a417ec0369c6045ef3c
.data 0d3bb7bdf7c13f45afb7b2451ac08843edb8003d4d434c3dd140b0c487bd2246
.data 80b9a63bd4b775bf7bc4dac20c4597b322c36dc13e41afc181bfb3c28ec3f244
.data c3b6b7bb38bf4640e731043b92364abcc5bd34c5e7bd7e4670c3b722073c2a43
.data fa47c3bc43c15c421d3905465a4003c0b8b8143d023ecec2c6c5d0c4683f5bb7
.data 81c59cbed0c551ba31c1b2be0db46238b831c04334471d418db883405dc0f4c0
.data 3ac1043b6e43ac46f243304021c05c33863edeb59745ebc049c08f3c054670c5
.data 14c1ba4313c02d46eec06f423cb4843d37c2d2c4a7405abe83c1a2c245c20f44
.data 89c182bee64530bd58a4693c1bbb21c0ac43ad3b8ebf28c4f2c226c278c60b43
.data e734713e42c4d2bdc3b94233f3b878c38d4243403033324240432f44d3378ebb
.data c2bd594135c07bc1a73e473ea33f18c1383b7e41c2bd6fba27bb8f44684106c4
.data 90c4cd3f1db9643e603a0f42e1c493be063aa139b0c153be08bf4a3034409cba
.data 59b748c65ec28f4525c5184426bbe4c56044b4430abe344145bce430fb378bb9
.data 4b3ea13c46be1b3b3fbe6c36f6bdac34cd44d9bf64c4c844053bcfbffeb97cc1
.data a14148408b3f493926c61fc3d33af7c79cb327c2993fb8b85a420d3c7635d7c1
.data 883f234722c524c2fe44243e1abbb140fb3bd5bf02c022411f3c7742d83f5ebf
.zero 512

load dtype=fp16, dst=vec[0x0], dst_stride=64, src_addr=0x0, src_stride=128, rows=4, cols=64 signal(vector)
row op=softmax, dtype=fp16, dst=vec[0x200], dst_stride=64, src=vec[0x0], src_stride=64, rows=4, cols=64, scale=0.125, causal=1, row0=60 wait(load) signal(store)
store dtype=fp16, src=vec[0x200], src_stride=64, dst_addr=0x200, dst_stride=128, rows=4, cols=64 wait(vector)
finish
