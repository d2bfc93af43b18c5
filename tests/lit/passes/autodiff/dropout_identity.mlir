// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-autodiff)' | FileCheck %s

// Run on its own (no moai-simplify before it), autodiff passes the gradient
// straight through an inference-mode Dropout (training_mode false), whatever
// its ratio: the weight's gradient is the seed broadcast to its shape.
// CHECK-LABEL: func.func @main
// CHECK-SAME: tensor<3xf32> {moai.grad_of = "w", moai.name = "grad.w"}
// CHECK: return
module {
  func.func @main(%x: tensor<3xf32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 1 : i64, storage = "absent"} : () -> tensor<3xf32>
    %y = "moai.add"(%x, %w) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    %r = "moai.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
    %t = "moai.constant"() {value = dense<false> : tensor<i1>} : () -> tensor<i1>
    %d, %m = "moai.dropout"(%y, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>, resultSegmentSizes = array<i32: 1, 1>, seed = 0 : i64} : (tensor<3xf32>, tensor<f32>, tensor<i1>) -> (tensor<3xf32>, tensor<3xi1>)
    %a = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
    %l = "moai.reduce_sum"(%d, %a) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3xf32>, tensor<1xi64>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
