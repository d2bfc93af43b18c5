// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-autodiff)' | FileCheck %s

// loss = sum((x W^T + b)^2): dW = (2 y)^T x, db = sum_rows(2 y), seeded with
// the loss weight 1 (not a cross-entropy mean).
// CHECK: module attributes {moai.loss_weight_kind = "one"}
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<f32> {moai.name = "loss"}, tensor<f32> {moai.name = "loss_weight"}, tensor<3x4xf32> {moai.grad_of = "w", moai.name = "grad.w"}, tensor<3xf32> {moai.grad_of = "b", moai.name = "grad.b"})
// CHECK: %[[SEED:.*]] = "moai.constant"() {value = dense<1.000000e+00> : tensor<f32>}
// The sum's rule broadcasts the seed back; the square's: grad * 2 * self.
// CHECK: "moai.expand"{{.*}}-> tensor<2x3xf32>
// CHECK: "moai.mul"
// dW = (x^T g)^T; the bias gradient sums the broadcast rows back to its shape.
// CHECK-DAG: "moai.matmul"{{.*}}(tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK-DAG: "moai.transpose"{{.*}}-> tensor<3x4xf32>
// CHECK-DAG: "moai.reduce_sum"{{.*}}keepdims = 1
// CHECK-DAG: "moai.reshape"{{.*}}-> tensor<3xf32>
// The frozen weight gets no gradient.
// CHECK-NOT: grad.frozen
// CHECK: return
module {
  func.func @main(%x: tensor<2x4xf32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 1 : i64, storage = "absent"} : () -> tensor<3x4xf32>
    %b = "moai.weight"() {name = "b", trainable = 1 : i64, storage = "absent"} : () -> tensor<3xf32>
    %f = "moai.weight"() {name = "frozen", trainable = 0 : i64, storage = "absent"} : () -> tensor<3xf32>
    %wt = "moai.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<3x4xf32>) -> tensor<4x3xf32>
    %xw = "moai.matmul"(%x, %wt) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %y0 = "moai.add"(%xw, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %y = "moai.add"(%y0, %f) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %two = "moai.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
    %sq = "moai.pow"(%y, %two) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    %axes = "moai.constant"() {value = dense<[0, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
    %l = "moai.reduce_sum"(%sq, %axes) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
