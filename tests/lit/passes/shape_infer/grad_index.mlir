// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' | FileCheck %s

// Gradient ops of Gather, Slice, Softmax, LogSoftmax and
// SoftmaxCrossEntropyLoss (made by moai-autodiff): gather_grad and
// slice_grad results are `shape` with grad's element type; the others have
// the shape of their first operand.

// CHECK-LABEL: func.func @gather_grad
// CHECK-SAME: -> (tensor<7x5xf32>, tensor<3x6x4xf64>)
// CHECK: "moai.gather_grad"{{.*}} -> tensor<7x5xf32>
// CHECK: "moai.gather_grad"{{.*}} -> tensor<3x6x4xf64>
func.func @gather_grad(%g: tensor<2x3x5xf32>, %i: tensor<2x3xi64>, %h: tensor<3x5x4xf64>, %j: tensor<5xi32>)
    -> (tensor<*xf32>, tensor<*xf64>) {
  %0 = "moai.gather_grad"(%g, %i) {axis = 0 : i64, shape = array<i64: 7, 5>} : (tensor<2x3x5xf32>, tensor<2x3xi64>) -> tensor<*xf32>
  %1 = "moai.gather_grad"(%h, %j) {axis = -2 : i64, shape = array<i64: 3, 6, 4>} : (tensor<3x5x4xf64>, tensor<5xi32>) -> tensor<*xf64>
  return %0, %1 : tensor<*xf32>, tensor<*xf64>
}

// CHECK-LABEL: func.func @slice_grad
// CHECK: "moai.slice_grad"{{.*}} -> tensor<6x7x5xf32>
// CHECK: "moai.slice_grad"{{.*}} -> tensor<4x9xf32>
func.func @slice_grad(%g: tensor<2x4x5xf32>, %h: tensor<4x9xf32>) -> (tensor<*xf32>, tensor<*xf32>) {
  %s = "moai.constant"() {value = dense<[1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %e = "moai.constant"() {value = dense<[5, -8]> : tensor<2xi64>} : () -> tensor<2xi64>
  %a = "moai.constant"() {value = dense<[0, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %t = "moai.constant"() {value = dense<[2, -2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "moai.slice_grad"(%g, %s, %e, %a, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>, shape = array<i64: 6, 7, 5>} : (tensor<2x4x5xf32>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<*xf32>
  %s1 = "moai.constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %e1 = "moai.constant"() {value = dense<[100]> : tensor<1xi64>} : () -> tensor<1xi64>
  %1 = "moai.slice_grad"(%h, %s1, %e1) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, shape = array<i64: 4, 9>} : (tensor<4x9xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xf32>
  return %0, %1 : tensor<*xf32>, tensor<*xf32>
}

// CHECK-LABEL: func.func @softmax_grads
// CHECK: "moai.softmax_grad"{{.*}} -> tensor<3x5x7xf32>
// CHECK: "moai.log_softmax_grad"{{.*}} -> tensor<3x5x7xf32>
func.func @softmax_grads(%y: tensor<3x5x7xf32>, %g: tensor<3x5x7xf32>) -> (tensor<*xf32>, tensor<*xf32>) {
  %0 = "moai.softmax_grad"(%y, %g) {axis = 1 : i64} : (tensor<3x5x7xf32>, tensor<3x5x7xf32>) -> tensor<*xf32>
  %1 = "moai.log_softmax_grad"(%g, %y) {axis = -1 : i64} : (tensor<3x5x7xf32>, tensor<3x5x7xf32>) -> tensor<*xf32>
  return %0, %1 : tensor<*xf32>, tensor<*xf32>
}

// CHECK-LABEL: func.func @sce_grad
// CHECK: "moai.softmax_cross_entropy_loss_grad"{{.*}} -> tensor<6x5xf32>
// CHECK: "moai.softmax_cross_entropy_loss_grad"{{.*}} -> tensor<3x4x5xf64>
func.func @sce_grad(%x: tensor<6x5xf32>, %l: tensor<6xi64>, %g: tensor<f32>,
                    %x3: tensor<3x4x5xf64>, %l3: tensor<3x5xi32>, %w: tensor<4xf64>, %g3: tensor<3x5xf64>)
    -> (tensor<*xf32>, tensor<*xf64>) {
  %0 = "moai.softmax_cross_entropy_loss_grad"(%x, %l, %g) {reduction = "mean", ignore_index = -100 : i64} : (tensor<6x5xf32>, tensor<6xi64>, tensor<f32>) -> tensor<*xf32>
  %1 = "moai.softmax_cross_entropy_loss_grad"(%x3, %l3, %w, %g3) {reduction = "none"} : (tensor<3x4x5xf64>, tensor<3x5xi32>, tensor<4xf64>, tensor<3x5xf64>) -> tensor<*xf64>
  return %0, %1 : tensor<*xf32>, tensor<*xf64>
}
