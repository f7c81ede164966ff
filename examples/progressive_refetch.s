; SpAtten progressive quantization for one 4-query block against 16 keys (d=32):
; fetch only the MSB plane of int8 K and compute the softmax; if some row's max probability
; is below 0.15, fetch the LSB plane (K becomes exact int8) and recompute under predicate p1.
; Skipped instructions still pass their tokens, so the synchronisation is the same either way.
.config spatten 0000000000000000
.dram 0x400
.symbol K_msb 0x0 [16,32] int4 weight
.symbol K_lsb 0x100 [16,32] int4 weight
.symbol Q 0x200 [4,32] int8 input
.symbol P 0x280 [4,16] fp32 output
.data 5c27085ebe257a4b3d5ed0df823e5be8685848d5441b75aa4ff9c781628550e6
.data 6cdf25d2d6204fa391b6a3b96c671a63c996df63895ef233059c36a37e0a2987
.data ad56868794a04829474f96b9650c3e726169ef059d8b0eb8dcb1f464b2987821
.data d8039ecf83a0f094d11c51b3d9cec374e344a0faf9182ee0b27ed1960bb4493e
.data 1282ea024bd069f390e858b9dc7092daf7f60422ec8cda8c015091e36c513e37
.data 81ee6733db061a520f543c78de0f288d02fec1173c256eff38a929a84c4eaa60
.data f46d54db3c6f78cf45e597cbaa3702af1fa41adb4bff5ad6eec83365991e0e58
.data f52fc01256982290410f14ebf7a45bba1c24c19ca3a0f4d3ab63c980d0c1eab8
.data a7d19d46eac53ded3ab861cc2b16cabc2e354bd193d93945bf0b008fd7a6c014
.data 5b04aadd515f6e4751c45aedc18be180a680d51e71f65ae36575b9071223593a
.data 371de7a66aca06a9ac3b02f6da984fa6d6d3959c13ca88a4a9f170dfa2454837
.data ef008efc916f94522371cfa4c16e9659e6ff696070fbc8442f12e2fdac4bcc05
.data 9e3bccdd3972fe2f62fd73032ca9286f0bb1cbf647826c5b05ed53829a41df58
.data 1ef13f89a0f7e3d7caa9c6f87e431f34a28374da8fb4847668de711eb4fb3bc4
.data d19ed3a5a61ff70294311b7a898ebf67ae902b842fe028a2775015d12e5e8c74
.data ae12cdd02ce3bee1765bb067b4db17f9affbb6e8824fa379534619090f1150c7
.data 28d6b80eb791e59168c126f0080651cdef87b862e8c85600239831a4912c6fbd
.data 5f1c80062308146631f921699619943ec7f8c3225666a617693281b1f794d673
.data 28ae03d0bce8e15141cbf6a87ded8553138b49082c3481f7595f3ce18534f9ab
.data 06a2b92214ee6e0a971d6ac847fd7c573b973612a654188565374cb3ead55f80
.zero 384

loadbp plane=msb, dst=wgt[0x0], dst_stride=32, src_addr=0x0, src_stride=16, rows=16, cols=32
load dtype=int8, dst=act[0x0], dst_stride=32, src_addr=0x200, src_stride=32, rows=4, cols=32 signal(matrix)
matmul mode=int8, tb=1, a=act[0x0], a_stride=32, b=wgt[0x0], b_stride=32, c=acc[0x0], c_stride=16, m=4, n=16, k=32 wait(load) signal(vector)
move src_dtype=int32, dst_dtype=fp32, dst=vec[0x0], dst_stride=16, src=acc[0x0], src_stride=16, rows=4, cols=16, scale=0.00002 wait(matrix)
row op=softmax, dtype=fp32, dst=vec[0x0], dst_stride=16, src=vec[0x0], src_stride=16, rows=4, cols=16
row op=rowmax, dtype=fp32, dst=vec[0x100], dst_stride=1, src=vec[0x0], src_stride=16, rows=4, cols=16 signal(select)
; p1 = (min over rows of the row max) < 0.15
cmp reduce=min, cmp=lt, dtype=fp32, src=vec[0x100], src_stride=1, rows=4, cols=1, imm=0.15, pdst=p1 wait(vector) signal(load)
@p1 loadbp plane=lsb, dst=wgt[0x0], dst_stride=32, src_addr=0x100, src_stride=16, rows=16, cols=32 wait(select) signal(matrix)
@p1 matmul mode=int8, tb=1, a=act[0x0], a_stride=32, b=wgt[0x0], b_stride=32, c=acc[0x0], c_stride=16, m=4, n=16, k=32 wait(load) signal(vector)
@p1 move src_dtype=int32, dst_dtype=fp32, dst=vec[0x0], dst_stride=16, src=acc[0x0], src_stride=16, rows=4, cols=16, scale=0.00002 wait(matrix)
@p1 row op=softmax, dtype=fp32, dst=vec[0x0], dst_stride=16, src=vec[0x0], src_stride=16, rows=4, cols=16 signal(store)
store dtype=fp32, src=vec[0x0], src_stride=16, dst_addr=0x280, dst_stride=64, rows=4, cols=16 wait(vector)
finish
