// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' | FileCheck %s

// Ops whose operands are all constants (or a moai.shape of a static tensor)
// are evaluated into moai.constant ops, so shape arithmetic computed at run
// time in the ONNX graph becomes static. Constants that only fed folded ops
// go too.

// Mistral-style attention reshape: batch and sequence read from the input's
// shape, then split into heads.
// CHECK-LABEL: func.func @shape_chain
// CHECK-SAME: -> tensor<2x32x16x128xf32>
// CHECK-NEXT: %[[S:.*]] = "moai.constant"() {value = dense<[2, 16, 32, -1]> : tensor<4xi64>}
// CHECK-NEXT: %[[R:.*]] = "moai.reshape"(%arg0, %[[S]]) {{.*}} -> tensor<2x16x32x128xf32>
// CHECK-NEXT: %[[T:.*]] = "moai.transpose"(%[[R]]) {{.*}} -> tensor<2x32x16x128xf32>
// CHECK-NEXT: return %[[T]]
func.func @shape_chain(%x: tensor<2x16x4096xf32>) -> tensor<*xf32> {
  %s = "moai.shape"(%x) {start = 0 : i64} : (tensor<2x16x4096xf32>) -> tensor<*xi64>
  %i0 = "moai.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %i1 = "moai.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %b = "moai.gather"(%s, %i0) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xi64>
  %t = "moai.gather"(%s, %i1) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xi64>
  %ax = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %b1 = "moai.unsqueeze"(%b, %ax) : (tensor<*xi64>, tensor<1xi64>) -> tensor<1xi64>
  %t1 = "moai.unsqueeze"(%t, %ax) : (tensor<*xi64>, tensor<1xi64>) -> tensor<1xi64>
  %h = "moai.constant"() {value = dense<32> : tensor<1xi64>} : () -> tensor<1xi64>
  %d = "moai.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %shape = "moai.concat"(%b1, %t1, %h, %d) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0, 0>} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xi64>
  %r = "moai.reshape"(%x, %shape) {allowzero = 0 : i64} : (tensor<2x16x4096xf32>, tensor<*xi64>) -> tensor<*xf32>
  %p = "moai.transpose"(%r) {perm = array<i64: 0, 2, 1, 3>} : (tensor<*xf32>) -> tensor<*xf32>
  return %p : tensor<*xf32>
}

// A causal mask: Range, Unsqueeze, comparison, Where, from the sequence
// length read off the input.
// CHECK-LABEL: func.func @causal_mask
// CHECK-SAME: -> tensor<4x4xf32>
// CHECK-NEXT: %[[M:.*]] = "moai.constant"() {value = dense<{{\[\[}}0.000000e+00, -1.000000e+09, -1.000000e+09, -1.000000e+09], [0.000000e+00, 0.000000e+00, -1.000000e+09, -1.000000e+09], [0.000000e+00, 0.000000e+00, 0.000000e+00, -1.000000e+09], [0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00]]> : tensor<4x4xf32>}
// CHECK-NEXT: return %[[M]]
func.func @causal_mask(%x: tensor<1x4x8xf32>) -> tensor<*xf32> {
  %s = "moai.shape"(%x) {start = 1 : i64, end = 2 : i64} : (tensor<1x4x8xf32>) -> tensor<*xi64>
  %zero = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %n = "moai.squeeze"(%s, %zero) : (tensor<*xi64>, tensor<1xi64>) -> tensor<*xi64>
  %c0 = "moai.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %c1 = "moai.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %idx = "moai.range"(%c0, %n, %c1) : (tensor<i64>, tensor<*xi64>, tensor<i64>) -> tensor<*xi64>
  %ax1 = "moai.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  %col = "moai.unsqueeze"(%idx, %ax1) : (tensor<*xi64>, tensor<1xi64>) -> tensor<*xi64>
  %future = "moai.greater"(%idx, %col) : (tensor<*xi64>, tensor<*xi64>) -> tensor<*xi1>
  %neg = "moai.constant"() {value = dense<-1.0e9> : tensor<f32>} : () -> tensor<f32>
  %zf = "moai.constant"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32>
  %mask = "moai.where"(%future, %neg, %zf) : (tensor<*xi1>, tensor<f32>, tensor<f32>) -> tensor<*xf32>
  return %mask : tensor<*xf32>
}

// ConstantOfShape from a folded shape; integer Div truncates toward zero.
// CHECK-LABEL: func.func @values
// CHECK-NEXT: %[[Z:.*]] = "moai.constant"() {value = dense<1> : tensor<3x2xi32>}
// CHECK-NEXT: %[[D:.*]] = "moai.constant"() {value = dense<[-3, -3, 3]> : tensor<3xi64>}
// CHECK-NEXT: return %[[Z]], %[[D]]
func.func @values(%x: tensor<3x2xf32>) -> (tensor<*xi32>, tensor<*xi64>) {
  %s = "moai.shape"(%x) {start = 0 : i64} : (tensor<3x2xf32>) -> tensor<*xi64>
  %ones = "moai.constant_of_shape"(%s) {value = dense<1> : tensor<1xi32>} : (tensor<*xi64>) -> tensor<*xi32>
  %a = "moai.constant"() {value = dense<[-7, 7, 7]> : tensor<3xi64>} : () -> tensor<3xi64>
  %b = "moai.constant"() {value = dense<[2, -2, 2]> : tensor<3xi64>} : () -> tensor<3xi64>
  %q = "moai.div"(%a, %b) : (tensor<3xi64>, tensor<3xi64>) -> tensor<*xi64>
  return %ones, %q : tensor<*xi32>, tensor<*xi64>
}

// Division by zero has no value to fold: the op stays, typed.
// CHECK-LABEL: func.func @not_folded
// CHECK: "moai.div"{{.*}} -> tensor<2xi64>
func.func @not_folded() -> tensor<*xi64> {
  %a = "moai.constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %b = "moai.constant"() {value = dense<[1, 0]> : tensor<2xi64>} : () -> tensor<2xi64>
  %q = "moai.div"(%a, %b) : (tensor<2xi64>, tensor<2xi64>) -> tensor<*xi64>
  return %q : tensor<*xi64>
}
