// Round trip of the tokens ops: custom == custom -> generic -> custom.
// RUN: %roundtrip | filecheck %s

// CHECK-LABEL: func.func @scores
// CHECK-NEXT:    %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
// CHECK-NEXT:    %c = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "cls"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
// CHECK-NEXT:    %h = tokens.head_importance %q {heads = 4} : (tensor<65x64xf32>) -> tensor<4xf32>
func.func @scores(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>) {
  %s = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
  %c = tokens.importance %q, %k {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "cls"} : (tensor<65x64xf32>, tensor<65x64xf32>) -> tensor<65xf32>
  %h = tokens.head_importance %q {heads = 4} : (tensor<65x64xf32>) -> tensor<4xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @select
// CHECK-NEXT:    %i = tokens.select %s {k = 45, protect = [0]} : (tensor<65xf32>) -> tensor<45xi32>
// CHECK-NEXT:    %j = tokens.select %s {k = 3, protect = []} : (tensor<65xf32>) -> tensor<3xi32>
// CHECK-NEXT:    %l = tokens.select %s {k = 65, protect = [0, -1]} : (tensor<65xf32>) -> tensor<65xi32>
// CHECK-NEXT:    %y = tokens.squeeze %x, %i {protect = [0]} : (tensor<65x64xf32>, tensor<45xi32>) -> tensor<45x64xf32>
// CHECK-NEXT:    %f = tokens.fuse %x, %i, %s : (tensor<65x64xf32>, tensor<45xi32>, tensor<65xf32>) -> tensor<46x64xf32>
func.func @select(%s: tensor<65xf32>, %x: tensor<65x64xf32>) {
  %i = tokens.select %s {k = 45, protect = [0]} : (tensor<65xf32>) -> tensor<45xi32>
  %j = tokens.select %s {k = 3, protect = []} : (tensor<65xf32>) -> tensor<3xi32>
  %l = tokens.select %s {k = 65, protect = [0,-1]} : (tensor<65xf32>) -> tensor<65xi32>
  %y = tokens.squeeze %x, %i {protect = [0]} : (tensor<65x64xf32>, tensor<45xi32>) -> tensor<45x64xf32>
  %f = tokens.fuse %x, %i, %s : (tensor<65x64xf32>, tensor<45xi32>, tensor<65xf32>) -> tensor<46x64xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @predict
// CHECK-NEXT:    %m = tokens.predict %xq, %wq, %wk {heads = 4, qk_dim = 16, scale = 0.25, causal = true, topk = 8, margin = 3.0, q_shift = 6, k_shift = 6, unit = 0.0625} : (tensor<65x64xi8>, tensor<64x64xi8>, tensor<64x64xi8>) -> tensor<4x65x65xf32>
// CHECK-NEXT:    %a = tokens.masked_attention %x, %x, %x, %m {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<4x65x65xf32>) -> tensor<65x64xf32>
// CHECK-NEXT:    %b = tokens.head_attention %x, %x, %x, %h {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<2xi32>) -> tensor<65x64xf32>
func.func @predict(%x: tensor<65x64xf32>, %xq: tensor<65x64xi8>, %wq: tensor<64x64xi8>, %wk: tensor<64x64xi8>, %h: tensor<2xi32>) {
  %m = tokens.predict %xq, %wq, %wk {heads = 4, qk_dim = 16, scale = 0.25, causal = true, topk = 8, margin = 3.0, q_shift = 6, k_shift = 6, unit = 0.0625} : (tensor<65x64xi8>, tensor<64x64xi8>, tensor<64x64xi8>) -> tensor<4x65x65xf32>
  %a = tokens.masked_attention %x, %x, %x, %m {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = true} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<4x65x65xf32>) -> tensor<65x64xf32>
  %b = tokens.head_attention %x, %x, %x, %h {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65x64xf32>, tensor<2xi32>) -> tensor<65x64xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @prior
// CHECK-NEXT:    %s = tokens.importance %q, %k, %p {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65xf32>) -> tensor<65xf32>
func.func @prior(%q: tensor<65x64xf32>, %k: tensor<65x64xf32>, %p: tensor<65xf32>) {
  %s = tokens.importance %q, %k, %p {heads = 4, qk_dim = 16, v_dim = 16, scale = 0.25, causal = false, kind = "received"} : (tensor<65x64xf32>, tensor<65x64xf32>, tensor<65xf32>) -> tensor<65xf32>
  func.return
}
