// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' | FileCheck %s

// Gradient ops of Conv, pooling and the norms: results from `shape` or the
// operands, with the forward op's window rules (auto_pad, ceil_mode).

// CHECK-LABEL: func.func @conv_grads
// CHECK: "moai.conv_grad_input"{{.*}} -> tensor<2x4x8x8xf32>
// CHECK: "moai.conv_grad_weight"{{.*}} -> tensor<6x2x3x3xf32>
// CHECK: "moai.conv_grad_input"{{.*}} -> tensor<1x3x7x7xf64>
// CHECK: "moai.conv_grad_weight"{{.*}} -> tensor<4x3x3x3xf64>
func.func @conv_grads(%x: tensor<2x4x8x8xf32>, %w: tensor<6x2x3x3xf32>, %g: tensor<2x6x4x4xf32>,
                      %x2: tensor<1x3x7x7xf64>, %w2: tensor<4x3x3x3xf64>, %g2: tensor<1x4x4x4xf64>)
    -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf64>, tensor<*xf64>) {
  %0 = "moai.conv_grad_input"(%g, %w) {auto_pad = "NOTSET", group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>, shape = array<i64: 2, 4, 8, 8>} : (tensor<2x6x4x4xf32>, tensor<6x2x3x3xf32>) -> tensor<*xf32>
  %1 = "moai.conv_grad_weight"(%x, %g) {auto_pad = "NOTSET", group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>, shape = array<i64: 6, 2, 3, 3>} : (tensor<2x4x8x8xf32>, tensor<2x6x4x4xf32>) -> tensor<*xf32>
  %2 = "moai.conv_grad_input"(%g2, %w2) {group = 1 : i64, auto_pad = "SAME_UPPER", strides = array<i64: 2, 2>, shape = array<i64: 1, 3, 7, 7>} : (tensor<1x4x4x4xf64>, tensor<4x3x3x3xf64>) -> tensor<*xf64>
  %3 = "moai.conv_grad_weight"(%x2, %g2) {group = 1 : i64, auto_pad = "SAME_UPPER", kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, shape = array<i64: 4, 3, 3, 3>} : (tensor<1x3x7x7xf64>, tensor<1x4x4x4xf64>) -> tensor<*xf64>
  return %0, %1, %2, %3 : tensor<*xf32>, tensor<*xf32>, tensor<*xf64>, tensor<*xf64>
}

// CHECK-LABEL: func.func @pool_grads
// CHECK: "moai.max_pool_grad"{{.*}} -> tensor<1x2x8x8xf32>
// CHECK: "moai.average_pool_grad"{{.*}} -> tensor<1x2x8x8xf32>
// CHECK: "moai.average_pool_grad"{{.*}} -> tensor<3x2x9xf32>
func.func @pool_grads(%x: tensor<1x2x8x8xf32>, %g: tensor<1x2x4x4xf32>, %g1: tensor<3x2x3xf32>)
    -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>) {
  %0 = "moai.max_pool_grad"(%x, %g) {auto_pad = "NOTSET", ceil_mode = 1 : i64, kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>} : (tensor<1x2x8x8xf32>, tensor<1x2x4x4xf32>) -> tensor<*xf32>
  %1 = "moai.average_pool_grad"(%g) {auto_pad = "NOTSET", ceil_mode = 1 : i64, count_include_pad = 1 : i64, kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, shape = array<i64: 1, 2, 8, 8>} : (tensor<1x2x4x4xf32>) -> tensor<*xf32>
  %2 = "moai.average_pool_grad"(%g1) {auto_pad = "NOTSET", ceil_mode = 0 : i64, count_include_pad = 0 : i64, kernel_shape = array<i64: 3>, strides = array<i64: 3>, shape = array<i64: 3, 2, 9>} : (tensor<3x2x3xf32>) -> tensor<*xf32>
  return %0, %1, %2 : tensor<*xf32>, tensor<*xf32>, tensor<*xf32>
}

// CHECK-LABEL: func.func @norm_grads
// CHECK: "moai.batch_normalization_grad"{{.*}} -> (tensor<4x3x5x5xf32>, tensor<3xf32>, tensor<3xf32>)
// CHECK: "moai.layer_normalization_grad"{{.*}} -> (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>)
// CHECK: "moai.layer_normalization_grad"{{.*}} -> (tensor<2x4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
func.func @norm_grads(%x: tensor<4x3x5x5xf32>, %s: tensor<3xf32>, %g: tensor<4x3x5x5xf32>,
                      %y: tensor<2x4x8xf32>, %t: tensor<8xf32>, %t2: tensor<4x8xf32>, %h: tensor<2x4x8xf32>)
    -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>, tensor<*xf32>) {
  %0:3 = "moai.batch_normalization_grad"(%x, %s, %g) {epsilon = 1.0e-05 : f32} : (tensor<4x3x5x5xf32>, tensor<3xf32>, tensor<4x3x5x5xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  %1:3 = "moai.layer_normalization_grad"(%y, %t, %h) {epsilon = 1.0e-05 : f32, axis = -1 : i64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<2x4x8xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  %2:3 = "moai.layer_normalization_grad"(%y, %t2, %h) {epsilon = 1.0e-05 : f32, axis = 1 : i64} : (tensor<2x4x8xf32>, tensor<4x8xf32>, tensor<2x4x8xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return %0#0, %0#1, %1#1, %2#2 : tensor<*xf32>, tensor<*xf32>, tensor<*xf32>, tensor<*xf32>
}
