// RUN: not moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' 2>&1 | FileCheck %s

// moai compiles ahead of time: every value must end up with a static shape.
// What is not is reported where the unknown starts, naming why, and not at
// every op it flows into.

// CHECK: static.mlir:[[@LINE+2]]:{{[0-9]+}}: Reshape: result 0 has no static shape: its shape depends on the runtime value of operand 'shape'
func.func @runtime_shape(%x: tensor<6xf32>, %s: tensor<2xi64>) -> tensor<*xf32> {
  %0 = "moai.reshape"(%x, %s) {allowzero = 0 : i64} : (tensor<6xf32>, tensor<2xi64>) -> tensor<*xf32>
  %1 = "moai.relu"(%0) : (tensor<*xf32>) -> tensor<*xf32>
  return %1 : tensor<*xf32>
}

// CHECK: static.mlir:[[@LINE+1]]:{{[0-9]+}}: argument 0 has no static shape (tensor<?x4xf32>)
func.func @dynamic_argument(%x: tensor<?x4xf32>) -> tensor<*xf32> {
  %0 = "moai.relu"(%x) : (tensor<?x4xf32>) -> tensor<*xf32>
  %1 = "moai.exp"(%0) : (tensor<*xf32>) -> tensor<*xf32>
  return %1 : tensor<*xf32>
}
// CHECK-NOT: {{Relu|Exp}}

// CHECK: static.mlir:[[@LINE+4]]:{{[0-9]+}}: Range: result 0 has no static shape: its shape depends on the runtime value of operand 'limit'
func.func @runtime_range(%n: tensor<i64>) -> tensor<*xi64> {
  %c0 = "moai.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %c1 = "moai.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %0 = "moai.range"(%c0, %n, %c1) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<*xi64>
  return %0 : tensor<*xi64>
}


// A dynamic batch flowing through a Shape -> Reshape chain is reported once,
// at the argument.
// CHECK: static.mlir:[[@LINE+1]]:{{[0-9]+}}: argument 0 has no static shape (tensor<?x16xf32>)
func.func @dynamic_batch(%x: tensor<?x16xf32>) -> tensor<*xf32> {
  %s = "moai.shape"(%x) {start = 0 : i64} : (tensor<?x16xf32>) -> tensor<*xi64>
  %r = "moai.reshape"(%x, %s) {allowzero = 0 : i64} : (tensor<?x16xf32>, tensor<*xi64>) -> tensor<*xf32>
  %n = "moai.neg"(%r) : (tensor<*xf32>) -> tensor<*xf32>
  return %n : tensor<*xf32>
}
// CHECK-NOT: {{Reshape|Neg|Relu|Exp}}
