// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-fuse)' | FileCheck %s

// Multiplied scale, no mask, no grouped-query repeat.
// CHECK-LABEL: func.func @mul_scale_no_mask
// CHECK-NOT: "moai.softmax"
// CHECK: %[[A:.*]]:2 = "moai.attention"(%arg0, %arg1, %arg2) {causal = 0 : i64, masked_value = -3.40282347E+38 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, scale = 1.250000e-01 : f32, window = 0 : i64} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> (tensor<1x2x5x8xf32>, tensor<1x2x5xf32>)
// CHECK-NEXT: return %[[A]]#0
func.func @mul_scale_no_mask(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %c = "moai.constant"() {value = dense<1.250000e-01> : tensor<f32>} : () -> tensor<f32>
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x5x8xf32>) -> tensor<1x2x8x5xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32>) -> tensor<1x2x5x5xf32>
  %m = "moai.mul"(%c, %s) : (tensor<f32>, tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %p = "moai.softmax"(%m) {axis = -1 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}

// The probabilities are returned too: another user, so nothing is fused.
// CHECK-LABEL: func.func @probs_used
// CHECK: "moai.softmax"
// CHECK-NOT: "moai.attention"
func.func @probs_used(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> (tensor<1x2x5x8xf32>, tensor<1x2x5x5xf32>) {
  %c = "moai.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x5x8xf32>) -> tensor<1x2x8x5xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32>) -> tensor<1x2x5x5xf32>
  %m = "moai.div"(%s, %c) : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>
  %p = "moai.softmax"(%m) {axis = -1 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  return %o, %p : tensor<1x2x5x8xf32>, tensor<1x2x5x5xf32>
}

// Softmax over another axis, and a scale that is not a constant: unfused.
// CHECK-LABEL: func.func @wrong_axis_or_scale
// CHECK-NOT: "moai.attention"
// CHECK-COUNT-2: "moai.softmax"
func.func @wrong_axis_or_scale(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>, %c: tensor<f32>) -> (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) {
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x5x8xf32>) -> tensor<1x2x8x5xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32>) -> tensor<1x2x5x5xf32>
  %p = "moai.softmax"(%s) {axis = 2 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  %kt2 = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x5x8xf32>) -> tensor<1x2x8x5xf32>
  %s2 = "moai.matmul"(%q, %kt2) : (tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32>) -> tensor<1x2x5x5xf32>
  %m2 = "moai.div"(%s2, %c) : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>
  %p2 = "moai.softmax"(%m2) {axis = -1 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %o2 = "moai.matmul"(%p2, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  return %o, %o2 : tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>
}

// RMSNorm in the x * (1 / sqrt(...)) form with the weight on the right.
// CHECK-LABEL: func.func @rms_reciprocal
// CHECK-NOT: "moai.sqrt"
// CHECK: %[[R:.*]] = "moai.rms_norm"(%arg0, %arg1) {epsilon = 9.99999974E-6 : f32}
// CHECK-NEXT: return %[[R]]
func.func @rms_reciprocal(%x: tensor<3x7xf32>, %w: tensor<7xf32>) -> tensor<3x7xf32> {
  %two = "moai.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %one = "moai.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "moai.constant"() {value = dense<1.0e-5> : tensor<f32>} : () -> tensor<f32>
  %ax = "moai.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %sq = "moai.pow"(%x, %two) : (tensor<3x7xf32>, tensor<f32>) -> tensor<3x7xf32>
  %ms = "moai.reduce_mean"(%sq, %ax) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3x7xf32>, tensor<1xi64>) -> tensor<3x1xf32>
  %a = "moai.add"(%ms, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %r = "moai.sqrt"(%a) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %i = "moai.div"(%one, %r) : (tensor<f32>, tensor<3x1xf32>) -> tensor<3x1xf32>
  %n = "moai.mul"(%x, %i) : (tensor<3x7xf32>, tensor<3x1xf32>) -> tensor<3x7xf32>
  %y = "moai.mul"(%n, %w) : (tensor<3x7xf32>, tensor<7xf32>) -> tensor<3x7xf32>
  return %y : tensor<3x7xf32>
}

// Mean over the first axis is not RMSNorm; nor is a normalised value that is
// also returned.
// CHECK-LABEL: func.func @rms_unfused
// CHECK-NOT: "moai.rms_norm"
// CHECK: return
func.func @rms_unfused(%x: tensor<3x7xf32>, %w: tensor<7xf32>) -> (tensor<3x7xf32>, tensor<3x7xf32>, tensor<3x7xf32>) {
  %two = "moai.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "moai.constant"() {value = dense<1.0e-5> : tensor<f32>} : () -> tensor<f32>
  %ax0 = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %ax = "moai.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %sq = "moai.pow"(%x, %two) : (tensor<3x7xf32>, tensor<f32>) -> tensor<3x7xf32>
  %ms = "moai.reduce_mean"(%sq, %ax0) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3x7xf32>, tensor<1xi64>) -> tensor<1x7xf32>
  %a = "moai.add"(%ms, %eps) : (tensor<1x7xf32>, tensor<f32>) -> tensor<1x7xf32>
  %r = "moai.sqrt"(%a) : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %n = "moai.div"(%x, %r) : (tensor<3x7xf32>, tensor<1x7xf32>) -> tensor<3x7xf32>
  %y = "moai.mul"(%w, %n) : (tensor<7xf32>, tensor<3x7xf32>) -> tensor<3x7xf32>
  %sq2 = "moai.pow"(%x, %two) : (tensor<3x7xf32>, tensor<f32>) -> tensor<3x7xf32>
  %ms2 = "moai.reduce_mean"(%sq2, %ax) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3x7xf32>, tensor<1xi64>) -> tensor<3x1xf32>
  %a2 = "moai.add"(%ms2, %eps) : (tensor<3x1xf32>, tensor<f32>) -> tensor<3x1xf32>
  %r2 = "moai.sqrt"(%a2) : (tensor<3x1xf32>) -> tensor<3x1xf32>
  %n2 = "moai.div"(%x, %r2) : (tensor<3x7xf32>, tensor<3x1xf32>) -> tensor<3x7xf32>
  %y2 = "moai.mul"(%w, %n2) : (tensor<7xf32>, tensor<3x7xf32>) -> tensor<3x7xf32>
  return %y, %y2, %n2 : tensor<3x7xf32>, tensor<3x7xf32>, tensor<3x7xf32>
}

// Masks computed from indices: the exporters' where(and(C, not(equal(
// unsqueeze(unsqueeze(attention_mask, 1), 2), 0))), 0, float-min) with C the
// causal pattern within a window of 2 becomes key_padding = attention_mask,
// causal = 1, window = 2; the whole mask chain is erased.
// CHECK-LABEL: func.func @causal_window_padding
// CHECK-NOT: "moai.where"
// CHECK: "moai.attention"(%arg0, %arg1, %arg2, %arg3) {causal = 1 : i64, masked_value = -3.40282347E+38 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1>, scale = 1.250000e-01 : f32, window = 2 : i64} : (tensor<2x2x5x8xf32>, tensor<2x2x5x8xf32>, tensor<2x2x5x8xf32>, tensor<2x5xi64>)
// CHECK-NOT: "moai.where"
// CHECK-NOT: "moai.equal"
// CHECK-NOT: "moai.constant"
// CHECK: return
func.func @causal_window_padding(%q: tensor<2x2x5x8xf32>, %k: tensor<2x2x5x8xf32>, %v: tensor<2x2x5x8xf32>, %am: tensor<2x5xi64>) -> tensor<2x2x5x8xf32> {
  %c = "moai.constant"() {value = dense<[[[[true, false, false, false, false], [true, true, false, false, false], [false, true, true, false, false], [false, false, true, true, false], [false, false, false, true, true]]]]> : tensor<1x1x5x5xi1>} : () -> tensor<1x1x5x5xi1>
  %a1 = "moai.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  %a2 = "moai.constant"() {value = dense<2> : tensor<1xi64>} : () -> tensor<1xi64>
  %u1 = "moai.unsqueeze"(%am, %a1) : (tensor<2x5xi64>, tensor<1xi64>) -> tensor<2x1x5xi64>
  %u2 = "moai.unsqueeze"(%u1, %a2) : (tensor<2x1x5xi64>, tensor<1xi64>) -> tensor<2x1x1x5xi64>
  %z = "moai.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %eq = "moai.equal"(%u2, %z) : (tensor<2x1x1x5xi64>, tensor<i64>) -> tensor<2x1x1x5xi1>
  %ne = "moai.not"(%eq) : (tensor<2x1x1x5xi1>) -> tensor<2x1x1x5xi1>
  %ok = "moai.and"(%c, %ne) : (tensor<1x1x5x5xi1>, tensor<2x1x1x5xi1>) -> tensor<2x1x5x5xi1>
  %zero = "moai.constant"() {value = dense<0.000000e+00> : tensor<f32>} : () -> tensor<f32>
  %neg = "moai.constant"() {value = dense<-3.40282347E+38> : tensor<f32>} : () -> tensor<f32>
  %mask = "moai.where"(%ok, %zero, %neg) : (tensor<2x1x5x5xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x5x5xf32>
  %sc = "moai.constant"() {value = dense<1.250000e-01> : tensor<f32>} : () -> tensor<f32>
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x5x8xf32>) -> tensor<2x2x8x5xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<2x2x5x8xf32>, tensor<2x2x8x5xf32>) -> tensor<2x2x5x5xf32>
  %m = "moai.mul"(%s, %sc) : (tensor<2x2x5x5xf32>, tensor<f32>) -> tensor<2x2x5x5xf32>
  %x = "moai.add"(%m, %mask) : (tensor<2x2x5x5xf32>, tensor<2x1x5x5xf32>) -> tensor<2x2x5x5xf32>
  %p = "moai.softmax"(%x) {axis = -1 : i64} : (tensor<2x2x5x5xf32>) -> tensor<2x2x5x5xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<2x2x5x5xf32>, tensor<2x2x5x8xf32>) -> tensor<2x2x5x8xf32>
  return %o : tensor<2x2x5x8xf32>
}

// C alone as [S,S] (causal, no window) with a -inf fill: no key_padding.
// CHECK-LABEL: func.func @causal_only
// CHECK: "moai.attention"(%arg0, %arg1, %arg2) {causal = 1 : i64, masked_value = 0xFF800000 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, scale = 1.250000e-01 : f32, window = 0 : i64}
// CHECK-NOT: "moai.where"
func.func @causal_only(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %c = "moai.constant"() {value = dense<[[true, false, false, false], [true, true, false, false], [true, true, true, false], [true, true, true, true]]> : tensor<4x4xi1>} : () -> tensor<4x4xi1>
  %zero = "moai.constant"() {value = dense<0.000000e+00> : tensor<f32>} : () -> tensor<f32>
  %neg = "moai.constant"() {value = dense<0xFF800000> : tensor<f32>} : () -> tensor<f32>
  %m4 = "moai.where"(%c, %zero, %neg) : (tensor<4x4xi1>, tensor<f32>, tensor<f32>) -> tensor<4x4xf32>
  %sh = "moai.constant"() {value = dense<[1, 1, 4, 4]> : tensor<4xi64>} : () -> tensor<4xi64>
  %mask = "moai.reshape"(%m4, %sh) {allowzero = 0 : i64} : (tensor<4x4xf32>, tensor<4xi64>) -> tensor<1x1x4x4xf32>
  %sc = "moai.constant"() {value = dense<8.000000e+00> : tensor<f32>} : () -> tensor<f32>
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x8xf32>) -> tensor<1x2x8x4xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
  %d = "moai.div"(%s, %sc) : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %x = "moai.add"(%mask, %d) : (tensor<1x1x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = "moai.softmax"(%x) {axis = -1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %o : tensor<1x2x4x8xf32>
}

// Padding alone, an i1 attention mask: key_padding is it, nothing hidden
// by position.
// CHECK-LABEL: func.func @padding_only
// CHECK: "moai.attention"(%arg0, %arg1, %arg2, %arg3) {causal = 0 : i64, masked_value = -3.40282347E+38 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 1>, scale = 1.250000e-01 : f32, window = 0 : i64} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>, tensor<2x4xi1>)
// CHECK-NOT: "moai.where"
func.func @padding_only(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %am: tensor<2x4xi1>) -> tensor<2x2x4x8xf32> {
  %sh = "moai.constant"() {value = dense<[2, 1, 1, 4]> : tensor<4xi64>} : () -> tensor<4xi64>
  %r = "moai.reshape"(%am, %sh) {allowzero = 0 : i64} : (tensor<2x4xi1>, tensor<4xi64>) -> tensor<2x1x1x4xi1>
  %zero = "moai.constant"() {value = dense<0.000000e+00> : tensor<f32>} : () -> tensor<f32>
  %neg = "moai.constant"() {value = dense<-3.40282347E+38> : tensor<f32>} : () -> tensor<f32>
  %mask = "moai.where"(%r, %zero, %neg) : (tensor<2x1x1x4xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x4xf32>
  %sc = "moai.constant"() {value = dense<1.250000e-01> : tensor<f32>} : () -> tensor<f32>
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x4x8xf32>) -> tensor<2x2x8x4xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<2x2x4x8xf32>, tensor<2x2x8x4xf32>) -> tensor<2x2x4x4xf32>
  %m = "moai.mul"(%s, %sc) : (tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xf32>
  %x = "moai.add"(%m, %mask) : (tensor<2x2x4x4xf32>, tensor<2x1x1x4xf32>) -> tensor<2x2x4x4xf32>
  %p = "moai.softmax"(%x) {axis = -1 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %o : tensor<2x2x4x8xf32>
}

// A C that is no causal / window pattern (two documents packed: block
// diagonal) stays a materialised mask operand.
// CHECK-LABEL: func.func @not_a_pattern
// CHECK: %[[M:.*]] = "moai.where"
// CHECK: "moai.attention"(%arg0, %arg1, %arg2, %[[M]]) {causal = 0 : i64, masked_value = -3.40282347E+38 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>, scale = 1.250000e-01 : f32, window = 0 : i64}
func.func @not_a_pattern(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %c = "moai.constant"() {value = dense<[[[[true, true, false, false, false], [true, true, false, false, false], [false, false, true, true, true], [false, false, true, true, true], [false, false, true, true, true]]]]> : tensor<1x1x5x5xi1>} : () -> tensor<1x1x5x5xi1>
  %zero = "moai.constant"() {value = dense<0.000000e+00> : tensor<f32>} : () -> tensor<f32>
  %neg = "moai.constant"() {value = dense<-3.40282347E+38> : tensor<f32>} : () -> tensor<f32>
  %mask = "moai.where"(%c, %zero, %neg) : (tensor<1x1x5x5xi1>, tensor<f32>, tensor<f32>) -> tensor<1x1x5x5xf32>
  %sc = "moai.constant"() {value = dense<1.250000e-01> : tensor<f32>} : () -> tensor<f32>
  %kt = "moai.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x5x8xf32>) -> tensor<1x2x8x5xf32>
  %s = "moai.matmul"(%q, %kt) : (tensor<1x2x5x8xf32>, tensor<1x2x8x5xf32>) -> tensor<1x2x5x5xf32>
  %m = "moai.mul"(%s, %sc) : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>
  %x = "moai.add"(%m, %mask) : (tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32>) -> tensor<1x2x5x5xf32>
  %p = "moai.softmax"(%x) {axis = -1 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %o = "moai.matmul"(%p, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  return %o : tensor<1x2x5x8xf32>
}
