; int8 matmul + requantize: out[8,8] = requant(A[8,16] @ B[16,8]), round-half-up, zp 0.
; Load both operands, multiply on the matrix unit, requantize on the vector unit, store.
.config spatten 0000000000000000
.dram 0x140
.symbol A 0x0 [8,16] int8 input
.symbol B 0x80 [16,8] int8 weight
.symbol out 0x100 [8,8] int8 output
.data df0242594f6b8f23a1575902783d90c538684dce29bdfd8a9d70c29336a7bb84
.data bbd15eacf8fab250ce9cc026f9d92a69ff326d00f1fbcc1bc51a0278dfc9403a
.data 3fff5c216781ab0b6d3fd60f8768e06fccb780c7cd475b5030103e2be8f83380
.data 707566e43f58fe5b9f15670df3901988f9534f4387334a3a26a73958c94477ac
.data 8eff5b96bacb795caef9288559b31d0ab8921594a06b39cc7156a6fb4fbab5ec
.data 8c23bae7bd75bf87e84ade81e087519f286b9e82298a2e2b3b620e06bab62e25
.data b1e65ec17060091de59a1943b331b8e29a757ef5fda6c97fbf45934ed686987b
.data adf1a8e1732dff2fbe46b97346ff04263c259e57008bbe302fe9b9343cda10e3
.zero 64

load dtype=int8, dst=act[0x0], dst_stride=16, src_addr=0x0, src_stride=16, rows=8, cols=16
load dtype=int8, dst=wgt[0x0], dst_stride=8, src_addr=0x80, src_stride=8, rows=16, cols=8 signal(matrix)
matmul mode=int8, a=act[0x0], a_stride=16, b=wgt[0x0], b_stride=8, c=acc[0x0], c_stride=8, m=8, n=8, k=16 wait(load) signal(vector)
; q = clamp(((x * 19661 + 2^19) >> 20) + 0): scale ~ 1/53.3
requant out_dtype=int8, dst=vec[0x0], dst_stride=8, src=acc[0x0], src_stride=8, rows=8, cols=8, mult=19661, shift=20 wait(matrix) signal(store)
store dtype=int8, src=vec[0x0], src_stride=8, dst_addr=0x100, dst_stride=8, rows=8, cols=8 wait(vector)
finish
