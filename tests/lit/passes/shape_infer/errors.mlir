// RUN: not moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' 2>&1 | FileCheck %s

// Malformed ops are reported at their location and fail the pass; each
// function stops at its first error, the next function is still checked.

// CHECK: errors.mlir:[[@LINE+2]]:{{[0-9]+}}: Add: operands 2x3 and 4x3 do not broadcast
func.func @broadcast(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) -> tensor<*xf32> {
  %0 = "moai.add"(%a, %b) : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: errors.mlir:[[@LINE+2]]:{{[0-9]+}}: Softmax: axis 5 out of range for rank 4
func.func @axis(%a: tensor<1x2x3x4xf32>) -> tensor<*xf32> {
  %0 = "moai.softmax"(%a) {axis = 5 : i64} : (tensor<1x2x3x4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: errors.mlir:[[@LINE+2]]:{{[0-9]+}}: MatMul: operand 'a' must be numeric, got i1
func.func @matmul_bool(%a: tensor<2x3xi1>, %b: tensor<3x2xi1>) -> tensor<*xi1> {
  %0 = "moai.matmul"(%a, %b) : (tensor<2x3xi1>, tensor<3x2xi1>) -> tensor<*xi1>
  return %0 : tensor<*xi1>
}

// CHECK: errors.mlir:[[@LINE+3]]:{{[0-9]+}}: Gather: operand 'indices' must be int32 or int64, got f32
func.func @gather_float(%a: tensor<4x3xf32>) -> tensor<*xf32> {
  %i = "moai.constant"() {value = dense<[1.0]> : tensor<1xf32>} : () -> tensor<1xf32>
  %0 = "moai.gather"(%a, %i) {axis = 0 : i64} : (tensor<4x3xf32>, tensor<1xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: errors.mlir:[[@LINE+3]]:{{[0-9]+}}: Reshape: shape has more than one -1
func.func @two_minus_one(%a: tensor<2x3xf32>) -> tensor<*xf32> {
  %s = "moai.constant"() {value = dense<[-1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "moai.reshape"(%a, %s) {allowzero = 0 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: errors.mlir:[[@LINE+3]]:{{[0-9]+}}: Reshape: cannot reshape 2x3 into 4x2: element counts differ
func.func @count_mismatch(%a: tensor<2x3xf32>) -> tensor<*xf32> {
  %s = "moai.constant"() {value = dense<[4, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "moai.reshape"(%a, %s) {allowzero = 0 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: errors.mlir:[[@LINE+4]]:{{[0-9]+}}: Gather: index 3 out of range for axis 0 of size 3
func.func @gather_index(%a: tensor<3xi64>) -> tensor<*xi64> {
  %d = "moai.constant"() {value = dense<[1, 2, 3]> : tensor<3xi64>} : () -> tensor<3xi64>
  %i = "moai.constant"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>
  %0 = "moai.gather"(%d, %i) {axis = 0 : i64} : (tensor<3xi64>, tensor<1xi64>) -> tensor<*xi64>
  return %0 : tensor<*xi64>
}

// Optional attributes are not declared to IRDL; shape inference checks them.
// CHECK: errors.mlir:[[@LINE+2]]:{{[0-9]+}}: Shape: attribute 'end' must be an integer
func.func @bad_attr(%a: tensor<2xf32>) -> tensor<*xi64> {
  %0 = "moai.shape"(%a) {start = 0 : i64, end = "x"} : (tensor<2xf32>) -> tensor<*xi64>
  return %0 : tensor<*xi64>
}

// CHECK: errors.mlir:[[@LINE+3]]:{{[0-9]+}}: result 0 of the function is declared tensor<3x2xf32> but the returned value is tensor<2x3xf32>
func.func @declared_wrong(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = "moai.relu"(%a) : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}
